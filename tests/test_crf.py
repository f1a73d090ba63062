"""The linear-chain CRF (kzoo.layers.crf) against brute-force enumeration of every tag path.

Backend-agnostic: the README's test command runs this file on TensorFlow and, with
``-k brute_force``, on JAX as well.
"""

from __future__ import annotations

import itertools

import keras
import numpy as np
import pytest

import kzoo
from kzoo.errors import InvalidArgumentError
from kzoo.layers import CRF, CRFLoss
from kzoo.layers import crf as crf_lib

NUM_TAGS = 3


def path_score(emissions, path, transitions, start, end):
    score = start[path[0]] + end[path[-1]] + sum(emissions[t, tag] for t, tag in enumerate(path))
    return score + sum(transitions[a, b] for a, b in zip(path[:-1], path[1:]))


def brute_force(emissions, length, transitions, start, end):
    """log Z, the best path, and every position's max-marginals, by enumerating all paths."""
    scores = {
        path: path_score(emissions, path, transitions, start, end)
        for path in itertools.product(range(emissions.shape[-1]), repeat=length)
    }
    values = np.array(list(scores.values()), dtype="float64")
    log_z = values.max() + np.log(np.exp(values - values.max()).sum())
    best = max(scores, key=scores.get)
    marginals = np.array(
        [[max(s for p, s in scores.items() if p[t] == k) for k in range(emissions.shape[-1])] for t in range(length)]
    )
    return log_z, best, marginals


@pytest.fixture
def problem():
    rng = np.random.default_rng(7)
    lengths = np.array([5, 3, 1, 4])
    emissions = rng.normal(size=(len(lengths), 5, NUM_TAGS)).astype("float32")
    mask = np.arange(5)[None] < lengths[:, None]
    parameters = [rng.normal(size=s).astype("float32") for s in ((NUM_TAGS, NUM_TAGS), (NUM_TAGS,), (NUM_TAGS,))]
    tags = rng.integers(0, NUM_TAGS, size=(len(lengths), 5))
    return emissions, mask, lengths, parameters, tags


def test_brute_force_log_partition_score_and_viterbi(problem):
    emissions, mask, lengths, parameters, tags = problem
    log_z = np.asarray(crf_lib.log_partition(emissions, mask, *parameters))
    scores = np.asarray(crf_lib.sequence_score(emissions, tags, mask, *parameters))
    marginals = np.asarray(crf_lib.max_marginals(emissions, mask, *parameters))
    decoded = np.asarray(crf_lib.viterbi_tags(emissions, mask, *parameters))
    for row, length in enumerate(lengths):
        ref_z, best, ref_marginals = brute_force(emissions[row], length, *parameters)
        assert log_z[row] == pytest.approx(ref_z, abs=1e-4)
        assert scores[row] == pytest.approx(path_score(emissions[row], tags[row, :length], *parameters), abs=1e-4)
        np.testing.assert_allclose(marginals[row, :length], ref_marginals, atol=1e-4)
        assert tuple(decoded[row, :length]) == best
        assert not marginals[row, length:].any()  # padding scores 0
    # a row's padding does not change its numbers: the same rows cut to their own lengths
    for row, length in enumerate(lengths):
        alone = emissions[row : row + 1, :length]
        assert float(crf_lib.log_partition(alone, None, *parameters)[0]) == pytest.approx(log_z[row], abs=1e-4)


def test_brute_force_model_fit_evaluate_and_predict_with_xla():
    """A registered CRF tagger: its XLA-compiled loss is the brute-force NLL, predict is Viterbi."""
    spec = kzoo.registry.spec("bilstm_crf_tagger")
    model = kzoo.get("bilstm_crf_tagger", num_classes=NUM_TAGS, **spec.test_kwargs)
    rng = np.random.default_rng(0)
    words, chars = spec.make_inputs(model, 4, rng)
    words, chars = words[:, :5], chars[:, :5]  # 4 sentences of at most 5 words: 3^5 paths each
    words[:, 0] = np.maximum(words[:, 0], 1)
    tags = rng.integers(0, NUM_TAGS, size=words.shape)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=CRFLoss(), jit_compile=True)
    model.fit([words, chars], tags, epochs=2, batch_size=4, verbose=0)
    crf = model.get_layer("crf")
    parameters = [np.asarray(v, dtype="float64") for v in (crf.transitions, crf.start, crf.end)]
    emissions = np.asarray(model([words, chars], training=False), dtype="float64")
    lengths = np.count_nonzero(words, axis=1)
    expected_loss, expected_paths = [], []
    for row, length in enumerate(lengths):
        log_z, best, _ = brute_force(emissions[row], length, *parameters)
        expected_loss.append(log_z - path_score(emissions[row], tags[row, :length], *parameters))
        expected_paths.append(best)
    assert model.evaluate([words, chars], tags, batch_size=4, verbose=0) == pytest.approx(
        np.mean(expected_loss), rel=1e-4
    )
    decoded = model.predict([words, chars], verbose=0).argmax(-1)
    for row, length in enumerate(lengths):
        assert tuple(decoded[row, :length]) == expected_paths[row]


def test_brute_force_crf_loss_reduction_and_sentence_weights(problem):
    emissions, mask, lengths, parameters, tags = problem
    inputs = keras.Input((5, NUM_TAGS))
    masked = keras.layers.Masking(mask_value=0.0)(inputs)
    model = keras.Model(inputs, CRF(NUM_TAGS)(masked))
    model.get_layer(index=-1).set_weights(parameters)
    loss = CRFLoss(model.get_layer(index=-1))
    padded = emissions * mask[..., None]
    weights = np.array([1.0, 0.0, 2.0, 0.5], "float32")
    model.compile(loss=loss)
    nll = [brute_force(emissions[r], n, *parameters)[0] for r, n in enumerate(lengths)]
    nll = np.array(nll) - [path_score(emissions[r], tags[r, :n], *parameters) for r, n in enumerate(lengths)]
    assert model.evaluate(padded, tags, verbose=0) == pytest.approx(nll.mean(), rel=1e-4)
    assert model.evaluate(padded, tags, sample_weight=weights, verbose=0) == pytest.approx(
        (nll * weights).sum() / len(nll), rel=1e-4
    )


def test_crf_tagger_save_reload_keeps_decoding_and_loss(tmp_path):
    spec = kzoo.registry.spec("bilstm_crf_tagger")
    model = kzoo.get("bilstm_crf_tagger", **spec.test_kwargs)
    inputs = spec.make_inputs(model, 6, np.random.default_rng(1))
    tags = np.random.default_rng(2).integers(0, 9, size=inputs[0].shape)
    model.compile(optimizer="adam", loss=CRFLoss(), jit_compile=False)  # XLA: the brute-force tests
    model.fit(inputs, tags, epochs=1, verbose=0)
    model.save(tmp_path / "crf.keras")
    reloaded = keras.saving.load_model(tmp_path / "crf.keras")
    np.testing.assert_allclose(reloaded.predict(inputs, verbose=0), model.predict(inputs, verbose=0), atol=1e-5)
    assert reloaded.evaluate(inputs, tags, verbose=0) == pytest.approx(model.evaluate(inputs, tags, verbose=0))
    reloaded.fit(inputs, tags, epochs=1, verbose=0)  # the restored CRFLoss is bound: it trains


def test_crf_decoding_does_not_depend_on_padding():
    spec = kzoo.registry.spec("bilstm_crf_tagger")
    model = kzoo.get("bilstm_crf_tagger", **spec.test_kwargs)
    words, chars = spec.make_inputs(model, 1, np.random.default_rng(3))
    length = int(np.count_nonzero(words[0]))
    longer = [np.pad(words, ((0, 0), (0, 9))), np.pad(chars, ((0, 0), (0, 9), (0, 0)))]
    short = model.predict([words, chars], verbose=0)[0, :length]
    np.testing.assert_allclose(model.predict(longer, verbose=0)[0, :length], short, atol=1e-5)
    # called (not predicting), the model gives the CRF's emissions, which differ from the decoded scores
    assert not np.allclose(np.asarray(model([words, chars]))[0, :length], short)


def test_crf_loss_errors_name_the_fix():
    spec = kzoo.registry.spec("bilstm_crf_tagger")
    model = kzoo.get("bilstm_crf_tagger", **spec.test_kwargs)
    inputs = spec.make_inputs(model, 2, np.random.default_rng(4))
    plain = keras.Model(model.inputs, model.outputs)
    plain.compile(loss=CRFLoss())
    with pytest.raises(InvalidArgumentError, match="CRFLoss\\(model.get_layer"):
        plain.evaluate(inputs, np.zeros(inputs[0].shape, "int32"), verbose=0)
    model.compile(loss=CRFLoss())
    with pytest.raises(InvalidArgumentError, match="one weight per sentence"):
        model.evaluate(inputs, np.zeros(inputs[0].shape), sample_weight=np.ones(inputs[0].shape), verbose=0)
    with pytest.raises(InvalidArgumentError, match="a kzoo.layers.CRF layer"):
        CRFLoss(keras.layers.Dense(3))
    with pytest.raises(InvalidArgumentError, match="a model with one CRF layer"):
        kzoo.get("bilstm_tagger", **kzoo.registry.spec("bilstm_tagger").test_kwargs).compile(loss=CRFLoss())
    with pytest.raises(InvalidArgumentError, match="None \\(a CRF reads raw scores\\)"):
        kzoo.get("bilstm_crf_tagger", classifier_activation="softmax", **spec.test_kwargs)


def test_finetune_picks_the_crf_loss():
    from kzoo.finetune import default_loss

    spec = kzoo.registry.spec("bilstm_crf_tagger")
    loss = default_loss(kzoo.get("bilstm_crf_tagger", **spec.test_kwargs))
    assert isinstance(loss, CRFLoss) and loss.crf_name == "crf"


def posterior_marginals(emissions, length, transitions, start, end):
    """p(y_t = k | x) by enumeration: the gradient of log Z with respect to the emissions."""
    result = np.zeros((length, emissions.shape[-1]))
    paths = list(itertools.product(range(emissions.shape[-1]), repeat=length))
    scores = np.array([path_score(emissions, p, transitions, start, end) for p in paths], dtype="float64")
    weights = np.exp(scores - scores.max())
    weights /= weights.sum()
    for path, weight in zip(paths, weights):
        result[np.arange(length), list(path)] += weight
    return result


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TensorFlow's while-loop path")
def test_brute_force_variable_length_loop_and_gradient_under_xla(problem):
    """Sentences of a length unknown when tracing (the tf.data buckets) take the while loop."""
    import tensorflow as tf

    emissions, mask, lengths, parameters, _ = problem
    spec = [tf.TensorSpec([None, None, NUM_TAGS], tf.float32), tf.TensorSpec([None, None], tf.bool)]

    @tf.function(input_signature=spec, jit_compile=True)
    def compute(emissions, mask):
        with tf.GradientTape() as tape:
            tape.watch(emissions)
            log_z = crf_lib.log_partition(emissions, mask, *parameters)
            total = tf.reduce_sum(log_z)
        return (
            log_z,
            tape.gradient(total, emissions),
            crf_lib.max_marginals(emissions, mask, *parameters),
        )

    log_z, gradient, marginals = (np.asarray(t) for t in compute(emissions, mask))
    for row, length in enumerate(lengths):
        ref_z, _, ref_marginals = brute_force(emissions[row], length, *parameters)
        assert log_z[row] == pytest.approx(ref_z, abs=1e-4)
        np.testing.assert_allclose(marginals[row, :length], ref_marginals, atol=1e-4)
        expected = posterior_marginals(emissions[row], length, *parameters)
        np.testing.assert_allclose(gradient[row, :length], expected, atol=1e-5)
        assert not gradient[row, length:].any()  # padding takes no part


def test_finetune_trains_a_crf_tagger_with_its_loss(tmp_path):
    import tensorflow as tf

    spec = kzoo.registry.spec("bilstm_crf_tagger")
    model = kzoo.get("bilstm_crf_tagger", num_classes=NUM_TAGS, **spec.test_kwargs)
    words, chars = spec.make_inputs(model, 16, np.random.default_rng(5))
    tags = (words % NUM_TAGS) * (words > 0)  # learnable from the words
    data = tf.data.Dataset.from_tensor_slices(({"words": words, "chars": chars}, tags)).batch(8)
    before = np.asarray(model.get_layer("crf").transitions).copy()
    # float32 (not "auto"): the validation loss is compared with a float32 evaluate below.
    result = kzoo.finetune(
        model, data, data, epochs=2, learning_rate=0.05, jit_compile=False, mixed_precision=None,
        log_dir=tmp_path / "run", verbose=0,
    )  # fmt: skip
    assert result.history["loss"][-1] < result.history["loss"][0]
    assert not np.allclose(np.asarray(model.get_layer("crf").transitions), before)
    assert isinstance(model.loss, CRFLoss)
    # the best epoch's weights are kept; its validation loss is the CRF loss of those weights
    evaluated = model.evaluate(data, verbose=0, return_dict=True)["loss"]
    assert min(result.history["val_loss"]) == pytest.approx(evaluated, rel=1e-4)
