"""
Title: Bi-LSTM sentiment classifier on SST-2 (recipe of kzoo's `bilstm_classifier.sst2` weights)
Description: Train a bidirectional LSTM on GLUE SST-2 with bucketed padding under XLA; raw strings in at inference.
Model: bilstm_classifier (embedding 64, 64 units per direction)
Data: GLUE SST-2 train (67,349 phrases) and dev (872 sentences) from the shared data directory.
Runtime: about 3 minutes on 2 idle CPU cores with the default flags; `--quick` takes under a minute.
Tags: text-classification, rnn, bilstm, sst2, xla, recipe
Figure: bilstm_sst2_curves.png
Shared-data: sst2

## What this shows

The text pipeline of kzoo end to end:

    vectorizer = kzoo.text.vectorizer(train_texts, max_tokens=20000)   # keras TextVectorization
    train = kzoo.text.text_datasets(train_texts, train_labels, vectorizer=vectorizer)
    model = kzoo.get("bilstm_classifier", vocab_size=vectorizer.vocabulary_size())
    model.fit(train, ...)                                               # XLA, a few padded lengths
    kzoo.text.end_to_end(model, vectorizer).save("sentiment.keras")     # strings in, logits out

Batches are padded to 16, 32, 64 or 128 tokens (whichever is the smallest that holds the
longest text of the batch), so the XLA-compiled step compiles a handful of times instead
of once per sentence length; the embedding masks the padding.

    python examples/train_bilstm_sst2.py                # train, evaluate on dev, plot curves
    python examples/train_bilstm_sst2.py --publish      # also write zoo_weights/ (maintainers)
"""

import argparse
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
parser.add_argument("--batch-size", type=int, default=64)
parser.add_argument("--embedding-dim", type=int, default=64)
parser.add_argument("--units", type=int, default=64)
parser.add_argument("--max-tokens", type=int, default=20000)
parser.add_argument("--dropout", type=float, default=0.5)
parser.add_argument("--learning-rate", type=float, default=1e-3)
parser.add_argument("--validation-sentences", type=int, default=1000)
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--output-dir", default="runs/bilstm_sst2")
parser.add_argument("--quick", action="store_true", help="1 epoch on 4,000 phrases; never publishes")
parser.add_argument("--publish", action="store_true", help="write the weights, vocabulary and manifest entry")
args = parser.parse_args()
if args.quick:
    args.epochs, args.publish = 1, False

keras.utils.set_random_seed(args.seed)
output_dir = Path(args.output_dir)
output_dir.mkdir(parents=True, exist_ok=True)

"""
## Data and vocabulary

SST-2's training set holds every phrase of each review sentence, so a random held-out
split would mostly hold out pieces of sentences still in training. Instead, long phrases
(probably whole sentences) are held out together with every training phrase they contain;
they pick the best epoch. Dev is used once, at the end. The vocabulary comes from the
training phrases only.
"""

texts, labels = kzoo.data.load_sst2("train")
dev_texts, dev_labels = kzoo.data.load_sst2("dev")
if args.quick:
    keep = np.random.default_rng(args.seed).permutation(len(texts))[:4000]
    texts, labels = [texts[i] for i in keep], labels[keep]
(train_texts, train_labels), (val_texts, val_labels) = kzoo.data.sst2_validation_split(
    texts, labels, sentences=args.validation_sentences, seed=args.seed
)
print(
    f"held out {len(val_texts)} long phrases and {len(texts) - len(train_texts) - len(val_texts)} phrases inside them"
)

vectorizer = kzoo.text.vectorizer(train_texts, max_tokens=args.max_tokens)
vocab_size = vectorizer.vocabulary_size()
lengths = (128,) if args.quick else kzoo.text.DEFAULT_LENGTHS  # a smoke run compiles one shape
train = kzoo.text.text_datasets(
    train_texts, train_labels, vectorizer=vectorizer, batch_size=args.batch_size, lengths=lengths
)
evaluation = {"vectorizer": vectorizer, "batch_size": 256, "shuffle": False, "lengths": lengths}
validation = kzoo.text.text_datasets(val_texts, val_labels, **evaluation)
dev = kzoo.text.text_datasets(dev_texts, dev_labels, **evaluation)
print(f"{len(train_texts)} training phrases, vocabulary of {vocab_size} tokens")

"""
## Model and training
"""

build = {"vocab_size": vocab_size, "embedding_dim": args.embedding_dim, "units": args.units}
model = kzoo.get("bilstm_classifier", dropout=args.dropout, **build)
model.compile(
    optimizer=keras.optimizers.Adam(args.learning_rate),
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    metrics=["accuracy"],
    jit_compile=True,
)
best = output_dir / "best.weights.h5"
checkpoint = keras.callbacks.ModelCheckpoint(
    str(best), monitor="val_accuracy", save_best_only=True, save_weights_only=True
)
started = time.perf_counter()
history = model.fit(train, validation_data=validation, epochs=args.epochs, callbacks=[checkpoint], verbose=2)
train_seconds = time.perf_counter() - started
model.load_weights(best)

"""
## Evaluation on SST-2 dev, and the training curves
"""

dev_loss, dev_accuracy = model.evaluate(dev, verbose=0)
print(f"dev accuracy {dev_accuracy:.4f}  dev loss {dev_loss:.4f}  ({train_seconds:.0f} s of training)")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

figure, axes = plt.subplots(1, 2, figsize=(9, 3.2))
epochs = np.arange(1, len(history.history["loss"]) + 1)
for axis, metric in zip(axes, ("loss", "accuracy")):
    axis.plot(epochs, history.history[metric], "o-", label="train")
    axis.plot(epochs, history.history[f"val_{metric}"], "o-", label="held-out long phrases")
    axis.set_xlabel("epoch")
    axis.set_title(metric)
    axis.legend()
figure.suptitle(f"bi-LSTM on SST-2: dev accuracy {dev_accuracy:.3f}")
figure.tight_layout()
figure.savefig(output_dir / "bilstm_sst2_curves.png", dpi=100)
print(f"wrote {output_dir / 'bilstm_sst2_curves.png'}")

# Raw strings in, the vocabulary inside the saved model.
import tensorflow as tf  # noqa: E402

end_to_end = kzoo.text.end_to_end(model, vectorizer)
end_to_end.save(output_dir / "bilstm_sst2_text.keras")
for sentence in ("a gorgeous , witty , seductive movie .", "the plot is nothing but boilerplate clichés ."):
    logits = end_to_end.predict(tf.constant([[sentence]]), verbose=0)[0]
    print(f"{sentence!r}: positive with probability {float(keras.ops.softmax(logits)[1]):.3f}")

# The shipped file holds the model's weights only (no optimizer state).
weights_path = output_dir / "bilstm_classifier_sst2.weights.h5"
inference_model = kzoo.get("bilstm_classifier", **build)
inference_model.set_weights(model.get_weights())
inference_model.save_weights(weights_path)
vocabulary_path = output_dir / "bilstm_classifier_sst2.vocab.txt"
vocabulary_path.write_text("\n".join(vectorizer.get_vocabulary()[2:]) + "\n", encoding="utf-8")
summary = {"dev_accuracy": float(dev_accuracy), "dev_loss": float(dev_loss), "train_seconds": round(train_seconds)}
(output_dir / "summary.json").write_text(json.dumps({**summary, "args": vars(args)}, indent=2))

"""
## Publishing (maintainers)
"""

if args.publish:
    if dev_accuracy < 0.78:  # a guard against a broken run, not a target
        raise SystemExit(f"not publishing: dev accuracy {dev_accuracy:.4f} is below 0.78")
    target, vocabulary = kzoo_weights.publish_file(weights_path), kzoo_weights.publish_file(vocabulary_path)
    record = kzoo_weights.WeightsRecord(
        model="bilstm_classifier",
        tag="sst2",
        file=target.name,
        sha256=kzoo_weights.file_hashes(target)["sha256"],
        size=target.stat().st_size,
        dataset="GLUE SST-2 train (67,349 phrases; 1,000 long phrases and the phrases inside them held out)",
        metrics={"dev_accuracy": round(float(dev_accuracy), 4), "dev_loss": round(float(dev_loss), 4)},
        eval_split="GLUE SST-2 dev (872 sentences)",
        num_classes=2,
        class_names=("negative", "positive"),
        license="Weights trained by kzoo on SST-2 (Socher et al. 2013, research use; cite it)",
        recipe="examples/train_bilstm_sst2.py " + " ".join(sys.argv[1:]),
        default=True,
        builder_kwargs=build,
        text={
            "vocabulary": vocabulary_path.name,
            "vocabulary_sha256": kzoo_weights.file_hashes(vocabulary)["sha256"],
            "standardize": "lower_and_strip_punctuation",
            "split": "whitespace",
            "max_length": kzoo.text.DEFAULT_LENGTHS[-1],
        },
    )
    kzoo_weights.write_manifest_entry(record)
    print(f"published {target} and {vocabulary_path.name}")
