"""kzoo.layers: GroupSort (MinMax) and GradientReversal against hand-computed values."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from kzoo import errors
from kzoo.layers import GradientReversal, GroupSort


def test_minmax_sorts_each_pair():
    x = np.array([[3.0, 1.0, -2.0, 5.0], [0.5, 0.5, 4.0, -4.0]], "float32")
    np.testing.assert_array_equal(GroupSort()(x), [[1.0, 3.0, -2.0, 5.0], [0.5, 0.5, -4.0, 4.0]])


def test_groupsort_groups_of_three_on_a_3d_input():
    x = np.array([[[2.0, 9.0, -1.0, 7.0, 7.0, 0.0]]], "float32")  # (batch 1, steps 1, units 6)
    np.testing.assert_array_equal(GroupSort(3)(x), [[[-1.0, 2.0, 9.0, 0.0, 7.0, 7.0]]])


def test_groupsort_gradient_is_a_permutation():
    x = tf.constant([[3.0, 1.0, -2.0, 5.0]])
    weights = tf.constant([[10.0, 20.0, 30.0, 40.0]])  # d(sum(w * sorted))/dx routes w back to the source unit
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.reduce_sum(weights * GroupSort()(x))
    np.testing.assert_array_equal(tape.gradient(y, x), [[20.0, 10.0, 30.0, 40.0]])


def test_groupsort_rejects_bad_sizes():
    with pytest.raises(errors.InvalidArgumentError, match="multiple of group_size=2"):
        GroupSort()(np.zeros((1, 3), "float32"))
    with pytest.raises(errors.InvalidArgumentError, match="positive integer"):
        GroupSort(0)


def test_gradient_reversal_is_identity_forward_and_negates_gradients():
    x = tf.constant([[1.5, -2.0, 0.25]])
    layer = GradientReversal(scale=0.5)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
        loss = tf.reduce_sum(y * tf.constant([[2.0, 4.0, -6.0]]))
    np.testing.assert_allclose(y, x, rtol=1e-6)
    np.testing.assert_allclose(tape.gradient(loss, x), [[-1.0, -2.0, 3.0]])  # -0.5 * (2, 4, -6)
    layer.scale.assign(2.0)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(layer(x))
    np.testing.assert_allclose(tape.gradient(loss, x), [[-2.0, -2.0, -2.0]])
    with pytest.raises(errors.InvalidArgumentError, match=">= 0"):
        GradientReversal(scale=-1.0)


@pytest.mark.parametrize("layer", [GroupSort(2), GradientReversal(0.3)], ids=["GroupSort", "GradientReversal"])
def test_layers_round_trip_through_keras_files(layer, tmp_path):
    inputs = keras.Input((4,))
    model = keras.Model(inputs, layer(keras.layers.Dense(4)(inputs)))
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    x = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
