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

parser = argparse.ArgumentParser(description=__doc__.split("\n")[2])
parser.add_argument("--epochs", type=int, default=3)
parser.add_argument("--head-epochs", type=int, default=1)
parser.add_argument("--batch-size", type=int, default=64)
parser.add_argument("--learning-rate", type=float, default=1e-3, help="head phase; the encoder gets a tenth")
parser.add_argument("--scratch-learning-rate", type=float, default=1e-3)
parser.add_argument("--dropout", type=float, default=0.1)
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--output-dir", default="runs/bert_sst2")
parser.add_argument("--quick", action="store_true", help="1,000 phrases, 2 epochs; never publishes")
parser.add_argument("--publish", action="store_true", help="write the weights and manifest entry")
args = parser.parse_args()
if args.quick:
    args.epochs, args.publish = 2, False

keras.utils.set_random_seed(args.seed)
output_dir = Path(args.output_dir)
output_dir.mkdir(parents=True, exist_ok=True)

"""
## Data
"""

texts, labels = kzoo.data.load_sst2("train")
if args.quick:
    keep = np.random.default_rng(args.seed).permutation(len(texts))[:1000]
    texts, labels = [texts[i] for i in keep], labels[keep]
(train_texts, train_labels), (val_texts, val_labels) = kzoo.data.sst2_validation_split(texts, labels, seed=args.seed)
dev_texts, dev_labels = kzoo.data.load_sst2("dev")

pretrained = kzoo.get("bert_tiny_classifier", pretrained="wikitext2_shakespeare", dropout=args.dropout)
vocabulary = kzoo.text.tokenizer_for(pretrained).vocabulary
lengths = (64,) if args.quick else (16, 32, 64)  # SST-2 sentences fit in 64 WordPieces
tokenizer = kzoo.text.WordPieceTokenizer(vocabulary, sequence_length=lengths[-1])
train = kzoo.text.text_datasets(
    train_texts, train_labels, vectorizer=tokenizer, batch_size=args.batch_size, lengths=lengths
)
evaluation = {"vectorizer": tokenizer, "batch_size": 256, "shuffle": False, "lengths": lengths}
validation = kzoo.text.text_datasets(val_texts, val_labels, **evaluation)
dev = kzoo.text.text_datasets(dev_texts, dev_labels, **evaluation)
print(f"{len(train_texts)} training phrases, {len(val_texts)} held out; WordPiece vocabulary of {len(vocabulary)}")

"""
## Fine-tuning the pretrained encoder, and training the same model from scratch
"""

runs = {}
for label, model, options in (
    (
        "pretrained",
        pretrained,
        {
            "strategy": "two-phase",
            "head_epochs": args.head_epochs,
            "unfreeze_stages": 3,
            "learning_rate": args.learning_rate,
        },
    ),
    (
        "scratch",
        kzoo.get("bert_tiny_classifier", vocab_size=len(vocabulary), max_sequence_length=128, dropout=args.dropout),
        {"strategy": "full", "learning_rate": args.scratch_learning_rate},
    ),
):
    started = time.perf_counter()
    result = kzoo.finetune(
        model,
        train,
        validation,
        epochs=args.epochs,
        monitor="val_accuracy",
        log_dir=output_dir / label,
        verbose=2,
        **options,
    )
    seconds = time.perf_counter() - started
    dev_loss, dev_accuracy = model.evaluate(dev, verbose=0)
    runs[label] = {"model": model, "history": result.history, "dev_accuracy": float(dev_accuracy), "seconds": seconds}
    runs[label]["dev_loss"] = float(dev_loss)
    print(f"{label}: dev accuracy {dev_accuracy:.4f}, dev loss {dev_loss:.4f} ({seconds:.0f} s)")

gain = runs["pretrained"]["dev_accuracy"] - runs["scratch"]["dev_accuracy"]
print(f"pretraining changes SST-2 dev accuracy by {100 * gain:+.1f} points (same epochs and batches)")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

figure, axis = plt.subplots(figsize=(5.5, 3.4))
for label, run in runs.items():
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
(output_dir / "summary.json").write_text(json.dumps({**summary, "args": vars(args)}, indent=2, default=float))

"""
## Publishing (maintainers)
"""

if args.publish:
    accuracy = runs["pretrained"]["dev_accuracy"]
    if accuracy < 0.75:  # a guard against a broken run, not a target
        raise SystemExit(f"not publishing: dev accuracy {accuracy:.4f} is below 0.75")
    records = {record.tag: record for record in kzoo_weights.records_for("bert_tiny_classifier")}
    source = records["wikitext2_shakespeare"]  # the pretrained encoder this run started from
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
                f"fine-tuned from bert_tiny.wikitext2_shakespeare ({source.metrics})"
            ),
            metrics={
                "dev_accuracy": round(accuracy, 4),
                "dev_loss": round(runs["pretrained"]["dev_loss"], 4),
                "scratch_dev_accuracy": round(runs["scratch"]["dev_accuracy"], 4),
            },
            eval_split="GLUE SST-2 dev (872 sentences)",
            num_classes=2,
            class_names=("negative", "positive"),
            license="Weights trained by kzoo on SST-2 (Socher et al. 2013, research use; cite it)",
            recipe="examples/finetune_bert_sst2.py " + " ".join(sys.argv[1:]),
            default=True,
            builder_kwargs=build,
            text={**source.text, "max_length": lengths[-1]},
            notes="scratch_dev_accuracy: the same model trained from random weights on the same budget.",
        )
    )
    # pretrained=True now means the SST-2 classifier; the encoder-only weights keep their tag.
    kzoo_weights.write_manifest_entry(dataclasses.replace(source, default=False))
    print(f"published {target}")
