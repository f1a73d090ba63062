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


def test_unknown_words_maps_unseen_ids_and_drops_singletons_in_training(tmp_path):
    from kzoo.layers import UnknownWords

    layer = UnknownWords(10, singleton_rate=0.5, seed=3)
    ids = np.array([[2, 3, 4, 9, 0]])
    np.testing.assert_array_equal(layer(ids), ids)  # no counts yet: every id passes
    layer.set_counts(np.array([2, 2, 3, 4, 4, 0, 0]))  # 2 and 4 twice, 3 once; 0 (padding) not counted
    np.testing.assert_array_equal(np.asarray(layer.counts), [0, 0, 2, 1, 2, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(layer(ids), [[2, 3, 4, 1, 0]])  # 9 was never seen: unknown (1)
    many = np.tile(np.array([[2, 3, 4, 0]]), (5000, 1))
    trained = np.asarray(layer(many, training=True))
    assert np.all(trained[:, [0, 2, 3]] == many[:, [0, 2, 3]])  # frequent words and padding stay
    dropped = np.mean(trained[:, 1] == 1)  # the singleton becomes unknown about half of the time
    assert 0.45 < dropped < 0.55 and set(np.unique(trained[:, 1])) == {1, 3}
    model = keras.Sequential([keras.Input((5,), dtype="int32"), layer])
    model.save(tmp_path / "unknown.keras")
    restored = keras.saving.load_model(tmp_path / "unknown.keras")
    np.testing.assert_array_equal(restored(ids), [[2, 3, 4, 1, 0]])  # the counts travel with the model


def test_token_features_normalize_digits_only_in_the_word_hash():
    from kzoo.text import TokenFeatures

    plain, normalized = TokenFeatures(1024), TokenFeatures(1024, normalize_digits=True)
    words = ["1996", "2003", "Q3", "Q4"]
    a, b = plain(words), normalized(words)
    assert len(set(np.asarray(a["words"]).tolist())) == 4
    assert (
        np.asarray(b["words"])[0] == np.asarray(b["words"])[1]
        and np.asarray(b["words"])[2] == np.asarray(b["words"])[3]
    )
    np.testing.assert_array_equal(a["chars"], b["chars"])  # the characters still see the digits


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_masked_max_pooling_takes_the_maximum_of_the_valid_steps_only(dtype, tmp_path):
    from kzoo.layers import MaskedGlobalMaxPooling1D

    rng = np.random.default_rng(0)
    values = rng.normal(size=(3, 6, 4)).astype("float32") - 5.0  # all negative: a zero-padded max would be wrong
    lengths = np.array([6, 2, 0])
    mask = np.arange(6)[None, :] < lengths[:, None]
    pooled = np.asarray(keras.ops.cast(MaskedGlobalMaxPooling1D(dtype=dtype)(values, mask=mask), "float32"))
    reference = keras.ops.convert_to_numpy(keras.ops.cast(keras.ops.cast(values, dtype), "float32"))
    np.testing.assert_array_equal(pooled[0], reference[0].max(axis=0))
    np.testing.assert_array_equal(pooled[1], reference[1, :2].max(axis=0))
    np.testing.assert_array_equal(pooled[2], np.zeros(4))  # nothing valid: zeros, not the dtype's lowest value
    # Through a model: the mask comes from the embedding, and a padded sentence pools like the sentence alone.
    tokens = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(20, 4, mask_zero=True)(tokens)
    model = keras.Model(tokens, MaskedGlobalMaxPooling1D()(keras.layers.Dense(4)(x)))
    ids = np.array([[5, 6, 7, 0, 0]], "int32")
    np.testing.assert_allclose(model.predict(ids, verbose=0), model.predict(ids[:, :3], verbose=0), rtol=1e-6)
    model.save(tmp_path / "pool.keras")
    restored = keras.saving.load_model(tmp_path / "pool.keras")
    np.testing.assert_allclose(restored.predict(ids, verbose=0), model.predict(ids[:, :3], verbose=0), rtol=1e-6)
