"""The ``kzoo`` command: ``list``, ``info``, ``download``, ``finetune``, ``export``, ``demo``, ``reproduce``,
``examples``."""

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
    record = registry.resolve_weights(model_spec, tag or True)
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
        # Raw 0-255 pixels: the weights' preprocessing is inside the model.
        logits = model.predict(images[..., None], batch_size=500, verbose=0)
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


def _check_log_dir(log_dir: str) -> None:
    """The run directory must be creatable (or an existing directory) before any work starts."""
    from pathlib import Path

    from kzoo.errors import InvalidArgumentError, expected_received

    path = Path(log_dir).expanduser()
    try:
        if path.exists() and not path.is_dir():
            raise NotADirectoryError(f"{path} is a file")
        path.mkdir(parents=True, exist_ok=True)
        if not os.access(path, os.W_OK | os.X_OK):
            raise PermissionError(f"{path} is not writable")
    except (OSError, RuntimeError) as error:
        raise InvalidArgumentError(
            expected_received(
                "--log-dir", "a new or empty directory kzoo can create and write", log_dir, f"({error}) Choose another."
            )
        ) from None


def _cmd_finetune(args: argparse.Namespace) -> int:
    import kzoo
    from kzoo import weights as weights_lib

    _check_log_dir(args.log_dir)
    class_names, _ = kzoo.data.scan_image_folder(args.folder)
    pretrained: bool | str = args.pretrained
    if pretrained == "auto":
        pretrained = bool(weights_lib.records_for(kzoo.registry.spec(args.name).name))
    elif pretrained in ("none", "false"):
        pretrained = False
    model = kzoo.get(args.name, pretrained=pretrained, num_classes=len(class_names))
    data = kzoo.data.image_folder(
        args.folder,
        model=model,
        batch_size=args.batch_size,
        validation_split=args.validation_split,
        seed=args.seed,
        augment=args.augment.split(",") if args.augment else None,
    )
    print(
        f"Fine-tuning {args.name} (pretrained={pretrained}) on {data.train_size} images of {len(class_names)} "
        f"classes {list(class_names)}, validating on {data.validation_size}; logs in {args.log_dir}"
    )
    result = kzoo.finetune(
        model,
        data,
        epochs=args.epochs,
        strategy=args.strategy,
        learning_rate=args.learning_rate,
        log_dir=args.log_dir,
        patience=args.patience,
        mixed_precision=args.mixed_precision,
        verbose=2,
    )
    best = f"{result.monitor} {result.best_value:.4f} at epoch {result.best_epoch}" if result.best_value else "-"
    print(f"Best: {best}. Saved model: {result.log_dir / 'model.keras'}")
    print(f"TensorBoard: tensorboard --logdir {result.log_dir / 'tensorboard'}")
    return 0 if not result.stopped_on_nan else 3


def load_source(source: str):  # noqa: ANN201
    """The model ``kzoo export`` exports: a ``.keras`` file, a finetune run directory or NAME[:TAG]."""
    from pathlib import Path

    import keras

    import kzoo
    from kzoo import weights as weights_lib
    from kzoo.errors import InvalidArgumentError, expected_received

    path = Path(source)
    if path.suffix == ".keras" or path.is_dir():
        if path.is_dir():
            if not (path / "model.keras").is_file():
                raise InvalidArgumentError(
                    expected_received(
                        "run directory",
                        "a kzoo.finetune log_dir holding model.keras (written when the run finished)",
                        str(path),
                    )
                )
            path = path / "model.keras"
        if not path.is_file():
            raise InvalidArgumentError(expected_received("model file", "an existing .keras file", str(path)))
        return keras.saving.load_model(path, safe_mode=True)
    name, _, tag = source.partition(":")
    model_spec = kzoo.registry.spec(name)
    pretrained = tag or bool(weights_lib.records_for(model_spec.name))
    return kzoo.get(name, pretrained=pretrained)


def _calibration(path: str | None, model):  # noqa: ANN001, ANN202
    import numpy as np

    import kzoo

    if path is None:
        return None
    if path.endswith(".npy"):
        return np.load(path)
    return kzoo.data.image_folder(path, model=model, validation_split=0.0)


def _cmd_export(args: argparse.Namespace) -> int:
    import kzoo

    model = load_source(args.source)
    quantize = "int8" if args.int8 else None
    started = time.perf_counter()
    result = kzoo.export(
        model,
        args.out,
        format=args.format,
        quantize=quantize,
        calibration=_calibration(args.calibration, model),
        sequence_length=args.sequence_length,
        overwrite=args.overwrite,
    )
    print(
        f"Exported {model.name} to {result.format}{' (int8)' if quantize else ''}: {result.path} "
        f"({result.size_bytes:,} bytes, {time.perf_counter() - started:.1f} s)."
    )
    print(f"Checked in its runtime against Keras: max |difference| {result.max_abs_difference:.3g}.")
    for extra in result.files[1:]:
        print(f"  also wrote {extra}")
    return 0


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from kzoo import reproduce

    result = reproduce.reproduce(args.target, quick=args.quick, output_dir=args.output_dir)
    print(result.summary())
    return 0 if result.passed else 1


def _cmd_examples(args: argparse.Namespace) -> int:
    from kzoo import examples

    if args.action == "show":
        print(examples.get_example(args.name).path.read_text(encoding="utf-8"), end="")
        return 0
    if args.action == "run":
        code, output_dir, figures = examples.run_example(
            args.name, quick=args.quick, output_dir=args.output_dir, extra_args=args.script_args
        )
        if code:
            print(f"kzoo: example {args.name!r} failed with exit code {code}", file=sys.stderr)
            return code
        print(f"{len(figures)} figure(s) written to {output_dir}" + "".join(f"\n  {path}" for path in figures))
        return 0
    found = [e for e in examples.discover() if not args.tag or args.tag.lower() in (t.lower() for t in e.tags)]
    if not found:
        print(f"no examples tagged {args.tag!r}", file=sys.stderr)
        return 1
    width = max(len(example.name) for example in found)
    for example in found:
        print(f"{example.name:<{width}}  {example.description}")
        details = f"tags: {', '.join(example.tags) or '-'}; runtime: {example.fields.get('Runtime', '-')}"
        print(f"{'':<{width}}  {details}")
    print(f"\n{len(found)} examples in {examples.examples_dir()}; `kzoo examples show NAME`, `kzoo examples run NAME`")
    return 0


def _number(kind: type, *, low: float | None = None, high: float | None = None, above: float | None = None):  # noqa: ANN202
    """An argparse type: ``kind`` within bounds, else a usage error naming the bounds and the value."""

    def parse(text: str):  # noqa: ANN202
        try:
            value = kind(text)
        except ValueError:
            what = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"expected {what}, received {text!r}") from None
        bounds = []
        if above is not None and not value > above:
            bounds.append(f"above {above:g}")
        if low is not None and value < low or high is not None and value > high:
            bounds.append(f"from {low:g} to {high:g}" if high is not None else f"of at least {low:g}")
        if bounds:
            raise argparse.ArgumentTypeError(f"expected a value {' and '.join(bounds)}, received {text}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


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

    tune = commands.add_parser("finetune", help="fine-tune a model on a folder of class-named image subfolders")
    tune.add_argument("name", help="registered model, e.g. lenet5")
    tune.add_argument("folder", help="folder/<class>/<image files>")
    tune.add_argument("--log-dir", required=True, help="new run directory (TensorBoard logs, checkpoints, model.keras)")
    tune.add_argument("--epochs", type=_number(int, low=1), default=5)
    tune.add_argument("--strategy", choices=["head", "full", "two-phase"], default="two-phase")
    tune.add_argument("--pretrained", default="auto", help="'auto' (default weights if any), 'none', or a tag/path")
    tune.add_argument("--batch-size", type=_number(int, low=1), default=32)
    tune.add_argument("--learning-rate", type=_number(float, above=0), default=1e-3)
    tune.add_argument("--validation-split", type=_number(float, low=0, high=0.9), default=0.2)
    tune.add_argument("--augment", default="", help="comma-separated: flip,crop,rotation,zoom,noise,grayscale")
    tune.add_argument("--patience", type=_number(int, low=1), default=None, help="early-stopping patience (epochs)")
    tune.add_argument(
        "--mixed-precision",
        choices=["auto", "float32", "mixed_float16", "mixed_bfloat16"],
        default="auto",
        help="'auto' (default): mixed_bfloat16 where the device computes bfloat16 natively and it pays, else float32",
    )
    tune.add_argument("--seed", type=int, default=1337)
    tune.set_defaults(run=_cmd_finetune)

    out = commands.add_parser(
        "export", help="export a model (NAME[:TAG], a finetune run directory or a .keras file) for serving"
    )
    out.add_argument("source", metavar="NAME[:TAG]|RUN_DIR|MODEL.keras")
    out.add_argument("out", metavar="OUT", help="a directory (saved_model) or a .tflite/.onnx/.xml file")
    out.add_argument("--format", required=True, choices=["saved_model", "litert", "onnx", "openvino"])
    out.add_argument(
        "--int8", action="store_true", help="int8: LiteRT full-integer, or Keras' int8 weights (saved_model)"
    )
    out.add_argument("--calibration", default=None, help="for --int8 LiteRT: an image folder or a .npy of inputs")
    out.add_argument(
        "--sequence-length",
        type=_number(int, low=1),
        default=None,
        help="fixed length of unrolled RNNs (LiteRT/OpenVINO)",
    )
    out.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    out.set_defaults(run=_cmd_export)

    demo = commands.add_parser("demo", help="the pretrained LeNet-5 reading real handwritten digits, offline")
    demo.add_argument("--show", type=_number(int, low=0, high=10), default=6, help="how many digits to draw (0 to 10)")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(run=_cmd_demo)

    rerun = commands.add_parser(
        "reproduce", help="rerun the recipe of shipped weights and check its figure against the manifest: NAME[:TAG]"
    )
    rerun.add_argument("target", metavar="NAME[:TAG]")
    rerun.add_argument("--quick", action="store_true", help="the recipe's smoke run, checked against its own range")
    rerun.add_argument("--output-dir", default=None, help="where the rerun writes (default: a new temporary folder)")
    rerun.set_defaults(run=_cmd_reproduce)
    gallery = commands.add_parser("examples", help="list, show and run the examples gallery")
    gallery.add_argument("--tag", default=None, help="list only examples with this tag")
    gallery.set_defaults(run=_cmd_examples, action="list")
    actions = gallery.add_subparsers(dest="action")
    actions.add_parser("list", help="list every example (the default)")
    show = actions.add_parser("show", help="print an example's source")
    show.add_argument("name")
    start = actions.add_parser("run", help="run an example; say where its figures went")
    start.add_argument("name")
    start.add_argument("--quick", action="store_true", help="the few-second smoke mode")
    start.add_argument("--output-dir", default=None, help="default: runs/examples/NAME")
    start.usage = "kzoo examples run [-h] [--quick] [--output-dir OUTPUT_DIR] name [-- SCRIPT ARGUMENTS ...]"
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``kzoo`` console script."""
    from kzoo.errors import KzooError

    argv = list(sys.argv[1:] if argv is None else argv)
    # Everything after `--` goes to the example script of `kzoo examples run` (argparse would mix them up).
    script_args = argv[argv.index("--") + 1 :] if "--" in argv else []
    parser = build_parser()
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    if script_args and getattr(args, "action", None) != "run":
        parser.error(f"arguments after -- go to `kzoo examples run NAME -- ...`; received {script_args}")
    args.script_args = script_args
    try:
        return args.run(args)
    except KzooError as error:
        print(f"kzoo: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("kzoo: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # a bug or an environment problem: one line, unless asked for the traceback
        if os.environ.get("KZOO_DEBUG", "").strip().lower() in {"1", "true", "yes", "on"}:
            raise
        text = str(error).strip().splitlines()
        print(
            f"kzoo: error: {type(error).__name__}: {text[0][:500] if text else ''} "
            "(set KZOO_DEBUG=1 for the traceback, and report it if it is kzoo's fault)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
