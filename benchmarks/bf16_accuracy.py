"""Does bfloat16 keep accuracy? The same kzoo.finetune jobs in float32 and mixed_bfloat16, same seeds.

Each job runs once per seed and precision, alternating, with everything else equal (XLA off in
both, so only the precision differs), and the script prints each run's held-out accuracy, the
mean and standard error per precision, and whether the bfloat16 mean lies within one standard
error of float32's (the difference of means against the float32 standard error).

Jobs:

- ``lenet5_mnist``: LeNet-5 from scratch on the 60,000 MNIST training images (the last 6,000
  validate and pick the best epoch), 3 epochs, batch 128, Adam 1e-3; accuracy on the 10,000
  test images (read only for this report).
- ``transfer_digits``: the MNIST-pretrained LeNet-5 (kzoo's weights) fine-tuned with
  ``strategy="two-phase"`` on 200 UCI digits (scikit-learn's copy), 6 epochs; accuracy on the
  other 1,597.
- ``resnet_folder``: ResNet-18 from scratch (32x32 inputs) through ``kzoo.data.image_folder`` on
  a folder of 3,000 MNIST training digits written as PNG files (300 a class; 20% validate),
  8 epochs, batch 32, Adam 1e-3; accuracy on a second folder of 1,000 MNIST test digits.
  (With 2,000 digits and 5 epochs the runs had not settled: accuracies from 0.32 to 0.78.)
- ``bert_sst2``: the shipped BERT-Tiny encoder with a new classifier head, ``two-phase`` (1
  head epoch, then 1 epoch with the encoder's blocks unfrozen) on 20,000 SST-2 training
  phrases (``kzoo.data.sst2_validation_split`` holds some long ones out to pick the epoch);
  accuracy on the 872 SST-2 dev sentences. BERT trains in float32 under ``"auto"`` on
  a CPU (XLA is on for it there); this job shows what asking for bfloat16 costs, or what a GPU
  run (bfloat16 by default) gets.

    python benchmarks/bf16_accuracy.py                       # every job, seeds 0 1 2
    python benchmarks/bf16_accuracy.py --jobs lenet5_mnist --seeds 0 1 2 3 4

MNIST and SST-2 are read from the shared data directory (``KZOO_DATA_DIR``).
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
parser.add_argument("--jobs", default="lenet5_mnist,transfer_digits,resnet_folder,bert_sst2")
parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
args = parser.parse_args()

import keras  # noqa: E402
import numpy as np  # noqa: E402

import kzoo  # noqa: E402

PRECISIONS = {"float32": None, "bfloat16": "mixed_bfloat16"}


def accuracy(model, images, labels) -> float:
    """Top-1 accuracy, with the inputs the model expects (it may scale raw pixels itself)."""
    identity = kzoo.identity.of(model)
    pixels = images[..., None].astype("float32")
    x = pixels if identity.preprocessing_in_model else identity.preprocessing_object()(pixels)
    return float(np.mean(model.predict(x, batch_size=256, verbose=0).argmax(-1) == labels))


def lenet5_mnist(seed: int, policy: str | None) -> float:
    keras.utils.set_random_seed(seed)
    images, labels = kzoo.data.load_mnist("train")
    test_images, test_labels = kzoo.data.load_mnist("test")
    model = kzoo.get("lenet5", num_classes=10)
    data = kzoo.data.arrays(images, labels, model=model, batch_size=128, validation_split=0.1, seed=seed)
    kzoo.finetune(
        model, data, epochs=3, strategy="full", learning_rate=1e-3, jit_compile=False, mixed_precision=policy, verbose=0
    )
    return accuracy(model, test_images, test_labels)


def transfer_digits(seed: int, policy: str | None) -> float:
    keras.utils.set_random_seed(seed)
    images, labels = kzoo.data.load_uci_digits()
    order = np.random.default_rng(seed).permutation(len(labels))
    train, held_out = order[:200], order[200:]
    model = kzoo.get("lenet5", pretrained=True, num_classes=10)
    data = kzoo.data.arrays(images[train], labels[train], model=model, batch_size=32, validation_split=0.2, seed=seed)
    kzoo.finetune(
        model, data, epochs=6, strategy="two-phase", learning_rate=1e-3, jit_compile=False, mixed_precision=policy,
        verbose=0,
    )  # fmt: skip
    return accuracy(model, images[held_out], labels[held_out])


def _digit_folder(directory: Path, split: str, per_class: int) -> Path:
    """``directory/<digit>/<n>.png``: the first ``per_class`` MNIST ``split`` images of each digit, written once."""
    from PIL import Image

    if not directory.is_dir():
        images, labels = kzoo.data.load_mnist(split)
        for digit in range(10):
            (directory / str(digit)).mkdir(parents=True)
            for n, index in enumerate(np.flatnonzero(labels == digit)[:per_class]):
                Image.fromarray(images[index]).save(directory / str(digit) / f"{n}.png")
    return directory


SCRATCH = Path(tempfile.mkdtemp(prefix="kzoo_bf16_accuracy_"))
atexit.register(shutil.rmtree, SCRATCH, ignore_errors=True)
ENCODER = "wikitext2_shakespeare_sst2"  # the encoder the shipped bert_tiny_classifier.sst2 started from


def resnet_folder(seed: int, policy: str | None) -> float:
    keras.utils.set_random_seed(seed)
    train_dir = _digit_folder(SCRATCH / "train", "train", per_class=300)
    test_dir = _digit_folder(SCRATCH / "test", "test", per_class=100)
    model = kzoo.get("resnet18", num_classes=10, input_shape=(32, 32, 3))
    data = kzoo.data.image_folder(train_dir, model=model, batch_size=32, validation_split=0.2, seed=seed)
    kzoo.finetune(
        model, data, epochs=8, strategy="full", learning_rate=1e-3, jit_compile=False, mixed_precision=policy,
        verbose=0,
    )  # fmt: skip
    test = kzoo.data.image_folder(test_dir, model=model, batch_size=250, validation_split=0, seed=0).train
    right = total = 0
    for x, y in test:
        predicted = np.asarray(model.predict_on_batch(x)).argmax(-1)
        truth = np.asarray(y).argmax(-1) if np.ndim(y) > 1 else np.asarray(y).reshape(-1)
        right, total = right + int(np.sum(predicted == truth)), total + len(truth)
    return right / total


def bert_sst2(seed: int, policy: str | None) -> float:
    keras.utils.set_random_seed(seed)
    texts, labels = kzoo.data.load_sst2("train")
    keep = np.random.default_rng(seed).permutation(len(texts))[:20_000]
    texts, labels = [texts[i] for i in keep], labels[keep]
    dev_texts, dev_labels = kzoo.data.load_sst2("dev")
    model = kzoo.get("bert_tiny_classifier", pretrained=ENCODER)  # the masked-LM encoder, a new head
    tokenizer = kzoo.text.tokenizer_for(model)
    lengths = (16, 32, 64)
    (train_texts, train_labels), (val_texts, val_labels) = kzoo.data.sst2_validation_split(texts, labels, seed=seed)
    train = kzoo.text.text_datasets(
        train_texts, train_labels, vectorizer=tokenizer, batch_size=32, lengths=lengths, seed=seed
    )
    evaluation = {"vectorizer": tokenizer, "batch_size": 256, "shuffle": False, "lengths": lengths}
    validation = kzoo.text.text_datasets(val_texts, val_labels, **evaluation)
    kzoo.finetune(
        model, train, validation, epochs=2, strategy="two-phase", head_epochs=1, unfreeze_stages=3,
        learning_rate=1e-3, jit_compile=False, mixed_precision=policy, verbose=0,
    )  # fmt: skip
    right = total = 0
    for x, y in kzoo.text.text_datasets(dev_texts, dev_labels, **evaluation):
        predicted = np.asarray(model.predict_on_batch(x)).argmax(-1)
        right, total = right + int(np.sum(predicted == np.asarray(y).reshape(-1))), total + len(predicted)
    return right / total


JOBS = {
    "lenet5_mnist": lenet5_mnist,
    "transfer_digits": transfer_digits,
    "resnet_folder": resnet_folder,
    "bert_sst2": bert_sst2,
}
for job in [name.strip() for name in args.jobs.split(",") if name.strip()]:
    scores: dict[str, list[float]] = {name: [] for name in PRECISIONS}
    for seed in args.seeds:
        for name, policy in PRECISIONS.items():
            started = time.perf_counter()
            scores[name].append(JOBS[job](seed, policy))
            print(f"{job} seed {seed} {name:8} accuracy {scores[name][-1]:.4f} ({time.perf_counter() - started:.0f} s)")
            keras.backend.clear_session()
    mean = {name: statistics.mean(values) for name, values in scores.items()}
    sem = {name: statistics.stdev(values) / len(values) ** 0.5 for name, values in scores.items()}
    difference = mean["bfloat16"] - mean["float32"]
    print(
        f"{job}: float32 {mean['float32']:.4f} ± {sem['float32']:.4f} (s.e.), bfloat16 {mean['bfloat16']:.4f} ± "
        f"{sem['bfloat16']:.4f}; difference {difference:+.4f}, "
        f"{'within' if abs(difference) <= sem['float32'] else 'outside'} one float32 standard error",
        flush=True,
    )
