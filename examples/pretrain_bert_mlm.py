"""
Title: Pretrain a mini-BERT with masked language modelling (recipe of kzoo's `bert_tiny.wikitext2_shakespeare*` weights)
Description: WordPiece vocabulary, packed 128-token sequences, dynamic 80/10/10 masking, XLA; held-out MLM accuracy.
Model: bert_tiny (2 layers, hidden 128, 2 heads) with its masked-LM head
Data: Tiny Shakespeare, WikiText-2 valid (and SST-2 train sentences); WikiText-2 test held out; shared data directory.
Runtime: about 15 minutes on 2 idle CPU cores with the default flags; `--quick` takes about a minute.
Tags: bert, transformer, masked-language-modeling, pretraining, wordpiece, xla, recipe
Figure: bert_mlm_curves.png
Shared-data: tinyshakespeare, wikitext2

## What this shows

BERT learns by filling in blanks. 15% of the tokens of each sequence are chosen; 80% of
those are replaced by `[MASK]`, 10% by a random token and 10% are left alone, and the
model predicts the original token at every chosen position. The choice is drawn anew every
epoch (dynamic masking, as RoBERTa does), by tensorflow-text's `mask_language_model`:

    vocabulary = kzoo.text.wordpiece_vocabulary(lines)            # tensorflow-text learner
    tokenizer = kzoo.text.WordPieceTokenizer(vocabulary)
    sequences = kzoo.text.packed_sequences(tokenizer, lines)      # (n, 128): [CLS] ... [SEP]
    train = kzoo.text.masked_lm_datasets(sequences, tokenizer)    # inputs, targets, weights
    model = kzoo.get("bert_tiny", vocab_size=len(vocabulary))
    model.fit(train, ...)                                          # a plain functional model

Every sequence is exactly 128 tokens and every batch predicts 20 positions, so the
XLA-compiled step compiles once. The held-out figures come from WikiText-2 test, masked
once with a fixed seed. The most frequent token's accuracy is printed beside them: a
model that learned nothing about context reaches about that.

    python examples/pretrain_bert_mlm.py             # pretrain, evaluate, plot
    python examples/pretrain_bert_mlm.py --publish   # also write zoo_weights/ (maintainers)

`--corpus tinyshakespeare wikitext2-valid sst2-train` adds the SST-2 training sentences,
labels dropped (`kzoo.data.sst2_sentences`: each sentence once, not every phrase of it), to
the pretraining text and to the text the WordPiece vocabulary is learned from: task-adaptive
pretraining (Gururangan et al. 2020). Those weights are tagged `wikitext2_shakespeare_sst2`.
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

parser = argparse.ArgumentParser(description=__doc__.split("\n")[2])
parser.add_argument("--size", choices=("tiny", "mini"), default="tiny")
CORPORA = {  # --corpus name: (its part of the weights tag, how the manifest names it)
    "wikitext2-valid": ("wikitext2", "WikiText-2 valid"),
    "tinyshakespeare": ("shakespeare", "Tiny Shakespeare"),
    "sst2-train": ("sst2", "SST-2 train sentences (no labels)"),
}
parser.add_argument(
    "--corpus",
    nargs="+",
    choices=tuple(CORPORA),
    default=["tinyshakespeare", "wikitext2-valid"],
    help="pretraining text",
)
parser.add_argument("--epochs", type=int, default=12)
parser.add_argument("--batch-size", type=int, default=32)
parser.add_argument("--vocab-size", type=int, default=8192, help="target of the WordPiece learner")
parser.add_argument("--sequence-length", type=int, default=128)
parser.add_argument("--num-predictions", type=int, default=20)
parser.add_argument("--learning-rate", type=float, default=1e-3)
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--output-dir", default="runs/bert_mlm")
parser.add_argument(
    "--quick", action="store_true", help="a 1,400-line corpus, 64-token sequences, 1 epoch; never publishes"
)
parser.add_argument("--publish", action="store_true", help="write the weights, vocabulary and manifest entries")
args = parser.parse_args()
if args.quick:
    args.epochs, args.publish, args.vocab_size = 1, False, 1000

keras.utils.set_random_seed(args.seed)
output_dir = Path(args.output_dir)
output_dir.mkdir(parents=True, exist_ok=True)
name = f"bert_{args.size}"
tag = "_".join(part for corpus, (part, _) in CORPORA.items() if corpus in args.corpus)  # wikitext2_shakespeare

"""
## Vocabulary and packed sequences
"""

started = time.perf_counter()
lines = kzoo.text.corpus_lines(*args.corpus)
held_out_lines = kzoo.text.corpus_lines("wikitext2-test")
if args.quick:
    lines, held_out_lines, args.sequence_length = lines[::25], held_out_lines[:100], 64
vocabulary_path = output_dir / f"{name}_{tag}.vocab.txt"
vocabulary = kzoo.text.wordpiece_vocabulary(lines, vocab_size=args.vocab_size, path=vocabulary_path)
tokenizer = kzoo.text.WordPieceTokenizer(vocabulary, sequence_length=args.sequence_length)
sequences = kzoo.text.packed_sequences(tokenizer, lines, sequence_length=args.sequence_length)
held_out = kzoo.text.packed_sequences(tokenizer, held_out_lines, sequence_length=args.sequence_length)
print(
    f"vocabulary of {len(vocabulary)} WordPieces in {time.perf_counter() - started:.0f} s; "
    f"{len(sequences)} training and {len(held_out)} held-out sequences of {args.sequence_length}"
)

masking = {"batch_size": args.batch_size, "num_predictions": args.num_predictions}
train = kzoo.text.masked_lm_datasets(sequences, tokenizer, seed=args.seed, **masking)
import tensorflow as tf  # noqa: E402

tf.random.set_seed(args.seed)  # the held-out masks: drawn once, then fixed
held_out_batches = list(kzoo.text.masked_lm_datasets(held_out, tokenizer, shuffle=False, **masking))
evaluation = tf.data.Dataset.from_tensor_slices(
    tuple(
        tf.nest.map_structure(lambda *parts: tf.concat(parts, 0), *[batch[i] for batch in held_out_batches])
        for i in range(3)
    )
).batch(args.batch_size)

"""
## Model and training

AdamW with a linear warm-up over the first 10% of steps and cosine decay after it (Keras'
`CosineDecay` with `warmup_target`), as BERT-style pretraining does.
"""

build = {
    "vocab_size": len(vocabulary),
    "max_sequence_length": args.sequence_length,
    "num_predictions": args.num_predictions,
}
model = kzoo.get(name, **build)
steps = args.epochs * (len(sequences) // args.batch_size)
schedule = keras.optimizers.schedules.CosineDecay(
    0.0, decay_steps=max(1, steps - steps // 10), warmup_target=args.learning_rate, warmup_steps=steps // 10
)
model.compile(
    optimizer=keras.optimizers.AdamW(schedule, weight_decay=0.01, clipnorm=1.0),
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    weighted_metrics=["accuracy"],
    jit_compile=not args.quick,  # a smoke run skips the XLA compile (test_models compiles each model)
)
print(f"{name}: {model.count_params():,} parameters")
train_started = time.perf_counter()
history = model.fit(
    train,
    validation_data=evaluation,
    epochs=args.epochs,
    callbacks=[keras.callbacks.TensorBoard(str(output_dir / "tensorboard"))],
    verbose=2,
)
train_seconds = time.perf_counter() - train_started

"""
## Held-out masked-token accuracy and perplexity

Both are over the masked positions only (padding of the prediction slots has weight 0);
perplexity is the exponential of the mean cross-entropy there.
"""

total, correct, nll = 0.0, 0.0, 0.0
for inputs, targets, weights in evaluation:
    logits = keras.ops.convert_to_numpy(model(inputs, training=False)).astype("float64")
    targets, weights = targets.numpy(), weights.numpy()
    log_probabilities = logits - logits.max(-1, keepdims=True)
    log_probabilities -= np.log(np.exp(log_probabilities).sum(-1, keepdims=True))
    picked = np.take_along_axis(log_probabilities, targets[..., None], -1)[..., 0]
    total += weights.sum()
    correct += (weights * (logits.argmax(-1) == targets)).sum()
    nll -= (weights * picked).sum()
accuracy, perplexity = correct / total, float(np.exp(nll / total))
all_targets = np.concatenate([t.numpy()[w.numpy() > 0] for _, t, w in evaluation])
frequent = np.bincount(all_targets).argmax()
baseline = float(np.mean(all_targets == frequent))
print(
    f"held-out (WikiText-2 test) masked-token accuracy {accuracy:.4f}, perplexity {perplexity:.1f}; "
    f"always '{vocabulary[frequent]}': {baseline:.4f}  ({train_seconds:.0f} s of training)"
)
for sentence in ("the king is [MASK] .", "to be or not to [MASK] , that is the question"):
    print(sentence, "->", kzoo.text.fill_mask(model, tokenizer, sentence, k=3)[0])

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

figure, axes = plt.subplots(1, 2, figsize=(9, 3.2))
epochs = np.arange(1, len(history.history["loss"]) + 1)
for axis, metric in zip(axes, ("loss", "accuracy")):
    axis.plot(epochs, history.history[metric], "o-", label="train (masked tokens)")
    axis.plot(epochs, history.history[f"val_{metric}"], "o-", label="WikiText-2 test")
    axis.set_xlabel("epoch")
    axis.set_title(f"masked-LM {metric}")
    axis.legend()
axes[1].axhline(baseline, color="gray", linestyle=":", label="most frequent token")
figure.suptitle(f"{name} pretraining: held-out masked accuracy {accuracy:.3f}, perplexity {perplexity:.0f}")
figure.tight_layout()
figure.savefig(output_dir / "bert_mlm_curves.png", dpi=100)
print(f"wrote {output_dir / 'bert_mlm_curves.png'}")

weights_path = output_dir / f"{name}_{tag}.weights.h5"
inference_model = kzoo.get(name, **build)
inference_model.set_weights(model.get_weights())
inference_model.save_weights(weights_path)
metrics = {
    "heldout_masked_accuracy": round(float(accuracy), 4),
    "heldout_perplexity": round(perplexity, 2),
    "most_frequent_token_accuracy": round(baseline, 4),
}
summary = {**metrics, "train_seconds": round(train_seconds), "parameters": model.count_params()}
(output_dir / "summary.json").write_text(json.dumps({**summary, "args": vars(args)}, indent=2))
heads = (name, f"{name}_classifier", f"{name}_tagger")  # one file serves three records
write_metrics(output_dir, {f"{head}.{tag}": metrics for head in heads})  # what `kzoo reproduce` reads

"""
## Publishing (maintainers)

One weights file serves the masked-LM model and, through layer names, the classifier and
tagger heads: their records load the encoder and start a new head.
"""

if args.publish:
    if accuracy < 2 * baseline:  # a guard against a broken run, not a target
        raise SystemExit(f"not publishing: held-out accuracy {accuracy:.4f} is not twice the baseline")
    target, vocabulary_file = kzoo_weights.publish_file(weights_path), kzoo_weights.publish_file(vocabulary_path)
    for model_name in heads:
        kzoo_weights.write_manifest_entry(
            kzoo_weights.WeightsRecord(
                model=model_name,
                tag=tag,
                file=target.name,
                sha256=kzoo_weights.file_hashes(target)["sha256"],
                size=target.stat().st_size,
                dataset=(
                    f"{' + '.join(CORPORA[c][1] for c in args.corpus)}, {len(sequences)} packed sequences of "
                    f"{args.sequence_length} WordPieces, {args.epochs} epochs of masked-LM pretraining"
                ),
                metrics=metrics,
                eval_split=f"WikiText-2 test ({len(held_out)} packed sequences, masked once with a fixed seed)",
                license="Weights trained by kzoo; Tiny Shakespeare (public domain) and WikiText-2 (CC BY-SA 3.0)"
                + (
                    "; SST-2 sentences (Socher et al. 2013, research use; cite it)"
                    if "sst2-train" in args.corpus
                    else ""
                ),
                recipe="examples/pretrain_bert_mlm.py " + " ".join(sys.argv[1:]),
                default=tag == "wikitext2_shakespeare",  # the task-adaptive ones are opt-in by tag
                builder_kwargs={**build, "head": "mlm"},
                text={
                    "tokenizer": "wordpiece",
                    "vocabulary": vocabulary_path.name,
                    "vocabulary_sha256": kzoo_weights.file_hashes(vocabulary_file)["sha256"],
                    "lowercase": True,
                    "max_length": args.sequence_length,
                },
                notes="" if model_name == name else "Pretrained encoder only: the head starts untrained.",
            )
        )
    print(f"published {target} and {vocabulary_file.name} for {name}, {name}_classifier, {name}_tagger")
