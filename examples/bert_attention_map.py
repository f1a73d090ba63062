"""
Title: What does a mini-BERT attend to? Attention maps of every head for one sentence
Description: Plot the attention probabilities of every head of kzoo's pretrained BERT-Tiny for a sentence.
Model: bert_tiny (pretrained by examples/pretrain_bert_mlm.py)
Data: none (the sentence is an argument); the shipped weights and vocabulary.
Runtime: a few seconds.
Tags: bert, transformer, attention, visualization
Figure: bert_attention_map.png

## What this shows

    model = kzoo.get("bert_tiny", pretrained=True)
    tokenizer = kzoo.text.tokenizer_for(model)
    maps = kzoo.models.bert.attention_maps(model, tokenizer([sentence]))  # one per block

Row *i* of a map is how much WordPiece *i* attends to every WordPiece (each row sums to
one; padding gets nothing). Heads specialise: some look at the previous or next token,
some at `[SEP]` or `[CLS]` (a common "no-op" target), some spread out. The figure also
prints the model's guess for a masked word, to show the same weights at work.

    python examples/bert_attention_map.py --sentence "the king is dead , long live the king ."
"""

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

import kzoo
from kzoo.models.bert import attention_maps

parser = argparse.ArgumentParser(description=__doc__.split("\n")[2])
parser.add_argument("--sentence", default="the queen of england went to london , and the king followed her .")
parser.add_argument("--output-dir", default="runs/bert_attention")
parser.add_argument("--quick", action="store_true", help="the same run (it is already quick)")
args = parser.parse_args()
output_dir = Path(args.output_dir)
output_dir.mkdir(parents=True, exist_ok=True)

model = kzoo.get("bert_tiny", pretrained=True)
tokenizer = kzoo.text.tokenizer_for(model)
inputs = {key: value.numpy() for key, value in tokenizer([args.sentence]).items()}
length = int(inputs["padding_mask"].sum())
tokens = [tokenizer.vocabulary[i] for i in inputs["token_ids"][0, :length]]
maps = [m[0, :, :length, :length] for m in attention_maps(model, inputs)]
print(f"{len(tokens)} WordPieces: {' '.join(tokens)}")

words = args.sentence.split()
masked = " ".join("[MASK]" if i == len(words) // 2 else w for i, w in enumerate(words))
guesses = kzoo.text.fill_mask(model, tokenizer, masked, k=3)[0]
print(f"{masked!r}: {', '.join(f'{t} ({p:.2f})' for t, p in guesses)}  (the hidden word: {words[len(words) // 2]!r})")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

heads = maps[0].shape[0]
figure, axes = plt.subplots(len(maps), heads, figsize=(4.2 * heads, 4.0 * len(maps)), squeeze=False)
for block, block_map in enumerate(maps):
    for head in range(heads):
        axis = axes[block][head]
        axis.imshow(block_map[head], cmap="viridis", vmin=0.0, vmax=1.0)
        axis.set_xticks(np.arange(length), tokens, rotation=90, fontsize=7)
        axis.set_yticks(np.arange(length), tokens, fontsize=7)
        axis.set_title(f"block {block + 1}, head {head + 1}", fontsize=9)
figure.suptitle("bert_tiny attention (rows: attending WordPiece)")
figure.tight_layout()
figure.savefig(output_dir / "bert_attention_map.png", dpi=90)
print(f"wrote {output_dir / 'bert_attention_map.png'}")
