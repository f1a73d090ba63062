"""LoRA against full fine-tuning of the pretrained BERT-Tiny on SST-2, on the same budget.

Both runs start from ``kzoo.get("bert_tiny_classifier", pretrained="wikitext2_shakespeare")``
(the masked-LM encoder of examples/pretrain_bert_mlm.py, a new pooler and head, seeded alike),
read the same random subset of SST-2 training phrases, tokenized with the pretraining
WordPiece vocabulary to at most ``--max-length`` pieces, in the same batches, for the same
number of steps. ``"full"`` trains every weight; ``"lora"`` adds Keras' LoRA factors of
``--rank`` to every Dense, EinsumDense and Embedding layer outside the head and trains those and
the head (``kzoo.finetune(..., strategy="lora")``). Each is evaluated on the SST-2 dev set
(872 sentences); the LoRA model is also merged (``kzoo.merge_lora``) and evaluated again.
Prints each run's dev accuracy, trainable parameters and time, and the ratios.

    python benchmarks/lora_vs_full.py                                  # 4,000 phrases, 2 epochs
    python benchmarks/lora_vs_full.py --train-size 8000 --epochs 1 --seed 1
    python benchmarks/lora_vs_full.py --train-size 64 --epochs 1 --jit-compile off   # a smoke run

Reads SST-2 from the shared data directory (``KZOO_DATA_DIR``).
"""

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

import kzoo

WEIGHTS = "wikitext2_shakespeare"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train-size", type=int, default=4000, help="SST-2 training phrases (a seeded random subset)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=64, help="WordPieces per phrase")
    parser.add_argument("--rank", type=int, default=8, help="LoRA rank")
    parser.add_argument("--full-learning-rate", type=float, default=1e-4)
    parser.add_argument("--lora-learning-rate", type=float, default=1e-3)
    parser.add_argument("--dev-size", type=int, default=None, help="the first N dev sentences (smoke tests)")
    parser.add_argument("--json", default=None, help="also write the measurements here")
    parser.add_argument(
        "--jit-compile",
        choices=("kzoo", "on", "off"),
        default="kzoo",
        help="XLA for both runs: kzoo.finetune's choice for the device (the measured setting), or forced",
    )
    args = parser.parse_args(argv)
    for name in ("train_size", "epochs", "batch_size", "max_length", "rank"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')}: expected a positive integer, received {getattr(args, name)}")
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    texts, labels = kzoo.data.load_sst2("train")
    chosen = np.random.default_rng(args.seed).permutation(len(texts))[: args.train_size]
    texts, labels = [texts[i] for i in chosen], labels[chosen]
    dev_texts, dev_labels = kzoo.data.load_sst2("dev")
    dev_texts, dev_labels = dev_texts[: args.dev_size], dev_labels[: args.dev_size]

    def pretrained():
        keras.utils.set_random_seed(args.seed)  # the same new pooler and head for both runs
        return kzoo.get("bert_tiny_classifier", pretrained=WEIGHTS)

    vocabulary = kzoo.text.tokenizer_for(pretrained()).vocabulary
    tokenizer = kzoo.text.WordPieceTokenizer(vocabulary, sequence_length=args.max_length)
    lengths = (args.max_length,)

    def train_batches():  # built afresh per run: the same seed gives both runs the same batches
        return kzoo.text.text_datasets(
            texts, labels, vectorizer=tokenizer, batch_size=args.batch_size, lengths=lengths, seed=args.seed
        )

    dev = kzoo.text.text_datasets(
        dev_texts, dev_labels, vectorizer=tokenizer, batch_size=256, lengths=lengths, shuffle=False
    )
    steps = args.epochs * sum(1 for _ in train_batches())
    print(
        f"SST-2: {len(texts)} training phrases (seed {args.seed}), batch {args.batch_size}, {args.epochs} epoch(s) = "
        f"{steps} steps per run, max length {args.max_length}; dev: {len(dev_texts)} sentences"
    )

    runs = {}
    for strategy, learning_rate in (("full", args.full_learning_rate), ("lora", args.lora_learning_rate)):
        model = pretrained()
        started = time.perf_counter()
        result = kzoo.finetune(
            model,
            train_batches(),
            epochs=args.epochs,
            strategy=strategy,
            lora_rank=args.rank,
            learning_rate=learning_rate,
            jit_compile={"kzoo": None, "on": True, "off": False}[args.jit_compile],
            verbose=0,
        )
        seconds = time.perf_counter() - started
        _, accuracy = model.evaluate(dev, verbose=0)
        run = {
            "dev_accuracy": float(accuracy),
            "trainable_params": result.trainable_params,
            "total_params": result.total_params,
            "learning_rate": learning_rate,
            "train_loss": result.history["loss"],
            "seconds": seconds,
        }
        if strategy == "lora":
            merged = kzoo.merge_lora(model)
            merged.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
            run["merged_dev_accuracy"] = float(merged.evaluate(dev, verbose=0)[1])
            run["merged_params"] = int(merged.count_params())
        runs[strategy] = run
        print(
            f"{strategy:>4}: dev accuracy {accuracy:.4f}, trains {result.trainable_params:,} of "
            f"{result.total_params:,} parameters ({100 * result.trainable_ratio:.2f}%), lr {learning_rate:g}, "
            f"final train loss {result.history['loss'][-1]:.4f}, {seconds:.0f} s"
        )

    full, lora = runs["full"], runs["lora"]
    print(
        f"merged LoRA model: dev accuracy {lora['merged_dev_accuracy']:.4f}, {lora['merged_params']:,} parameters "
        "(no LoRA variables)"
    )
    print(
        f"lora / full: trainable parameters {lora['trainable_params'] / full['trainable_params']:.4f} "
        f"({full['trainable_params'] / lora['trainable_params']:.1f}x fewer), dev accuracy "
        f"{100 * (lora['dev_accuracy'] - full['dev_accuracy']):+.2f} points, "
        f"time {lora['seconds'] / full['seconds']:.2f}"
    )
    results = {"settings": vars(args), "steps": steps, "runs": runs}
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=2)
    return results


if __name__ == "__main__":
    main()
