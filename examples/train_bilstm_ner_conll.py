"""
Title: Bi-LSTM named-entity tagger on CoNLL-2003 (recipe of kzoo's `bilstm_tagger.conll2003` weights)
Description: A bidirectional LSTM over hashed words and a character CNN tags named entities (conlleval F1).
Model: bilstm_tagger (16,384 hashed word ids x 64, character CNN, 64 LSTM units per direction)
Data: CoNLL-2003 English from the shared data directory: eng.train, eng.testa (epoch choice), eng.testb (test).
Runtime: about 5 minutes on 2 CPU cores with the default flags; `--quick` takes under a minute.
Tags: token-classification, ner, rnn, bilstm, conll2003, recipe
Figure: bilstm_ner_curves.png
Shared-data: conll2003

## What this shows

A many-to-many recurrent model: one tag per token, padded positions masked out of the
loss, and the entity-level F1 of the CoNLL shared task, where an entity counts only when
its type and both ends are right (the `conlleval` script's rule, `kzoo.text.conll_f1`).

The Reuters text of CoNLL-2003 may be used for research but not redistributed, and a
vocabulary of it would be a piece of it. So the tagger has no vocabulary: words are
lower-cased and hashed into 16,384 ids (`keras.layers.Hashing`), and a character CNN over
each word's bytes sees capitals, digits and suffixes. Only the weights ship.

    python examples/train_bilstm_ner_conll.py
    python examples/train_bilstm_ner_conll.py --publish   # maintainers
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras

import kzoo
from kzoo import weights as kzoo_weights
from kzoo.text import CONLL_TAGS

parser = argparse.ArgumentParser(description=__doc__.split("\n")[2])
parser.add_argument("--epochs", type=int, default=8)
parser.add_argument("--batch-size", type=int, default=32)
parser.add_argument("--embedding-dim", type=int, default=64)
parser.add_argument("--units", type=int, default=64)
parser.add_argument("--num-bins", type=int, default=16384)
parser.add_argument("--dropout", type=float, default=0.5)
parser.add_argument("--learning-rate", type=float, default=2e-3)
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--output-dir", default="runs/bilstm_ner")
parser.add_argument("--quick", action="store_true", help="1 epoch on 1,000 sentences; never publishes")
parser.add_argument("--publish", action="store_true", help="write the weights and manifest entry")
args = parser.parse_args()
if args.quick:
    args.epochs, args.publish = 1, False
keras.utils.set_random_seed(args.seed)
output_dir = Path(args.output_dir)
output_dir.mkdir(parents=True, exist_ok=True)

"""
## Data

Tags are read as they come (IOB1); the features need no vocabulary.
"""

features = kzoo.text.TokenFeatures(num_bins=args.num_bins)


def load(split, limit=None):
    sentences, tags = kzoo.data.load_conll2003(split)
    sentences, tags = sentences[:limit], tags[:limit]
    return sentences, [[CONLL_TAGS.index(t) for t in row] for row in tags]


train_sentences, train_tags = load("train", 1000 if args.quick else None)
dev_sentences, dev_tags = load("testa", 300 if args.quick else None)
test_sentences, test_tags = load("testb", 300 if args.quick else None)
lengths = (128,) if args.quick else kzoo.text.DEFAULT_LENGTHS  # one length compiles once in a smoke run
train = kzoo.text.tagging_datasets(
    train_sentences, train_tags, features=features, batch_size=args.batch_size, lengths=lengths
)
evaluation = {"features": features, "batch_size": 128, "shuffle": False, "lengths": kzoo.text.DEFAULT_LENGTHS}
if args.quick:
    evaluation["lengths"] = (128,)
dev = kzoo.text.tagging_datasets(dev_sentences, dev_tags, **evaluation)
test = kzoo.text.tagging_datasets(test_sentences, test_tags, **evaluation)
print(f"{len(train_sentences)} training sentences")

"""
## Model and training

The epoch with the best entity F1 on eng.testa is kept.
"""

build = {"vocab_size": args.num_bins, "embedding_dim": args.embedding_dim, "units": args.units}
model = kzoo.get("bilstm_tagger", dropout=args.dropout, num_classes=len(CONLL_TAGS), **build)
model.compile(
    optimizer=keras.optimizers.Adam(args.learning_rate),
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    jit_compile=True,
)


class KeepBestF1(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.best, self.weights, self.history = -1.0, None, []

    def on_epoch_end(self, epoch, logs=None):
        score = kzoo.text.evaluate_tagger(self.model, dev)["f1"]
        self.history.append({"epoch": epoch + 1, "loss": float(logs["loss"]), "dev_f1": score})
        print(f"epoch {epoch + 1}: eng.testa entity F1 {score:.2f}")
        if score > self.best:
            self.best, self.weights = score, self.model.get_weights()


keep = KeepBestF1()
started = time.perf_counter()
model.fit(train, epochs=args.epochs, callbacks=[keep], verbose=2)
train_seconds = time.perf_counter() - started
model.set_weights(keep.weights)

"""
## Test (eng.testb) and an example sentence
"""

scores = kzoo.text.evaluate_tagger(model, test)
print(
    f"eng.testb entity F1 {scores['f1']:.2f} (precision {scores['precision']:.2f}, recall {scores['recall']:.2f}; "
    f"{scores['correct']}/{scores['chunks']} entities), {train_seconds:.0f} s of training"
)
sentence = "Angela Merkel met Emmanuel Macron in Berlin to discuss the European Union budget .".split()
print(" ".join(f"{word}/{tag}" for word, tag in kzoo.text.tag(model, sentence, features=features)))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

figure, left = plt.subplots(figsize=(5.5, 3.2))
epochs = [h["epoch"] for h in keep.history]
left.plot(epochs, [h["loss"] for h in keep.history], "o-", color="tab:blue")
left.set_xlabel("epoch")
left.set_ylabel("training loss", color="tab:blue")
right = left.twinx()
right.plot(epochs, [h["dev_f1"] for h in keep.history], "s-", color="tab:red")
right.set_ylabel("eng.testa entity F1", color="tab:red")
figure.suptitle(f"bi-LSTM tagger on CoNLL-2003: test F1 {scores['f1']:.1f}")
figure.tight_layout()
figure.savefig(output_dir / "bilstm_ner_curves.png", dpi=100)
print(f"wrote {output_dir / 'bilstm_ner_curves.png'}")

weights_path = output_dir / "bilstm_tagger_conll2003.weights.h5"
inference_model = kzoo.get("bilstm_tagger", num_classes=len(CONLL_TAGS), **build)
inference_model.set_weights(model.get_weights())
inference_model.save_weights(weights_path)
summary = {"test": scores, "dev_f1": keep.best, "train_seconds": round(train_seconds), "history": keep.history}
(output_dir / "summary.json").write_text(json.dumps({**summary, "args": vars(args)}, indent=2))

"""
## Publishing (maintainers)
"""

if args.publish:
    target = kzoo_weights.publish_file(weights_path)
    record = kzoo_weights.WeightsRecord(
        model="bilstm_tagger",
        tag="conll2003",
        file=target.name,
        sha256=kzoo_weights.file_hashes(target)["sha256"],
        size=target.stat().st_size,
        dataset="CoNLL-2003 English eng.train (14,041 sentences); epoch chosen on eng.testa",
        metrics={
            "test_f1": round(scores["f1"], 2),
            "test_precision": round(scores["precision"], 2),
            "test_recall": round(scores["recall"], 2),
            "dev_f1": round(keep.best, 2),
        },
        eval_split="CoNLL-2003 eng.testb (3,453 sentences), entity-level F1 as conlleval counts it",
        num_classes=len(CONLL_TAGS),
        class_names=CONLL_TAGS,
        license="Weights trained by kzoo on CoNLL-2003 for research use; no CoNLL text or vocabulary is included",
        recipe="examples/train_bilstm_ner_conll.py " + " ".join(sys.argv[1:]),
        default=True,
        builder_kwargs=build,
        text={"hashing": "lower-cased words, keras.layers.Hashing", "num_bins": args.num_bins, "max_word_length": 16},
    )
    kzoo_weights.write_manifest_entry(record)
    print(f"published {target}")
