"""
Title: Bi-LSTM-CRF named-entity tagger on CoNLL-2003 (recipe of kzoo's `bilstm_crf_tagger.conll2003` weights)
Description: A bi-LSTM over hashed words and characters, with a CRF on top, tags named entities (conlleval F1).
Model: bilstm_crf_tagger (32,768 hashed words x 100, character bi-LSTM, 2 x 100 LSTM units, CRF); or bilstm_tagger
Data: CoNLL-2003 English from the shared data directory: eng.train, eng.testa (epoch choice), eng.testb (test).
Runtime: about 3 minutes on 2 CPU cores (2 epochs, 1 seed); `--publish` (3 seeds x 10 epochs) about 45 minutes.
Tags: token-classification, ner, rnn, bilstm, crf, conll2003, recipe
Figure: bilstm_ner_curves.png
Shared-data: conll2003

## What this shows

A many-to-many recurrent model: one tag per token, padded positions masked out of the
loss, and the entity-level F1 of the CoNLL shared task, where an entity counts only when
its type and both ends are right (the `conlleval` script's rule, `kzoo.text.conll_f1`).

The CRF (`kzoo.layers.CRF`, Lample et al. 2016) scores whole tag sequences: it learns
that `I-PER` follows `B-PER` or `I-PER` and never `O`, and `predict` returns the best
sequence (Viterbi) rather than the best tag at each token. The figure shows its learnt
transition scores, the F1 per entity type and the learning curve.

The Reuters text of CoNLL-2003 may be used for research but not redistributed, and a
vocabulary of it would be a piece of it. So the tagger has no vocabulary: words are
lower-cased and hashed into 32,768 ids (`keras.layers.Hashing`), and a character encoder
over each word's bytes sees capitals, digits and suffixes. Only the weights ship.

Each seed's model is chosen by its epoch with the best eng.testa F1; eng.testb is read
once per seed, after training, and the shipped figure is the mean and standard deviation
over the seeds (the median seed's weights ship).

    python examples/train_bilstm_ner_conll.py             # 2 epochs: about 3 minutes
    python examples/train_bilstm_ner_conll.py --publish   # maintainers: 3 seeds x 10 epochs
    python examples/train_bilstm_ner_conll.py --model bilstm_tagger --epochs 8 \
        --embedding-dim 64 --units 64 --num-bins 16384 --publish   # the softmax tagger's weights
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
from kzoo.examples import write_metrics
from kzoo.text import CONLL_TAGS

parser = argparse.ArgumentParser(description=__doc__.split("\n")[2])
parser.add_argument("--model", default="bilstm_crf_tagger", choices=("bilstm_crf_tagger", "bilstm_tagger"))
parser.add_argument("--epochs", type=int, default=None, help="default: 2 (a 5-minute run); 10 with --publish")
parser.add_argument("--batch-size", type=int, default=32)
parser.add_argument("--embedding-dim", type=int, default=100)
parser.add_argument("--units", type=int, default=100)
parser.add_argument("--num-bins", type=int, default=32768)
parser.add_argument("--dropout", type=float, default=0.5)
parser.add_argument("--learning-rate", type=float, default=2e-3)
parser.add_argument(
    "--normalize-digits", action=argparse.BooleanOptionalAction, default=None, help="default: on for the CRF tagger"
)
parser.add_argument("--seeds", type=int, nargs="+", default=None, help="default: 0 (0 1 2 with --publish)")
parser.add_argument("--output-dir", default="runs/bilstm_ner")
parser.add_argument("--quick", action="store_true", help="1 epoch on 400 sentences; never publishes")
parser.add_argument("--publish", action="store_true", help="write the weights and manifest entry")
args = parser.parse_args()
args.epochs = args.epochs or (10 if args.publish else 2)
args.seeds = args.seeds or ([0, 1, 2] if args.publish else [0])
if args.quick:
    args.epochs, args.publish, args.seeds = 1, False, args.seeds[:1]
output_dir = Path(args.output_dir)
output_dir.mkdir(parents=True, exist_ok=True)
crf = args.model == "bilstm_crf_tagger"
if args.normalize_digits is None:
    args.normalize_digits = crf

"""
## Data

Tags are read as they come (IOB1); the features need no vocabulary. The CRF tagger hashes
every digit as 0 ("1996" and "2003" share an embedding; the characters still differ) and
counts the hashed training words, so that at test time a word never seen in training goes to
the unknown-word embedding (`kzoo.layers.UnknownWords`) rather than to an untrained bin.
"""

features = kzoo.text.TokenFeatures(num_bins=args.num_bins, normalize_digits=args.normalize_digits)


def load(split, limit=None):
    sentences, tags = kzoo.data.load_conll2003(split)
    sentences, tags = sentences[:limit], tags[:limit]
    return sentences, [[CONLL_TAGS.index(t) for t in row] for row in tags]


train_sentences, train_tags = load("train", 400 if args.quick else None)
dev_sentences, dev_tags = load("testa", 100 if args.quick else None)
test_sentences, test_tags = load("testb", 100 if args.quick else None)
lengths = (128,) if args.quick else kzoo.text.DEFAULT_LENGTHS  # one length compiles once in a smoke run
evaluation = {"features": features, "batch_size": 128, "shuffle": False, "lengths": lengths}
dev = kzoo.text.tagging_datasets(dev_sentences, dev_tags, **evaluation)
test = kzoo.text.tagging_datasets(test_sentences, test_tags, **evaluation)
print(f"{len(train_sentences)} training sentences")

"""
## Model and training

The CRF's loss is the negative log-likelihood of the gold tag sequence
(`kzoo.layers.CRFLoss`); the softmax tagger's is per-token cross-entropy. For each seed,
the epoch with the best entity F1 on eng.testa is kept.
"""

build = {"vocab_size": args.num_bins, "embedding_dim": args.embedding_dim, "units": args.units}


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


runs = []
for seed in args.seeds:
    keras.utils.set_random_seed(seed)
    train = kzoo.text.tagging_datasets(
        train_sentences, train_tags, features=features, batch_size=args.batch_size, lengths=lengths, seed=seed
    )
    model = kzoo.get(args.model, dropout=args.dropout, num_classes=len(CONLL_TAGS), **build)
    if "unknown_words" in [layer.name for layer in model.layers]:
        all_words = [word for sentence in train_sentences for word in sentence]
        model.get_layer("unknown_words").set_counts(np.asarray(features(all_words)["words"]))
    model.compile(
        optimizer=keras.optimizers.Adam(args.learning_rate, clipnorm=5.0 if crf else None),  # Lample et al. clip at 5
        loss=kzoo.layers.CRFLoss() if crf else keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        # XLA for real runs; a smoke run skips the compile (56 s -> 21 s for --quick here), and the
        # tests compile this model's training step with XLA elsewhere (tests/test_crf.py)
        jit_compile=not args.quick,
    )
    keep = KeepBestF1()
    started = time.perf_counter()
    model.fit(train, epochs=args.epochs, callbacks=[keep], shuffle=False, verbose=2)  # tf.data shuffles
    train_seconds = time.perf_counter() - started
    model.set_weights(keep.weights)
    scores = kzoo.text.evaluate_tagger(model, test, by_type=True)
    print(f"seed {seed}: eng.testb F1 {scores['f1']:.2f} (P {scores['precision']:.2f}, R {scores['recall']:.2f})")
    run = {"seed": seed, "test": scores, "dev_f1": keep.best, "train_seconds": round(train_seconds)}
    runs.append({**run, "history": keep.history})
    path = output_dir / f"seed{seed}.weights.h5"
    inference_model = kzoo.get(args.model, num_classes=len(CONLL_TAGS), **build)
    inference_model.set_weights(model.get_weights())
    inference_model.save_weights(path)

"""
## Test (eng.testb) over the seeds, and an example sentence
"""

f1s = np.array([run["test"]["f1"] for run in runs])
median = runs[int(np.argsort(f1s)[len(f1s) // 2])]
mean, sd = float(f1s.mean()), float(f1s.std(ddof=1)) if len(f1s) > 1 else 0.0
scores = median["test"]
print(
    f"eng.testb entity F1 over seeds {args.seeds}: {mean:.2f} ± {sd:.2f}; median seed {median['seed']}: "
    f"{scores['f1']:.2f} (precision {scores['precision']:.2f}, recall {scores['recall']:.2f}; "
    f"{scores['correct']}/{scores['chunks']} entities)"
)
for kind, numbers in scores["by_type"].items():
    print(f"  {kind:5s} F1 {numbers['f1']:.2f} (P {numbers['precision']:.2f}, R {numbers['recall']:.2f})")
model = kzoo.get(args.model, num_classes=len(CONLL_TAGS), **build)
model.load_weights(output_dir / f"seed{median['seed']}.weights.h5")
sentence = "Angela Merkel met Emmanuel Macron in Berlin to discuss the European Union budget .".split()
print(" ".join(f"{word}/{tag}" for word, tag in kzoo.text.tag(model, sentence, features=features)))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

panels = 3 if crf else 2
figure, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 3.6))
left = axes[0]
for run in runs:
    epochs = [h["epoch"] for h in run["history"]]
    left.plot(epochs, [h["dev_f1"] for h in run["history"]], "o-", label=f"seed {run['seed']}")
left.set_xlabel("epoch")
left.set_ylabel("eng.testa entity F1")
left.legend(fontsize=7)
kinds = list(scores["by_type"])
axes[1].bar(kinds, [scores["by_type"][k]["f1"] for k in kinds], color="tab:green")
axes[1].set_ylim(0, 100)
axes[1].set_title("eng.testb F1 per entity type", fontsize=9)
if crf:
    transitions = np.asarray(model.get_layer("crf").transitions)
    image = axes[2].imshow(transitions, cmap="coolwarm")
    axes[2].set_xticks(range(len(CONLL_TAGS)), CONLL_TAGS, rotation=90, fontsize=7)
    axes[2].set_yticks(range(len(CONLL_TAGS)), CONLL_TAGS, fontsize=7)
    axes[2].set_xlabel("to")
    axes[2].set_ylabel("from")
    axes[2].set_title("CRF transition scores", fontsize=9)
    figure.colorbar(image, ax=axes[2], fraction=0.046)
figure.suptitle(f"{args.model} on CoNLL-2003: test F1 {mean:.1f} ± {sd:.1f} over {len(runs)} seed(s)")
figure.tight_layout()
figure.savefig(output_dir / "bilstm_ner_curves.png", dpi=100)
print(f"wrote {output_dir / 'bilstm_ner_curves.png'}")

weights_path = output_dir / f"{args.model}_conll2003.weights.h5"
if "unknown_words" in [layer.name for layer in model.layers]:
    # Rows of hash bins no training word reached are never read (those ids become the unknown
    # word): zeroed, they compress away (gzip; h5py reads it back as is), halving the file.
    table = model.get_layer("embedding").embeddings
    table.assign(np.where(model.get_layer("unknown_words").unreachable()[:, None], 0.0, np.asarray(table)))
model.save_weights(weights_path)
kzoo_weights.compress_file(weights_path)
summary = {"test_f1_mean": mean, "test_f1_sd": sd, "median_seed": median["seed"], "runs": runs}
(output_dir / "summary.json").write_text(json.dumps({**summary, "args": vars(args)}, indent=2))
figures = {
    "test_f1": round(scores["f1"], 2),
    "test_precision": round(scores["precision"], 2),
    "test_recall": round(scores["recall"], 2),
    "dev_f1": round(median["dev_f1"], 2),
    "test_f1_mean": round(mean, 2),
    "test_f1_sd": round(sd, 2),
    "seeds": len(runs),
    **{f"test_f1_{kind}": round(n["f1"], 2) for kind, n in scores["by_type"].items()},
}
write_metrics(output_dir, {f"{args.model}.conll2003": figures})  # what `kzoo reproduce` reads

"""
## Publishing (maintainers)
"""

if args.publish:
    implied = f"--seeds {' '.join(map(str, args.seeds))} --epochs {args.epochs}"  # what --publish implied
    target = kzoo_weights.publish_file(weights_path)
    seconds = [run["train_seconds"] for run in runs]
    record = kzoo_weights.WeightsRecord(
        model=args.model,
        tag="conll2003",
        file=target.name,
        sha256=kzoo_weights.file_hashes(target)["sha256"],
        size=target.stat().st_size,
        dataset="CoNLL-2003 English eng.train (14,041 sentences); epoch chosen on eng.testa",
        metrics=figures,
        eval_split="CoNLL-2003 eng.testb (3,453 sentences), entity-level F1 as conlleval counts it",
        num_classes=len(CONLL_TAGS),
        class_names=CONLL_TAGS,
        license="Weights trained by kzoo on CoNLL-2003 for research use; no CoNLL text or vocabulary is included",
        recipe=f"examples/train_bilstm_ner_conll.py {' '.join(sys.argv[1:])} {implied}",
        default=True,
        builder_kwargs=build,
        text={
            "hashing": f"lower-cased words{', digits as 0' if args.normalize_digits else ''}, keras.layers.Hashing",
            "num_bins": args.num_bins,
            "max_word_length": 16,
            "normalize_digits": args.normalize_digits,
        },
        notes=(
            f"median of seeds {args.seeds} by eng.testb F1 (seed {median['seed']} ships); "
            f"{max(seconds)} s of training per seed at most on 2 CPU cores"
        ),
    )
    kzoo_weights.write_manifest_entry(record)
    print(f"published {target}")
