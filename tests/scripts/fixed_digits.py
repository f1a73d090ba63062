"""UCI digits for the resume scripts, in one fixed batch order (shared by finetune_*.py here)."""

import keras
import numpy as np
import tensorflow as tf

import kzoo


def fixed_digits(count: int):
    """``(model, train, validation)``: pretrained LeNet-5, ``count`` seeded UCI digits as one pass
    of kzoo's pipeline frozen into a fixed order (a resumed process would otherwise start the
    shuffle over, and its epochs would see other batches than an uninterrupted run's), and the
    pipeline's validation split."""
    keras.utils.set_random_seed(0)
    images, labels = kzoo.data.load_uci_digits()
    chosen = np.random.default_rng(0).choice(len(labels), count, replace=False)
    model = kzoo.get("lenet5", pretrained=True)
    data = kzoo.data.arrays(images[chosen], labels[chosen], model=model, batch_size=32)
    x, y = (np.concatenate(parts) for parts in zip(*((np.asarray(a), np.asarray(b)) for a, b in data.train)))
    return model, tf.data.Dataset.from_tensor_slices((x, y)).batch(32), data.validation
