"""Which recurrent configurations compile under XLA, and how fast they train with and without it.

For each configuration (LSTM, GRU, bidirectional LSTM, two stacked LSTMs, the bi-LSTM tagger
with its character CNN, and the attention seq2seq) this builds the kzoo model, then times
train steps on the same batches with ``jit_compile=True`` and ``False`` in one process, and
prints steps/s, the first-step (compile) time and the XLA / no-XLA ratio. It also prints
what Keras decides about cuDNN on this machine: a recurrent layer that will run cuDNN's
fused kernel (TensorFlow with a GPU) reports ``supports_jit=False``, and kzoo.finetune then
trains it without XLA and says so.

    python benchmarks/rnn_xla.py                 # batch 64, length 64
    python benchmarks/rnn_xla.py --steps 50 --length 128

Timings on a shared machine are noisy; compare the ratios of one run.
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

import kzoo
from kzoo.models.rnn import token_inputs

parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
parser.add_argument("--batch", type=int, default=64)
parser.add_argument("--length", type=int, default=64)
parser.add_argument("--steps", type=int, default=20)
parser.add_argument("--units", type=int, default=128)
args = parser.parse_args()

CONFIGS = {
    "lstm": ("lstm_classifier", {}),
    "gru": ("gru_classifier", {}),
    "bilstm": ("bilstm_classifier", {}),
    "stacked lstm x2": ("stacked_lstm_classifier", {}),
    "bilstm tagger + char CNN": ("bilstm_tagger", {"vocab_size": 20000}),
    "seq2seq + attention": ("seq2seq_attention", {"source_vocab_size": 64, "target_vocab_size": 16}),
}


def batches(model, rng):
    """Inputs of the benchmark's length and zero targets shaped like the outputs."""
    inputs = token_inputs(model, args.batch, rng)
    inputs = inputs if isinstance(inputs, list) else [inputs]
    sized = []
    for tensor, array in zip(model.inputs, inputs):
        shape = (args.batch, args.length, *tuple(tensor.shape)[2:])
        high = max(2, int(array.max()) + 1)
        sized.append(rng.integers(1, high, size=shape).astype("int32"))
    x = sized if len(sized) > 1 else sized[0]
    targets = np.zeros(tuple(model(x).shape)[:-1], "int32")
    return x, targets


def measure(name, kwargs, jit):
    keras.utils.set_random_seed(0)
    model = kzoo.get(name, units=args.units, **kwargs)
    blockers = [layer.name for layer in model._flatten_layers(include_self=False) if not layer.supports_jit]
    x, y = batches(model, np.random.default_rng(0))
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=jit)
    started = time.perf_counter()
    model.train_on_batch(x, y)
    first = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(args.steps):
        model.train_on_batch(x, y)
    return args.steps / (time.perf_counter() - started), first, blockers


print(f"backend {keras.backend.backend()}, batch {args.batch}, length {args.length}, units {args.units}")
print(f"{'configuration':28} {'XLA steps/s':>12} {'plain steps/s':>14} {'XLA/plain':>10} {'compile s':>10}  cuDNN")
for label, (name, kwargs) in CONFIGS.items():
    try:
        xla, compile_seconds, blockers = measure(name, kwargs, True)
    except Exception as error:  # a configuration XLA refuses is a result, not a crash
        xla, compile_seconds, blockers = float("nan"), float("nan"), [f"XLA failed: {type(error).__name__}"]
    plain, _, _ = measure(name, kwargs, False)
    cudnn = ", ".join(blockers) if blockers else "no (generic loop; XLA compiles it)"
    print(f"{label:28} {xla:12.2f} {plain:14.2f} {xla / plain:10.2f} {compile_seconds:10.1f}  {cudnn}")
