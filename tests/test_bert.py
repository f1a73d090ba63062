"""Mini-BERT: WordPiece tokenizer, masked-LM data, heads, attention maps, checkpoint
conversion and parity with keras-hub. The registry-wide tests (tests/test_models.py)
cover build, gradients, saving and XLA of every ``bert_*`` model."""

from __future__ import annotations

import json
import logging

import keras
import numpy as np
import pytest

import kzoo
from kzoo import text
from kzoo.errors import InvalidArgumentError, WeightsError
from kzoo.models import bert as bert_lib
from kzoo.models import bert_checkpoint

tf = pytest.importorskip("tensorflow")
pytest.importorskip("tensorflow_text")

WORDS = "the cat sat on a mat while good dogs ran far into dark woods and bad birds sang loudly".split()
SMALL = {"hidden_dim": 16, "num_heads": 2, "intermediate_dim": 32, "num_layers": 2, "max_sequence_length": 32}


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    rng = np.random.default_rng(0)
    return [" ".join(rng.choice(WORDS, size=rng.integers(4, 12))) + " ." for _ in range(400)]


@pytest.fixture(scope="module")
def tokenizer(corpus) -> text.WordPieceTokenizer:
    return text.WordPieceTokenizer(text.wordpiece_vocabulary(corpus, vocab_size=120), sequence_length=16)


def test_vocabulary_starts_with_the_reserved_tokens(tokenizer, tmp_path, corpus):
    assert tokenizer.vocabulary[: len(text.BERT_RESERVED)] == list(text.BERT_RESERVED)
    assert "cat" in tokenizer.vocabulary
    path = text.wordpiece_vocabulary(corpus[:50], vocab_size=80, path=tmp_path / "v.txt")
    assert (tmp_path / "v.txt").read_text().splitlines() == path


def test_tokenizer_adds_special_tokens_pads_and_cuts(tokenizer):
    ids = tokenizer.ids
    single = {k: v.numpy() for k, v in tokenizer(["the cat sat", "a " * 40]).items()}
    assert single["token_ids"].shape == (2, 16)
    first = single["token_ids"][0]
    assert first[0] == ids["[CLS]"] and first[4] == ids["[SEP]"] and not first[5:].any()
    np.testing.assert_array_equal(single["padding_mask"], single["token_ids"] != 0)
    assert single["token_ids"][1, -1] == ids["[SEP]"] and single["padding_mask"][1].all()  # cut to fit
    assert tokenizer.detokenize(single["token_ids"][:1]) == ["the cat sat"]

    pair = {k: v.numpy()[0] for k, v in tokenizer(["the cat"], ["good dogs ran"]).items()}
    real = pair["padding_mask"].sum()
    assert list(pair["segment_ids"][:real]) == [0, 0, 0, 0, 1, 1, 1, 1]
    assert pair["token_ids"][3] == ids["[SEP]"] and pair["token_ids"][real - 1] == ids["[SEP]"]


def test_tokenizer_refuses_a_vocabulary_without_reserved_tokens():
    with pytest.raises(InvalidArgumentError, match=r"\[PAD\]"):
        text.WordPieceTokenizer(["the", "cat"])


def test_masked_lm_batches_follow_bert_masking(tokenizer, corpus):
    sequences = text.packed_sequences(tokenizer, corpus, sequence_length=16)
    assert (sequences[:, 0] == tokenizer.ids["[CLS]"]).all() and (sequences[:, -1] == tokenizer.ids["[SEP]"]).all()
    tf.random.set_seed(0)
    batches = list(text.masked_lm_datasets(sequences, tokenizer, batch_size=64, num_predictions=4, shuffle=False))
    chosen = replaced_by_mask = unchanged = 0
    for inputs, targets, weights in batches:
        original = sequences[: len(targets)]
        sequences = sequences[len(targets) :]
        ids, positions = inputs["token_ids"].numpy(), inputs["mask_positions"].numpy()
        targets, weights = targets.numpy(), weights.numpy()
        assert ids.shape == original.shape and positions.shape == targets.shape == weights.shape
        changed = ids != original
        for row in range(len(ids)):
            real = positions[row][weights[row] > 0]
            assert set(np.flatnonzero(changed[row])) <= set(real)  # only chosen positions change
            assert not np.isin(real, [0, 15]).any()  # never [CLS] or [SEP]
            np.testing.assert_array_equal(targets[row][weights[row] > 0], original[row][real])
            chosen += len(real)
            replaced_by_mask += int((ids[row][real] == tokenizer.ids["[MASK]"]).sum())
            unchanged += int((ids[row][real] == original[row][real]).sum())
    # 14 maskable tokens at 15%: tensorflow-text rounds 2.1 up to 3 per sequence (cap 4).
    assert chosen == 3 * sum(len(t) for _, t, _ in batches)
    assert 0.72 < replaced_by_mask / chosen < 0.88
    assert 0.05 < unchanged / chosen < 0.2  # 10% kept, plus random draws of the same token


def test_padding_does_not_change_the_real_tokens_outputs(tokenizer):
    keras.utils.set_random_seed(0)
    model = kzoo.get("bert_tiny_classifier", vocab_size=tokenizer.vocabulary_size, **SMALL)
    encoder = kzoo.get("bert_tiny", vocab_size=tokenizer.vocabulary_size, include_top=False, **SMALL)
    encoder.set_weights([w for w in model.get_weights()[: len(encoder.get_weights())]])
    short = {k: v.numpy()[:, :8] for k, v in tokenizer(["good dogs ran"]).items()}
    long = {k: v.numpy() for k, v in tokenizer(["good dogs ran"]).items()}
    np.testing.assert_allclose(model(short), model(long), atol=1e-5)
    sequence = encoder(long)["sequence_output"]
    np.testing.assert_allclose(encoder(short)["sequence_output"], sequence[:, :8], atol=1e-5)


def test_attention_maps_are_distributions_that_ignore_padding(tokenizer):
    model = kzoo.get("bert_tiny_classifier", vocab_size=tokenizer.vocabulary_size, **SMALL)
    inputs = {k: v.numpy() for k, v in tokenizer(["the cat sat on a mat", "good dogs"]).items()}
    maps = bert_lib.attention_maps(model, inputs)
    assert len(maps) == 2 and maps[0].shape == (2, 2, 16, 16)
    np.testing.assert_allclose(maps[1].sum(-1), 1.0, atol=1e-5)
    padded = inputs["padding_mask"][1] == 0
    assert np.all(maps[0][1][..., padded] < 1e-6)


def test_fill_mask_ranks_vocabulary_tokens(tokenizer):
    model = kzoo.get("bert_tiny", vocab_size=tokenizer.vocabulary_size, **SMALL)
    guesses = text.fill_mask(model, tokenizer, "the [MASK] sat on a [MASK]", k=3)
    assert len(guesses) == 2 and all(len(g) == 3 for g in guesses)
    assert all(token in tokenizer.vocabulary and 0 <= p <= 1 for g in guesses for token, p in g)
    assert guesses[0][0][1] >= guesses[0][1][1] >= guesses[0][2][1]
    with pytest.raises(InvalidArgumentError, match=r"\[MASK\]"):
        text.fill_mask(model, tokenizer, "no mask here")


def test_finetune_trains_frozen_encoder_then_unfrozen(tokenizer, tmp_path):
    rng = np.random.default_rng(1)
    sentences = [" ".join(rng.choice(WORDS, size=6)) for _ in range(128)]
    labels = np.array([int("good" in s.split()) for s in sentences])
    train = text.text_datasets(sentences, labels, vectorizer=tokenizer, batch_size=32, lengths=(16,))
    model = kzoo.get("bert_tiny_classifier", vocab_size=tokenizer.vocabulary_size, dropout=0.0, **SMALL)
    snapshots = [model.get_layer("block1").get_weights()[0].copy()]
    record = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: snapshots.append(model.get_layer("block1").get_weights()[0].copy())
    )
    result = kzoo.finetune(
        model, train, train, epochs=3, head_epochs=1, unfreeze_stages=3, learning_rate=3e-3,
        log_dir=tmp_path / "run", callbacks=[record], jit_compile=False, verbose=0,
        mixed_precision=None,  # the callback reads the user's model, which "auto" may train through a copy
    )  # fmt: skip
    np.testing.assert_array_equal(snapshots[1], snapshots[0])  # head phase: encoder frozen
    assert not np.allclose(snapshots[-1], snapshots[1])  # then it trains
    assert all(layer.trainable for layer in model.layers if layer.weights)
    assert result.history["loss"][-1] < result.history["loss"][0]
    assert (tmp_path / "run" / "checkpoints" / "best.weights.h5").is_file()


# --------------------------------------------------------------------------------------
# Google checkpoints and keras-hub parity
# --------------------------------------------------------------------------------------

CONFIG = {"vocab_size": 40, "hidden_size": 8, "num_hidden_layers": 2, "num_attention_heads": 2}
CONFIG |= {"intermediate_size": 16, "max_position_embeddings": 20, "type_vocab_size": 2, "hidden_act": "gelu"}


def _google_variables(rng) -> dict[str, np.ndarray]:
    h, i, v = CONFIG["hidden_size"], CONFIG["intermediate_size"], CONFIG["vocab_size"]
    shapes = {
        "bert/embeddings/word_embeddings": (v, h),
        "bert/embeddings/position_embeddings": (CONFIG["max_position_embeddings"], h),
        "bert/embeddings/token_type_embeddings": (2, h),
        "bert/pooler/dense/kernel": (h, h),
        "bert/pooler/dense/bias": (h,),
        "cls/predictions/transform/dense/kernel": (h, h),
        "cls/predictions/transform/dense/bias": (h,),
        "cls/predictions/output_bias": (v,),
        "cls/seq_relationship/output_weights": (2, h),  # next-sentence head: not used by kzoo
    }
    for norm in ("bert/embeddings/LayerNorm", "cls/predictions/transform/LayerNorm"):
        shapes |= {f"{norm}/gamma": (h,), f"{norm}/beta": (h,)}
    for n in range(CONFIG["num_hidden_layers"]):
        layer = f"bert/encoder/layer_{n}"
        for part in ("attention/self/query", "attention/self/key", "attention/self/value", "attention/output/dense"):
            shapes |= {f"{layer}/{part}/kernel": (h, h), f"{layer}/{part}/bias": (h,)}
        shapes |= {f"{layer}/intermediate/dense/kernel": (h, i), f"{layer}/intermediate/dense/bias": (i,)}
        shapes |= {f"{layer}/output/dense/kernel": (i, h), f"{layer}/output/dense/bias": (h,)}
        for norm in ("attention/output/LayerNorm", "output/LayerNorm"):
            shapes |= {f"{layer}/{norm}/gamma": (h,), f"{layer}/{norm}/beta": (h,)}
    variables = {name: rng.normal(0, 0.3, shape).astype("float32") for name, shape in shapes.items()}
    for name in variables:
        if name.endswith("/gamma"):
            variables[name] += 1.0
    return variables


def _write_google_checkpoint(folder, variables) -> None:
    """A checkpoint in Google's variable layout, written with TensorFlow's SaveV2 op (as
    TF1's Saver writes them), plus bert_config.json and a vocab.txt."""
    names = sorted(variables)
    tf.raw_ops.SaveV2(
        prefix=str(folder / "bert_model.ckpt"),
        tensor_names=names,
        shape_and_slices=[""] * len(names),
        tensors=[tf.constant(variables[n]) for n in names],
    )
    (folder / "bert_config.json").write_text(json.dumps(CONFIG))
    tokens = [*text.BERT_RESERVED, *WORDS]
    (folder / "vocab.txt").write_text("\n".join(tokens + [f"##x{i}" for i in range(40 - len(tokens))]) + "\n")


def _numpy_bert(variables, token_ids, segment_ids, padding_mask) -> tuple[np.ndarray, np.ndarray]:
    """BERT's forward pass (modeling.py of google-research/bert) in NumPy, from the raw
    checkpoint variables: the reference the converted model must match."""

    def norm(x, prefix):
        mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + 1e-12) * variables[f"{prefix}/gamma"] + variables[f"{prefix}/beta"]

    def dense(x, prefix):
        return x @ variables[f"{prefix}/kernel"] + variables[f"{prefix}/bias"]

    def gelu(x):
        return 0.5 * x * (1.0 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))

    length, heads = token_ids.shape[1], CONFIG["num_attention_heads"]
    x = variables["bert/embeddings/word_embeddings"][token_ids]
    x = (
        x
        + variables["bert/embeddings/position_embeddings"][:length]
        + variables["bert/embeddings/token_type_embeddings"][segment_ids]
    )
    x = norm(x, "bert/embeddings/LayerNorm")
    adder = (1.0 - padding_mask[:, None, None, :]) * -10000.0
    for n in range(CONFIG["num_hidden_layers"]):
        layer = f"bert/encoder/layer_{n}"

        def split(t):
            return t.reshape(t.shape[0], length, heads, -1).transpose(0, 2, 1, 3)

        q, k, v = (split(dense(x, f"{layer}/attention/self/{p}")) for p in ("query", "key", "value"))
        scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(q.shape[-1]) + adder
        probabilities = np.exp(scores - scores.max(-1, keepdims=True))
        probabilities /= probabilities.sum(-1, keepdims=True)
        context = (probabilities @ v).transpose(0, 2, 1, 3).reshape(x.shape)
        x = norm(x + dense(context, f"{layer}/attention/output/dense"), f"{layer}/attention/output/LayerNorm")
        x = norm(
            x + dense(gelu(dense(x, f"{layer}/intermediate/dense")), f"{layer}/output/dense"),
            f"{layer}/output/LayerNorm",
        )
    pooled = np.tanh(dense(x[:, 0], "bert/pooler/dense"))
    return x, pooled


def _inputs(rng, batch=3, length=10) -> dict[str, np.ndarray]:
    lengths = np.array([length, 6, 4])[:batch]
    mask = (np.arange(length)[None] < lengths[:, None]).astype("int32")
    ids = rng.integers(5, CONFIG["vocab_size"], (batch, length)).astype("int32") * mask
    segments = ((np.arange(length)[None] >= lengths[:, None] // 2) * mask).astype("int32")
    return {"token_ids": ids, "segment_ids": segments, "padding_mask": mask}


def test_google_checkpoint_loads_and_matches_the_reference_forward_pass(tmp_path):
    rng = np.random.default_rng(0)
    variables = _google_variables(rng)
    _write_google_checkpoint(tmp_path, variables)
    encoder, tokenizer = bert_checkpoint.load_google_checkpoint(tmp_path, include_top=False, dropout=0.0)
    inputs = _inputs(rng)
    expected_sequence, expected_pooled = _numpy_bert(variables, **inputs)
    outputs = encoder(inputs)
    real = inputs["padding_mask"].astype(bool)
    np.testing.assert_allclose(np.asarray(outputs["sequence_output"])[real], expected_sequence[real], atol=1e-4)
    np.testing.assert_allclose(outputs["pooled_output"], expected_pooled, atol=1e-4)
    assert tokenizer.vocabulary_size == 40

    mlm, _ = bert_checkpoint.load_google_checkpoint(tmp_path, dropout=0.0, num_predictions=2)
    np.testing.assert_array_equal(mlm.get_layer("mlm_bias").get_weights()[0], variables["cls/predictions/output_bias"])
    classifier, _ = bert_checkpoint.load_google_checkpoint(tmp_path, head="classifier", num_classes=3)
    np.testing.assert_array_equal(
        classifier.get_layer("pooler").get_weights()[0], variables["bert/pooler/dense/kernel"]
    )


def test_google_checkpoint_errors_name_what_is_missing(tmp_path):
    with pytest.raises(WeightsError, match="bert_config.json"):
        bert_checkpoint.load_google_checkpoint(tmp_path)
    variables = _google_variables(np.random.default_rng(0))
    del variables["bert/encoder/layer_1/output/dense/kernel"]
    _write_google_checkpoint(tmp_path, variables)
    with pytest.raises(WeightsError, match="layer_1/output/dense/kernel"):
        bert_checkpoint.load_google_checkpoint(tmp_path, include_top=False)


def test_parity_with_keras_hub_bert_backbone(tmp_path):
    keras_hub = pytest.importorskip("keras_hub")
    rng = np.random.default_rng(1)
    variables = _google_variables(rng)
    _write_google_checkpoint(tmp_path, variables)
    encoder, _ = bert_checkpoint.load_google_checkpoint(tmp_path, include_top=False, dropout=0.0)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=CONFIG["vocab_size"],
        num_layers=CONFIG["num_hidden_layers"],
        num_heads=CONFIG["num_attention_heads"],
        hidden_dim=CONFIG["hidden_size"],
        intermediate_dim=CONFIG["intermediate_size"],
        max_sequence_length=CONFIG["max_position_embeddings"],
        dropout=0.0,
    )
    pairs = {
        "token_embedding": "embeddings_token",
        "position_embedding": "embeddings_position",
        "segment_embedding": "embeddings_segment",
        "embeddings_layer_norm": "embeddings_norm",
        "pooled_dense": "pooler",
    }
    for theirs, ours in pairs.items():
        backbone.get_layer(theirs).set_weights(encoder.get_layer(ours).get_weights())
    sublayers = {
        "_self_attention_layer": "attention",
        "_self_attention_layer_norm": "attention_norm",
        "_feedforward_intermediate_dense": "intermediate",
        "_feedforward_output_dense": "output_dense",
        "_feedforward_layer_norm": "output_norm",
    }
    for n in range(CONFIG["num_hidden_layers"]):
        theirs, ours = backbone.get_layer(f"transformer_layer_{n}"), encoder.get_layer(f"block{n + 1}")
        for their_name, our_name in sublayers.items():
            getattr(theirs, their_name).set_weights(getattr(ours, our_name).get_weights())
    inputs = _inputs(rng)
    expected, actual = backbone(inputs), encoder(inputs)
    real = inputs["padding_mask"].astype(bool)
    np.testing.assert_allclose(
        np.asarray(actual["sequence_output"])[real], np.asarray(expected["sequence_output"])[real], atol=1e-4
    )
    np.testing.assert_allclose(actual["pooled_output"], expected["pooled_output"], atol=1e-4)


# --------------------------------------------------------------------------------------
# Shipped weights
# --------------------------------------------------------------------------------------


def _shipped(name: str, tag: str) -> bool:
    return any(record.tag == tag for record in kzoo.weights.records_for(name))


@pytest.mark.skipif(not _shipped("bert_tiny", "wikitext2_shakespeare"), reason="no pretrained bert_tiny shipped")
def test_pretrained_encoder_moves_to_the_classifier_and_tagger(caplog):
    mlm = kzoo.get("bert_tiny", pretrained=True)
    tokenizer = text.tokenizer_for(mlm)
    assert tokenizer.vocabulary_size == mlm.get_layer("embeddings_token").input_dim
    with caplog.at_level(logging.WARNING, logger="kzoo"):
        classifier = kzoo.get("bert_tiny_classifier", pretrained="wikitext2_shakespeare", num_classes=3)
    assert "pooler" in caplog.text and "predictions" in caplog.text
    for layer in ("embeddings_token", "embeddings_norm", "block1", "block2"):
        for a, b in zip(classifier.get_layer(layer).get_weights(), mlm.get_layer(layer).get_weights()):
            np.testing.assert_array_equal(a, b)
    tagger = kzoo.get("bert_tiny_tagger", pretrained="wikitext2_shakespeare", num_classes=9)
    assert tagger.output_shape == (None, None, 9)
    assert text.tokenizer_for(tagger).vocabulary == tokenizer.vocabulary
    # The pretrained model fills blanks that have one right word better than the same network
    # untrained: it gives that word far more probability, and ranks it among its likeliest 25
    # (of 5,465) for most sentences. (A weak encoder: held-out masked accuracy 0.13; measured
    # ranks 2, 8, 17, 14, 5, 20, 4 and 88, probability ratios 6 to 145.)
    keras.utils.set_random_seed(0)
    untrained = kzoo.get("bert_tiny", vocab_size=tokenizer.vocabulary_size, max_sequence_length=128)
    ranks, ratios = [], []
    for sentence, answer in CLOZE:
        assert answer in tokenizer.vocabulary, answer
        everything = dict(text.fill_mask(mlm, tokenizer, sentence, k=tokenizer.vocabulary_size)[0])
        chance = dict(text.fill_mask(untrained, tokenizer, sentence, k=tokenizer.vocabulary_size)[0])
        top = [token for token, _ in text.fill_mask(mlm, tokenizer, sentence, k=10)[0]]
        assert top == list(everything)[:10]  # the top 10 are the 10 likeliest, in order
        ranks.append(list(everything).index(answer))
        ratios.append(everything[answer] / chance[answer])
    assert sum(rank < 25 for rank in ranks) >= 6, ranks
    assert np.exp(np.mean(np.log(ratios))) > 20, ratios  # geometric mean over the sentences


# WikiText-style sentences, written for this test, each with one right word for its blank.
CLOZE = [
    ("it is one [MASK] the largest cities in the world .", "of"),
    ("he was born [MASK] london in 1990 .", "in"),
    ("the battle [MASK] fought in 1805 .", "was"),
    ("he returned [MASK] england in 1800 .", "to"),
    ("the game was played [MASK] front of a large crowd .", "in"),
    ("the song was released [MASK] a single in 2005 .", "as"),
    ("she was the daughter [MASK] a king .", "of"),
    ("the city is the capital of the state , and the largest [MASK] in it .", "city"),
]


def test_tokenizer_for_refuses_a_model_without_wordpiece_weights():
    with pytest.raises(InvalidArgumentError, match="WordPiece"):
        text.tokenizer_for(kzoo.get("bert_tiny", vocab_size=50, **SMALL))


def test_tagger_learns_word_tags_through_wordpiece_alignment(tokenizer, tmp_path):
    rng = np.random.default_rng(2)
    sentences = [list(rng.choice(WORDS, size=rng.integers(3, 8))) for _ in range(192)]
    animals = {"cat", "dogs", "birds"}
    tags = [[int(word in animals) for word in sentence] for sentence in sentences]
    train = text.tagging_datasets(sentences, tags, features=tokenizer, batch_size=32, lengths=(16,))
    inputs, labels, weights = next(iter(train))
    assert set(inputs) == {"token_ids", "segment_ids", "padding_mask"}
    assert labels.shape == weights.shape == inputs["token_ids"].shape
    ids, starts = tokenizer.word_starts([["the", "dogs", "sang"]])
    assert tokenizer.detokenize(ids) == ["the dogs sang"] and list(starts[0]) == [1, 2, 3]
    model = kzoo.get("bert_tiny_tagger", vocab_size=tokenizer.vocabulary_size, num_classes=2, dropout=0.0, **SMALL)
    kzoo.finetune(
        model, train, epochs=3, strategy="full", learning_rate=3e-3, jit_compile=False, verbose=0, metrics=(),
    )  # fmt: skip
    ids, starts = tokenizer.word_starts([["the", "cat", "ran", "into", "dark", "woods"]])
    features = {"token_ids": ids[0][None], "segment_ids": 0 * ids[0][None], "padding_mask": 1 + 0 * ids[0][None]}
    predicted = np.asarray(model(features)).argmax(-1)[0][starts[0]]
    assert list(predicted) == [0, 1, 0, 0, 0, 0]


@pytest.mark.skipif(not _shipped("bert_tiny_classifier", "sst2"), reason="no SST-2 bert_tiny_classifier shipped")
def test_shipped_sst2_classifier_reaches_its_recorded_dev_accuracy():
    pytest.importorskip("kzoo.data").has_data("sst2") or pytest.skip("SST-2 not in the shared data")
    model = kzoo.get("bert_tiny_classifier", pretrained=True)  # the default tag: SST-2
    record = kzoo.registry.origin(model).weights
    assert record.tag == "sst2"
    texts, labels = kzoo.data.load_sst2("dev")
    tokenizer = text.WordPieceTokenizer(text.tokenizer_for(model).vocabulary, sequence_length=64)
    dev = text.text_datasets(texts, labels, vectorizer=tokenizer, batch_size=256, shuffle=False, lengths=(16, 32, 64))
    logits = np.concatenate([np.asarray(model(x, training=False)) for x, _ in dev])
    ordered = np.concatenate([y.numpy() for _, y in dev])
    accuracy = float(np.mean(logits.argmax(-1) == ordered))
    assert accuracy == pytest.approx(record.metrics["dev_accuracy"], abs=0.002)
    assert accuracy > record.metrics["scratch_dev_accuracy"]


@pytest.mark.skipif(not kzoo.data.has_data("wikitext2"), reason="WikiText-2 not in KZOO_DATA_DIR")
@pytest.mark.parametrize("tag", ["wikitext2_shakespeare", "wikitext2_shakespeare_sst2"])
def test_shipped_masked_lm_reaches_its_recorded_held_out_accuracy_and_perplexity(tag):
    """The recipe's held-out figures, re-measured: WikiText-2 test, masked as the recipe masks it.

    The masks are a fresh draw of the same kind (tf.random state differs between processes),
    and every other held-out sequence is read (CI time), so the figures agree to within 0.01
    accuracy (about 5 standard errors of 26,000 predictions) and 5% perplexity.
    """
    if not _shipped("bert_tiny", tag):
        pytest.skip(f"bert_tiny.{tag} is not shipped")
    model = kzoo.get("bert_tiny", pretrained=tag)
    record = next(r for r in kzoo.weights.records_for("bert_tiny") if r.tag == tag)
    tokenizer = text.tokenizer_for(model)
    length, predictions = record.builder_kwargs["max_sequence_length"], record.builder_kwargs["num_predictions"]
    held_out = text.packed_sequences(tokenizer, text.corpus_lines("wikitext2-test"), sequence_length=length)[::2]
    tf.random.set_seed(0)
    batches = text.masked_lm_datasets(held_out, tokenizer, shuffle=False, num_predictions=predictions, batch_size=256)
    total = correct = nll = 0.0
    for inputs, targets, weights in batches:
        logits = np.asarray(model.predict_on_batch(inputs), "float64")
        targets, weights = targets.numpy(), weights.numpy()
        log_probabilities = logits - logits.max(-1, keepdims=True)
        log_probabilities -= np.log(np.exp(log_probabilities).sum(-1, keepdims=True))
        total += weights.sum()
        correct += (weights * (logits.argmax(-1) == targets)).sum()
        nll -= (weights * np.take_along_axis(log_probabilities, targets[..., None], -1)[..., 0]).sum()
    assert total > 20_000
    assert abs(correct / total - record.metrics["heldout_masked_accuracy"]) < 0.01
    assert abs(np.exp(nll / total) / record.metrics["heldout_perplexity"] - 1) < 0.05
