"""The ``kzoo`` command: ``list``, ``info``, ``download`` and ``demo``."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _cmd_list(args: argparse.Namespace) -> int:
    from kzoo import registry
    from kzoo import weights as weights_lib

    pretrained = True if args.pretrained else None
    names = registry.list_models(args.pattern, task=args.task, pretrained=pretrained)
    if not names:
        print(f"no models match {args.pattern!r}", file=sys.stderr)
        return 1
    width = max(len(n) for n in names)
    for name in names:
        model_spec = registry.spec(name)
        tags = ",".join(r.tag for r in weights_lib.records_for(name)) or "-"
        print(f"{name:<{width}}  {model_spec.task:<22}  weights: {tags}")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from kzoo import registry

    print(registry.info(args.name))
    return 0


def _cmd_download(args: argparse.Namespace) -> int:
    from kzoo import registry
    from kzoo import weights as weights_lib

    name, _, tag = args.target.partition(":")
    model_spec = registry.spec(name)
    records = weights_lib.records_for(model_spec.name)
    record = registry._resolve_weights(model_spec, tag or True)
    if not isinstance(record, weights_lib.WeightsRecord):  # a path, not a tag
        raise SystemExit(
            f"kzoo: error: expected a weights tag of {name!r} ({[r.tag for r in records]}), received {tag!r}"
        )
    path = weights_lib.fetch(record)
    print(f"{record.key}: {path} (verified)")
    return 0


def _softmax(logits):  # noqa: ANN001, ANN202
    import numpy as np

    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def _ascii(image, width: int = 14) -> list[str]:  # noqa: ANN001
    import numpy as np

    step = image.shape[0] // width
    small = image[: step * width, : step * width].reshape(width, step, width, step).mean(axis=(1, 3))
    shades = " .:-=+*#%@"
    return ["".join(shades[int(v) * (len(shades) - 1) // 255] for v in row) for row in np.asarray(small)]


def _cmd_demo(args: argparse.Namespace) -> int:
    import numpy as np

    import kzoo

    started = time.perf_counter()
    model = kzoo.get("lenet5", pretrained=True)
    record = kzoo.registry.origin(model).weights
    print(f"Loaded lenet5 with the shipped '{record.tag}' weights ({model.count_params():,} parameters, no network).")
    print(f"Recorded on {record.eval_split}: " + ", ".join(f"{k} {v:.4f}" for k, v in record.metrics.items()))

    def evaluate(images, labels, title):  # noqa: ANN001, ANN202
        x = record.preprocessing(images[..., None].astype("float32"))
        logits = model.predict(x, batch_size=500, verbose=0)
        predictions = logits.argmax(axis=-1)
        accuracy = float((predictions == labels).mean())
        print(f"{title}: accuracy {accuracy:.4f} ({int((predictions == labels).sum())}/{len(labels)})")
        return logits, predictions

    digits, digit_labels = kzoo.data.load_uci_digits()
    logits, predictions = evaluate(digits, digit_labels, "UCI handwritten digits (scikit-learn, 1,797 images)")
    print("  (another dataset, never seen in training: 8x8 scans upsampled to 28x28, so thin strokes such as 1s")
    print("  come out wider than MNIST's; expect a lower score than on MNIST)")
    probabilities = _softmax(logits)
    rng = np.random.default_rng(args.seed)
    shown = rng.choice(len(digits), size=args.show, replace=False) if args.show else []
    if len(shown):
        pictures = [_ascii(digits[i]) for i in shown]
        for row in range(len(pictures[0])):
            print("   ".join(p[row] for p in pictures))
        print("   ".join(f"{f'pred {predictions[i]} ({probabilities[i].max():.0%})':<14}" for i in shown))
        print("   ".join(f"{f'true {digit_labels[i]}':<14}" for i in shown))
    if kzoo.data.has_data("mnist"):
        images, labels = kzoo.data.load_mnist("test")
        evaluate(images, labels, "MNIST test set (10,000 images)")
    else:
        print(f"MNIST test set: skipped, not found under {kzoo.data.data_dir()} (set KZOO_DATA_DIR)")
    print(f"Done in {time.perf_counter() - started:.1f} s.")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from kzoo import __version__

    parser = argparse.ArgumentParser(prog="kzoo", description="kzoo: a Keras 3 model zoo.")
    parser.add_argument("--version", action="version", version=f"kzoo {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    listing = commands.add_parser("list", help="list registered models")
    listing.add_argument("pattern", nargs="?", default="*", help="shell-style wildcard, e.g. 'resnet*'")
    listing.add_argument("--task", default=None, help="keep only models of this task")
    listing.add_argument("--pretrained", action="store_true", help="keep only models with weights")
    listing.set_defaults(run=_cmd_list)

    card = commands.add_parser("info", help="show a model card")
    card.add_argument("name")
    card.set_defaults(run=_cmd_info)

    download = commands.add_parser("download", help="download (or verify) a model's weights: NAME[:TAG]")
    download.add_argument("target", metavar="NAME[:TAG]")
    download.set_defaults(run=_cmd_download)

    demo = commands.add_parser("demo", help="the pretrained LeNet-5 reading real handwritten digits, offline")
    demo.add_argument("--show", type=int, default=6, help="how many digits to draw (0 for none)")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(run=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``kzoo`` console script."""
    from kzoo.errors import KzooError

    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except KzooError as error:
        print(f"kzoo: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
