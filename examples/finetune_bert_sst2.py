"""
Title: Fine-tune the pretrained mini-BERT on SST-2 vs from scratch (recipe of `bert_tiny_classifier.sst2`)
Description: kzoo.finetune, frozen encoder then unfrozen, on SST-2; the same model from scratch shows the gain.
Model: bert_tiny_classifier (BERT-Tiny encoder pretrained by examples/pretrain_bert_mlm.py, [CLS] pooler head)
Data: GLUE SST-2 train (1,000 long phrases held out) and dev (872 sentences) from the shared data directory.
Runtime: about 20 minutes on 2 idle CPU cores with the default flags; `--quick` takes about 2 minutes.
Tags: bert, transformer, text-classification, fine-tuning, sst2, xla, recipe
Figure: bert_sst2_curves.png
Shared-data: sst2

## What this shows

    model = kzoo.get("bert_tiny_classifier", pretrained="wikitext2_shakespeare")  # new head
    tokenizer = kzoo.text.tokenizer_for(model)                    # the pretraining vocabulary
    train = kzoo.text.text_datasets(texts, labels, vectorizer=tokenizer)
    kzoo.finetune(model, train, validation, epochs=3, head_epochs=1, unfreeze_stages=3)

The first epoch trains only the new pooler and head on top of the frozen encoder; then
every block is unfrozen at a tenth of the learning rate. The from-scratch model gets the
same tokenizer, epochs and batches, all layers trainable from the start and the learning
rate that suits random weights. Both runs are written to TensorBoard under
`--output-dir`. The pretraining corpus (Shakespeare and Wikipedia, about 0.6M WordPieces)
is tiny next to Google's (3.3B words), so expect a modest gain: Google's BERT-Tiny reaches
83.2 on SST-2 (Turc et al. 2019).

    python examples/finetune_bert_sst2.py             # both runs, dev accuracy, curves
    python examples/finetune_bert_sst2.py --publish   # also write zoo_weights/ (maintainers)
"""

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

import kzoo
from kzoo import weights as kzoo_weights
from kzoo.examples import write_metrics

parser = argparse.ArgumentParser(description=__doc__.split("\n")[2])
parser.add_argument("--epochs", type=int, default=3)
parser.add_argument("--head-epochs", type=int, default=1)
parser.add_argument("--batch-size", type=int, default=64)
parser.add_argument("--learning-rate", type=float, default=1e-3, help="head phase; the encoder gets a tenth")
parser.add_argument("--scratch-learning-rate", type=float, default=1e-3)
parser.add_argument("--dropout", type=float, default=0.1)
parser.add_argument(
    "--encoder",
    default="wikitext2_shakespeare",
    help="tag of the pretrained encoder (examples/pretrain_bert_mlm.py): wikitext2_shakespeare or "
    "wikitext2_shakespeare_sst2 (also pretrained on SST-2 train sentences, labels dropped)",
)
parser.add_argument(
    "--seeds", type=int, nargs="+", default=[0], help="fine-tuning seeds; the scratch run uses the first"
)
parser.add_argument("--output-dir", default="runs/bert_sst2")
parser.add_argument("--quick", action="store_true", help="500 phrases, 2 epochs, 256 dev sentences; never publishes")
parser.add_argument("--publish", action="store_true", help="write the weights and manifest entry")
args = parser.parse_args()
if args.quick:
    args.epochs, args.publish, args.seeds = 2, False, args.seeds[:1]

keras.utils.set_random_seed(args.seeds[0])
output_dir = Path(args.output_dir)
output_dir.mkdir(parents=True, exist_ok=True)

"""
## Data
"""

texts, labels = kzoo.data.load_sst2("train")
if args.quick:
    keep = np.random.default_rng(args.seeds[0]).permutation(len(texts))[:500]
    texts, labels = [texts[i] for i in keep], labels[keep]
dev_texts, dev_labels = kzoo.data.load_sst2("dev")
if args.quick:  # a smoke run; dev accuracy is a full run's figure
    dev_texts, dev_labels = dev_texts[:256], dev_labels[:256]
vocabulary = kzoo.text.tokenizer_for(kzoo.get("bert_tiny_classifier", pretrained=args.encoder)).vocabulary
lengths = (64,) if args.quick else (16, 32, 64)  # SST-2 sentences fit in 64 WordPieces
tokenizer = kzoo.text.WordPieceTokenizer(vocabulary, sequence_length=lengths[-1])
evaluation = {"vectorizer": tokenizer, "batch_size": 256, "shuffle": False, "lengths": lengths}
dev = kzoo.text.text_datasets(dev_texts, dev_labels, **evaluation)
print(f"WordPiece vocabulary of {len(vocabulary)} (bert_tiny.{args.encoder})")

"""
## Fine-tuning the pretrained encoder, and training the same model from scratch

One fine-tuning run per seed (each seed holds out its own long phrases); the scratch run,
for comparison, uses the first seed's data.
"""

runs = {}
for seed in args.seeds:
    keras.utils.set_random_seed(seed)
    (train_texts, train_labels), (val_texts, val_labels) = kzoo.data.sst2_validation_split(texts, labels, seed=seed)
    train = kzoo.text.text_datasets(
        train_texts, train_labels, vectorizer=tokenizer, batch_size=args.batch_size, lengths=lengths, seed=seed
    )
    validation = kzoo.text.text_datasets(val_texts, val_labels, **evaluation)
    print(f"seed {seed}: {len(train_texts)} training phrases, {len(val_texts)} held out")
    jobs = [
        (
            f"pretrained seed {seed}",
            kzoo.get("bert_tiny_classifier", pretrained=args.encoder, dropout=args.dropout),
            {
                "strategy": "two-phase",
                "head_epochs": args.head_epochs,
                "unfreeze_stages": 3,
                "learning_rate": args.learning_rate,
            },
        )
    ]
    if seed == args.seeds[0]:
        scratch = kzoo.get(
            "bert_tiny_classifier", vocab_size=len(vocabulary), max_sequence_length=128, dropout=args.dropout
        )
        jobs.append(("scratch", scratch, {"strategy": "full", "learning_rate": args.scratch_learning_rate}))
    for label, model, options in jobs:
        started = time.perf_counter()
        result = kzoo.finetune(
            model,
            train,
            validation,
            epochs=args.epochs,
            monitor="val_accuracy",
            log_dir=output_dir / label.replace(" ", "_"),
            verbose=2,
            jit_compile=False if args.quick else None,  # a smoke run skips the XLA compile
            mixed_precision=None,  # float32 on every device, as the shipped weights were trained
            **options,
        )
        seconds = time.perf_counter() - started
        dev_loss, dev_accuracy = model.evaluate(dev, verbose=0)
        runs[label] = {"model": model, "history": result.history, "dev_accuracy": float(dev_accuracy)}
        runs[label].update(dev_loss=float(dev_loss), seconds=seconds, seed=seed)
        print(f"{label}: dev accuracy {dev_accuracy:.4f}, dev loss {dev_loss:.4f} ({seconds:.0f} s)")

pretrained_runs = [run for label, run in runs.items() if label.startswith("pretrained")]
accuracies = np.array([run["dev_accuracy"] for run in pretrained_runs])
median = pretrained_runs[int(np.argsort(accuracies)[len(accuracies) // 2])]
mean, sd = float(accuracies.mean()), float(accuracies.std(ddof=1)) if len(accuracies) > 1 else 0.0
runs["pretrained"] = median
print(f"pretrained: dev accuracy over seeds {args.seeds}: {mean:.4f} ± {sd:.4f}; median seed {median['seed']}")
gain = runs[f"pretrained seed {args.seeds[0]}"]["dev_accuracy"] - runs["scratch"]["dev_accuracy"]
print(f"pretraining changes SST-2 dev accuracy by {100 * gain:+.1f} points (seed {args.seeds[0]}, same batches)")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

figure, axis = plt.subplots(figsize=(5.5, 3.4))
for label, run in runs.items():
    if label == "pretrained":  # the median seed, already drawn
        continue
    values = run["history"]["val_accuracy"]
    axis.plot(np.arange(1, len(values) + 1), values, "o-", label=f"{label} (dev {run['dev_accuracy']:.3f})")
axis.axvline(args.head_epochs + 0.5, color="gray", linestyle=":", label="encoder unfrozen")
axis.set_xlabel("epoch")
axis.set_ylabel("held-out accuracy")
axis.legend()
axis.set_title("BERT-Tiny on SST-2: pretrained vs from scratch")
figure.tight_layout()
figure.savefig(output_dir / "bert_sst2_curves.png", dpi=100)
print(f"wrote {output_dir / 'bert_sst2_curves.png'}")

summary = {label: {k: v for k, v in run.items() if k != "model"} for label, run in runs.items()}
summary["pretrained_dev_accuracy_mean"], summary["pretrained_dev_accuracy_sd"] = mean, sd
(output_dir / "summary.json").write_text(json.dumps({**summary, "args": vars(args)}, indent=2, default=float))
figures = {
    "dev_accuracy": round(runs["pretrained"]["dev_accuracy"], 4),
    "dev_loss": round(runs["pretrained"]["dev_loss"], 4),
    "dev_accuracy_mean": round(mean, 4),
    "dev_accuracy_sd": round(sd, 4),
    "seeds": len(args.seeds),
    "scratch_dev_accuracy": round(runs["scratch"]["dev_accuracy"], 4),
}
write_metrics(output_dir, {"bert_tiny_classifier.sst2": figures})  # what `kzoo reproduce` reads

"""
## Publishing (maintainers)
"""

if args.publish:
    accuracy = runs["pretrained"]["dev_accuracy"]
    if accuracy < 0.75:  # a guard against a broken run, not a target
        raise SystemExit(f"not publishing: dev accuracy {accuracy:.4f} is below 0.75")
    records = {record.tag: record for record in kzoo_weights.records_for("bert_tiny_classifier")}
    source = records[args.encoder]  # the pretrained encoder this run started from
    build = {key: source.builder_kwargs[key] for key in ("vocab_size", "max_sequence_length")}
    weights_path = output_dir / "bert_tiny_classifier_sst2.weights.h5"
    inference_model = kzoo.get("bert_tiny_classifier", **build)
    inference_model.set_weights(runs["pretrained"]["model"].get_weights())
    inference_model.save_weights(weights_path)
    target = kzoo_weights.publish_file(weights_path)
    kzoo_weights.write_manifest_entry(
        kzoo_weights.WeightsRecord(
            model="bert_tiny_classifier",
            tag="sst2",
            file=target.name,
            sha256=kzoo_weights.file_hashes(target)["sha256"],
            size=target.stat().st_size,
            dataset=(
                "GLUE SST-2 train (67,349 phrases; 1,000 long phrases and the phrases inside them held out), "
                f"fine-tuned from bert_tiny.{args.encoder} ({source.metrics})"
            ),
            metrics=figures,
            eval_split="GLUE SST-2 dev (872 sentences)",
            num_classes=2,
            class_names=("negative", "positive"),
            license="Weights trained by kzoo on SST-2 (Socher et al. 2013, research use; cite it)",
            recipe="examples/finetune_bert_sst2.py " + " ".join(sys.argv[1:]),
            default=True,
            builder_kwargs=build,
            text={**source.text, "max_length": lengths[-1]},
            notes=(
                f"dev_accuracy: the median of fine-tuning seeds {args.seeds} (seed {median['seed']} ships); "
                "scratch_dev_accuracy: the same model trained from random weights on the first seed's "
                "data and budget."
            ),
        )
    )
    # pretrained=True now means the SST-2 classifier; the encoder-only weights keep their tag.
    kzoo_weights.write_manifest_entry(dataclasses.replace(source, default=False))
    print(f"published {target}")
