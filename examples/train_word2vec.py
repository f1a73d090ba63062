"""
Title: word2vec skip-gram and CBOW on WikiText-2 and Tiny Shakespeare (recipe of kzoo's word2vec weights)
Description: Word vectors by negative sampling; neighbours, analogies, and TensorBoard's embedding projector.
Model: word2vec_skipgram, word2vec_cbow (10,000 words, 64 dimensions)
Data: WikiText-2 valid and Tiny Shakespeare from the shared data directory; WikiText-2 test (held-out score).
Runtime: about 3 minutes on 2 CPU cores for one architecture with the default flags; `--quick` takes seconds.
Tags: text-embedding, word2vec, wikitext2, tinyshakespeare, projector, recipe
Figure: word2vec_words.png
Shared-data: wikitext2, tinyshakespeare

## What this shows

Mikolov et al.'s two word2vec models, trained the way the original tool trains them:
frequent words subsampled, dynamic windows, 5 negatives from the unigram distribution
raised to 3/4, a sigmoid cross-entropy. Then the classic queries

    kzoo.text.nearest(vectors, vocabulary, "king")
    kzoo.text.analogy(vectors, vocabulary, "king", "man", "woman")   # king - man + woman

and the vectors written for TensorBoard's embedding projector. The held-out figure is the
ranking accuracy on WikiText-2 test: how often the true neighbour of a word (pairs drawn
as in training) scores above all five sampled negatives (chance: 1 in 6).

    python examples/train_word2vec.py --architecture skipgram
    tensorboard --logdir runs/word2vec_skipgram/projector
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
from kzoo.models.word2vec import word_vectors

parser = argparse.ArgumentParser(description=__doc__.split("\n")[2])
parser.add_argument("--architecture", choices=("skipgram", "cbow"), default="skipgram")
parser.add_argument("--epochs", type=int, default=8)
parser.add_argument("--embedding-dim", type=int, default=64)
parser.add_argument("--max-tokens", type=int, default=10000)
parser.add_argument("--window", type=int, default=4)
parser.add_argument("--negatives", type=int, default=5)
parser.add_argument("--batch-size", type=int, default=256)
parser.add_argument("--learning-rate", type=float, default=5e-3)
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--output-dir", default=None, help="default runs/word2vec_<architecture>")
parser.add_argument("--quick", action="store_true", help="1 epoch on 5% of the text; never publishes")
parser.add_argument("--publish", action="store_true", help="write the weights, vocabulary and manifest entry")
args = parser.parse_args()
if args.quick:
    args.epochs, args.publish = 1, False
name = f"word2vec_{args.architecture}"
output_dir = Path(args.output_dir or f"runs/{name}")
output_dir.mkdir(parents=True, exist_ok=True)
keras.utils.set_random_seed(args.seed)

"""
## Corpus and vocabulary

One line of text per example for the vectorizer; the ids are then read as one stream.
"""

lines = kzoo.text.corpus_lines("wikitext2-valid", "tinyshakespeare")
held_out_lines = kzoo.text.corpus_lines("wikitext2-test")
if args.quick:
    lines, held_out_lines = lines[: len(lines) // 20], held_out_lines[:200]
vectorizer = kzoo.text.vectorizer(lines, max_tokens=args.max_tokens)
vocabulary = vectorizer.get_vocabulary()


ids = kzoo.text.id_stream(vectorizer, lines)
held_out_ids = kzoo.text.id_stream(vectorizer, held_out_lines)
counts = kzoo.text.token_counts(ids, len(vocabulary))
print(f"{len(ids):,} training tokens, {len(held_out_ids):,} held-out tokens, vocabulary {len(vocabulary):,}")

"""
## Model and training

Fresh examples every epoch (new subsampling, windows and negatives), as word2vec does.
"""

examples = kzoo.text.skipgram_examples if args.architecture == "skipgram" else kzoo.text.cbow_examples
build = {"vocab_size": len(vocabulary), "embedding_dim": args.embedding_dim, "num_negatives": args.negatives}
if args.architecture == "cbow":
    build["window"] = args.window
model = kzoo.get(name, **build)
model.compile(
    optimizer=keras.optimizers.Adam(args.learning_rate),
    loss=keras.losses.BinaryCrossentropy(from_logits=True),
    jit_compile=not args.quick,  # a smoke run skips the XLA compile (test_models compiles each model)
)
started = time.perf_counter()
for epoch in range(args.epochs):
    x, y = examples(ids, counts, window=args.window, num_negatives=args.negatives, seed=args.seed + epoch)
    history = model.fit(x, y, batch_size=args.batch_size, epochs=1, verbose=2)
train_seconds = time.perf_counter() - started


held_out_accuracy = kzoo.text.ranking_accuracy(model, held_out_ids, counts, window=args.window)
print(
    f"held-out ranking accuracy {held_out_accuracy:.4f} (chance {1 / (1 + args.negatives):.4f}), {train_seconds:.0f} s"
)
metrics = {"held_out_ranking_accuracy": round(held_out_accuracy, 4)}
write_metrics(output_dir, {f"{name}.wikitext2": metrics})  # what `kzoo reproduce` reads

"""
## Queries
"""

vectors = word_vectors(model)
queries = {}
for word in ("king", "france", "love", "war", "good", "three"):
    if word in vocabulary:
        queries[word] = [w for w, _ in kzoo.text.nearest(vectors, vocabulary, word, 6)]
        print(f"nearest to {word!r}: {', '.join(queries[word])}")
for a, b, c in (("king", "man", "woman"), ("paris", "france", "england"), ("brother", "he", "she")):
    if all(w in vocabulary for w in (a, b, c)):
        answer = [w for w, _ in kzoo.text.analogy(vectors, vocabulary, a, b, c, 5)]
        queries[f"{a} - {b} + {c}"] = answer
        print(f"{a} - {b} + {c} = {', '.join(answer)}")

# The query words and their neighbours, projected on the first two principal components.
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

shown = sorted({w for word, near in queries.items() if " " not in word for w in [word, *near[:3]]})
points = vectors[[vocabulary.index(w) for w in shown]]
points = points - points.mean(axis=0)
_, _, axes_pc = np.linalg.svd(points, full_matrices=False)
xy = points @ axes_pc[:2].T
figure, axis = plt.subplots(figsize=(6, 5))
axis.scatter(xy[:, 0], xy[:, 1], s=8, color="tab:blue")
for (x_, y_), word in zip(xy, shown):
    axis.annotate(word, (x_, y_), fontsize=8, color="tab:red" if word in queries else "black")
axis.set_title(f"{name}: query words (red) and neighbours, PCA", fontsize=10)
figure.tight_layout()
figure.savefig(output_dir / "word2vec_words.png", dpi=100)
print(f"wrote {output_dir / 'word2vec_words.png'}")

"""
## TensorBoard projector

The vectors as a checkpointed variable, the words as metadata, and a projector config.
"""

import tensorflow as tf  # noqa: E402
from tensorboard.plugins import projector  # noqa: E402

projector_dir = output_dir / "projector"
projector_dir.mkdir(exist_ok=True)
(projector_dir / "metadata.tsv").write_text("\n".join(w or "<pad>" for w in vocabulary) + "\n", encoding="utf-8")
checkpoint = tf.train.Checkpoint(embedding=tf.Variable(vectors))
checkpoint.save(str(projector_dir / "embedding.ckpt"))
config = projector.ProjectorConfig()
embedding = config.embeddings.add()
embedding.tensor_name = "embedding/.ATTRIBUTES/VARIABLE_VALUE"
embedding.metadata_path = "metadata.tsv"
projector.visualize_embeddings(str(projector_dir), config)
print(f"tensorboard --logdir {projector_dir}")

weights_path = output_dir / f"{name}_wikitext2.weights.h5"
inference_model = kzoo.get(name, **build)
inference_model.set_weights(model.get_weights())
inference_model.save_weights(weights_path)
vocabulary_path = output_dir / f"{name}_wikitext2.vocab.txt"
vocabulary_path.write_text("\n".join(vocabulary[2:]) + "\n", encoding="utf-8")
summary = {"held_out_ranking_accuracy": held_out_accuracy, "train_seconds": round(train_seconds), "queries": queries}
(output_dir / "summary.json").write_text(json.dumps({**summary, "args": vars(args)}, indent=2))

"""
## Publishing (maintainers)
"""

if args.publish:
    target, vocabulary = kzoo_weights.publish_file(weights_path), kzoo_weights.publish_file(vocabulary_path)
    record = kzoo_weights.WeightsRecord(
        model=name,
        tag="wikitext2",
        file=target.name,
        sha256=kzoo_weights.file_hashes(target)["sha256"],
        size=target.stat().st_size,
        dataset="WikiText-2 valid and Tiny Shakespeare",
        metrics=metrics,
        eval_split=(
            f"WikiText-2 test, pairs drawn as in training: the true neighbour scores above all "
            f"{args.negatives} sampled negatives (chance 1/{args.negatives + 1})"
        ),
        license="CC BY-SA 3.0 (trained by kzoo on WikiText-2, CC BY-SA 3.0, and Tiny Shakespeare, public domain)",
        recipe="examples/train_word2vec.py " + " ".join(sys.argv[1:]),
        default=True,
        builder_kwargs=build,
        text={
            "vocabulary": vocabulary_path.name,
            "vocabulary_sha256": kzoo_weights.file_hashes(vocabulary)["sha256"],
            "standardize": "lower_and_strip_punctuation",
            "split": "whitespace",
        },
    )
    kzoo_weights.write_manifest_entry(record)
    print(f"published {target} and {vocabulary_path.name}")
