"""Sequence models and the text pipeline: bucketing, masking, raw-string models, conlleval
scoring, word2vec examples and queries, attention and greedy decoding, shipped weights."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import kzoo
from kzoo import errors, text
from kzoo.models.seq2seq import attention_model, greedy_decode

TEXTS = [
    "a charming and moving film",
    "dull , lifeless and boring",
    "the best movie of the year",
    "a waste of time",
    "an utterly delightful , clever comedy that never stops being funny from start to end , see it twice or more",
] * 8
LABELS = [1, 0, 1, 0, 1] * 8


def test_text_batches_take_only_the_bucket_lengths():
    vectorizer = text.vectorizer(TEXTS, max_tokens=100)
    data = text.text_datasets(TEXTS, LABELS, vectorizer=vectorizer, batch_size=4, lengths=(4, 8, 16), shuffle=False)
    seen = 0
    for ids, labels in data:
        assert ids.shape[1] in (4, 8, 16) and ids.dtype == tf.int32
        lengths = np.count_nonzero(ids.numpy(), axis=1)
        assert lengths.max() <= ids.shape[1] and (ids.shape[1] == 4 or lengths.max() > ids.shape[1] // 2)
        seen += len(labels)
    assert seen == len(TEXTS)  # evaluation keeps every text
    long_ids = next(iter(data.filter(lambda ids, labels: tf.shape(ids)[1] == 16)))[0]
    assert np.count_nonzero(long_ids.numpy(), axis=1).max() == 16  # the 19-token text is cut to 16


@pytest.mark.parametrize("pooling", ["last", "max", "mean_max"])
def test_classifier_logits_ignore_padding_and_raw_strings_round_trip(pooling, tmp_path):
    vectorizer = text.vectorizer(TEXTS, max_tokens=100)
    small = {"vocab_size": vectorizer.vocabulary_size(), "embedding_dim": 8, "units": 8, "pooling": pooling}
    model = kzoo.get("bilstm_classifier", **small)
    ids = vectorizer(["a charming and moving film"]).to_tensor().numpy()
    short = model.predict(ids, verbose=0)
    padded = model.predict(np.pad(ids, ((0, 0), (0, 11))), verbose=0)
    np.testing.assert_allclose(short, padded, rtol=1e-5, atol=1e-6)

    strings = text.end_to_end(model, vectorizer, max_length=32)
    np.testing.assert_allclose(strings.predict(tf.constant([["a charming and moving film"]]), verbose=0), short, 1e-5)
    strings.save(tmp_path / "sentiment.keras")
    restored = keras.saving.load_model(tmp_path / "sentiment.keras")
    np.testing.assert_allclose(restored.predict(tf.constant([["a charming and moving film"]]), verbose=0), short, 1e-5)
    # Lists and NumPy arrays of strings too (Keras alone refuses NumPy string arrays).
    np.testing.assert_allclose(restored.predict(["a charming and moving film"], verbose=0), short, 1e-5)
    np.testing.assert_allclose(restored.predict(np.array(["a charming and moving film"]), verbose=0), short, 1e-5)
    with pytest.raises(errors.InvalidArgumentError, match="takes raw strings itself"):
        text.end_to_end(model, text.WordPieceTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "film"]))
    with pytest.raises(errors.InvalidArgumentError, match=r"pooling: expected one of \('last', 'max', 'mean_max'\)"):
        kzoo.get("bilstm_classifier", **{**small, "pooling": "attention"})


def test_vectorizer_needs_texts_or_a_vocabulary():
    with pytest.raises(errors.InvalidArgumentError, match="exactly one of them"):
        text.vectorizer()
    with pytest.raises(errors.InvalidArgumentError, match="increasing positive ints"):
        text.bucket(tf.data.Dataset.range(3), batch_size=2, lengths=(32, 16))


def test_chunks_read_iob1_and_iob2_like_conlleval():
    assert text.chunks(["I-PER", "I-PER", "O", "I-LOC"]) == {("PER", 0, 2), ("LOC", 3, 4)}
    assert text.chunks(["B-PER", "I-PER", "O", "B-LOC"]) == {("PER", 0, 2), ("LOC", 3, 4)}
    assert text.chunks(["I-ORG", "B-ORG", "I-ORG", "I-MISC"]) == {("ORG", 0, 1), ("ORG", 1, 3), ("MISC", 3, 4)}
    with pytest.raises(errors.InvalidArgumentError, match="IOB tags"):
        text.chunks(["X-PER"])


def test_conll_f1_counts_exact_chunks_only():
    truth = [["I-PER", "I-PER", "O", "I-LOC"], ["I-ORG", "O"]]
    guess = [["I-PER", "O", "O", "I-LOC"], ["I-ORG", "I-MISC"]]
    # truth: PER(0,2), LOC(3,4), ORG(0,1); guess: PER(0,1), LOC(3,4), ORG(0,1), MISC(1,2): 2 correct
    scores = text.conll_f1(truth, guess)
    assert (scores["correct"], scores["found"], scores["chunks"]) == (2, 4, 3)
    assert scores["precision"] == pytest.approx(50.0) and scores["recall"] == pytest.approx(200 / 3)
    assert scores["f1"] == pytest.approx(2 * 50 * (200 / 3) / (50 + 200 / 3))
    with pytest.raises(errors.InvalidArgumentError, match="every token"):
        text.conll_f1(truth, [guess[0]])


def test_token_features_hash_words_and_read_bytes():
    features = text.TokenFeatures(num_bins=1000, max_word_length=4)
    out = features(["Paris", "paris", "Łódź"])
    words, chars = out["words"].numpy(), out["chars"].numpy()
    assert words[0] == words[1] != 0 and 0 < words[2] < 1000  # lower-cased before hashing
    assert chars[0].tolist() == [ord("P") + 1, ord("a") + 1, ord("r") + 1, ord("i") + 1]  # cut to 4
    assert chars[2, 0] == 255 + 1 and chars[2, 1] == ord("ó") + 1  # code points above 255 are clipped


def test_tagging_batches_keep_tags_aligned_and_the_tagger_scores_them():
    sentences = [["EU", "rejects", "German", "call"], ["Peter", "Blackburn"], ["BRUSSELS", "1996-08-22"]] * 3
    tags = [[3, 0, 7, 0], [1, 2], [5, 0]] * 3
    data = text.tagging_datasets(sentences, tags, features=text.TokenFeatures(100), batch_size=4, shuffle=False)
    gold = 0
    for features, batch_tags in data:
        words, batch_tags = features["words"].numpy(), batch_tags.numpy()
        assert features["chars"].shape[:2] == words.shape and batch_tags.shape == words.shape
        assert np.array_equal(words == 0, batch_tags == 0) or np.all(batch_tags[words == 0] == 0)
        gold += sum(
            len(text.chunks([text.CONLL_TAGS[i] for i in row[row_words != 0]]))
            for row, row_words in zip(batch_tags, words)
        )
    model = kzoo.get("bilstm_tagger", vocab_size=100, embedding_dim=4, units=4, char_filters=4)
    scores = text.evaluate_tagger(model, data)
    assert scores["chunks"] == gold == 12  # ORG, MISC; PER; LOC in each of 3 copies


def test_skipgram_examples_stay_inside_the_window():
    ids = np.arange(2, 12)  # ten distinct words, no padding
    counts = np.ones(12)
    counts[:2] = 0
    x, labels = text.skipgram_examples(ids, counts, window=2, num_negatives=3, subsample=1.0, seed=0)
    distance = np.abs(x["target"][:, 0] - x["context"][:, 0])
    assert distance.min() >= 1 and distance.max() <= 2
    assert x["context"].shape[1] == 4 and np.all(x["context"][:, 1:] >= 2)  # negatives never padding/[UNK]
    assert np.all(labels[:, 0] == 1) and np.all(labels[:, 1:] == 0)
    # every adjacent pair appears (the dynamic window is at least 1), both ways
    pairs = set(zip(x["target"][:, 0].tolist(), x["context"][:, 0].tolist()))
    assert all((a, a + 1) in pairs and (a + 1, a) in pairs for a in range(2, 11))


def test_cbow_examples_pad_the_edges():
    ids = np.arange(2, 7)
    counts = np.ones(7)
    counts[:2] = 0
    x, _ = text.cbow_examples(ids, counts, window=2, num_negatives=2, subsample=1.0, seed=0)
    rows = {int(c[0]): ctx.tolist() for c, ctx in zip(x["candidates"], x["context"])}
    assert rows[2] == [0, 0, 3, 4] and rows[4] == [2, 3, 5, 6] and rows[6] == [4, 5, 0, 0]


def test_nearest_and_analogy_on_hand_made_vectors():
    vocabulary = ["", "[UNK]", "king", "queen", "man", "woman", "apple"]
    vectors = np.array([[0, 0, 0], [0, 0, 0], [1, 1, 0], [1, 0, 1], [0, 1, 0], [0, 0, 1], [-1, 0, 0]], "float32")
    assert text.analogy(vectors, vocabulary, "king", "man", "woman", k=1)[0][0] == "queen"
    assert text.nearest(vectors, vocabulary, "king", k=1)[0][0] in ("man", "queen")
    assert "apple" == text.nearest(vectors, vocabulary, "king", k=5)[-1][0]
    with pytest.raises(errors.InvalidArgumentError, match="a word of the vocabulary"):
        text.nearest(vectors, vocabulary, "kingdom")
    matrix, found = text.embedding_matrix(vectors, vocabulary, ["", "[UNK]", "queen", "pear"])
    assert found == 0.5 and np.array_equal(matrix[2], vectors[3]) and not matrix[0].any()


def test_word_vectors_load_into_a_classifier_embedding_frozen():
    vectors = np.arange(12, dtype="float32").reshape(4, 3)
    vocabulary = ["", "[UNK]", "good", "bad"]
    target = ["", "[UNK]", "bad", "film", "good"]
    model = kzoo.get("lstm_classifier", vocab_size=5, embedding_dim=3, units=2)
    assert text.load_embeddings(model, vectors, vocabulary, target) == pytest.approx(2 / 3)
    table = keras.ops.convert_to_numpy(model.get_layer("embedding").embeddings)
    assert np.array_equal(table[2], vectors[3]) and np.array_equal(table[4], vectors[2])
    assert not model.get_layer("embedding").trainable
    with pytest.raises(errors.InvalidArgumentError, match="vocab_size, embedding_dim"):
        text.load_embeddings(model, vectors, vocabulary, target[:3])


def test_attention_is_a_distribution_over_the_real_source_tokens():
    model = kzoo.get("seq2seq_attention", source_vocab_size=20, target_vocab_size=10, embedding_dim=4, units=4)
    source = np.array([[5, 6, 7, 0, 0], [5, 6, 7, 8, 9]], "int32")
    target = np.array([[1, 3, 4], [1, 3, 4]], "int32")
    logits, scores = attention_model(model)([source, target])
    scores = keras.ops.convert_to_numpy(scores)
    assert logits.shape == (2, 3, 10) and scores.shape == (2, 3, 5)
    np.testing.assert_allclose(scores.sum(-1), 1.0, rtol=1e-5)
    assert np.all(scores[0, :, 3:] == 0)  # padded source positions get no attention


def test_greedy_decode_feeds_back_its_own_output_and_stops_at_the_end_token():
    plan = [5, 6, 2, 7, 8]  # 2 is the end token
    seen = []

    def model(inputs, training=False):
        source, target = inputs
        seen.append(target.copy())
        logits = np.zeros((len(source), len(plan), 10), "float32")
        logits[:, np.arange(len(plan)), plan] = 1.0
        return logits

    out = greedy_decode(model, np.ones((1, 3)), start_id=1, end_id=2, max_length=5)
    assert out.tolist() == [[5, 6, 2, 0, 0]]
    assert seen[-1].tolist() == [[1, 5, 6, 2, 7]]  # each step's prediction became the next input


@pytest.mark.skipif(not kzoo.data.has_data("sst2"), reason="SST-2 not in KZOO_DATA_DIR")
def test_shipped_sst2_classifier_reaches_its_recorded_dev_accuracy():
    model = kzoo.get("bilstm_classifier", pretrained="sst2")
    record = kzoo.info("bilstm_classifier").weights[0]
    vectorizer = text.vectorizer_for(model)
    texts, labels = kzoo.data.load_sst2("dev")
    data = text.text_datasets(texts, labels, vectorizer=vectorizer, batch_size=256, shuffle=False)
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    loss, accuracy = model.evaluate(data, verbose=0)
    assert accuracy == pytest.approx(record.metrics["dev_accuracy"], abs=1.2e-3)  # one sentence is 1.1e-3
    assert loss == pytest.approx(record.metrics["dev_loss"], abs=2e-3)


@pytest.mark.skipif(not kzoo.data.has_data("conll2003"), reason="CoNLL-2003 not in KZOO_DATA_DIR")
def test_shipped_ner_tagger_reaches_its_recorded_test_f1():
    model = kzoo.get("bilstm_tagger", pretrained="conll2003")
    record = kzoo.info("bilstm_tagger").weights[0]
    assert "vocabulary" not in record.text  # hashed words: nothing of the Reuters text ships
    sentences, tags = kzoo.data.load_conll2003("testb")
    tag_ids = [[text.CONLL_TAGS.index(t) for t in row] for row in tags]
    features = text.TokenFeatures(record.text["num_bins"], record.text["max_word_length"])
    data = text.tagging_datasets(sentences, tag_ids, features=features, batch_size=256, shuffle=False)
    scores = text.evaluate_tagger(model, data)
    assert scores["chunks"] == 5648  # the entities of eng.testb, as conlleval counts them
    for figure in ("f1", "precision", "recall"):  # the shipped file, re-read: the recorded figures
        assert scores[figure] == pytest.approx(record.metrics[f"test_{figure}"], abs=0.02), figure
    dev_sentences, dev_tags = kzoo.data.load_conll2003("testa")
    dev_ids = [[text.CONLL_TAGS.index(t) for t in row] for row in dev_tags]
    dev = text.tagging_datasets(dev_sentences, dev_ids, features=features, batch_size=256, shuffle=False)
    assert text.evaluate_tagger(model, dev)["f1"] == pytest.approx(record.metrics["dev_f1"], abs=0.02)


@pytest.mark.skipif(not kzoo.data.has_data("conll2003"), reason="CoNLL-2003 not in KZOO_DATA_DIR")
def test_shipped_crf_tagger_reaches_its_recorded_figures_and_seqeval_agrees():
    """The CRF tagger's eng.testb scores, re-measured; seqeval (an independent conlleval) on the
    same Viterbi-decoded tags gives the same overall and per-type F1."""
    seqeval = pytest.importorskip("seqeval.metrics")
    model = kzoo.get("bilstm_crf_tagger", pretrained="conll2003")
    record = kzoo.info("bilstm_crf_tagger").weights[0]
    assert "vocabulary" not in record.text and record.text["normalize_digits"]
    sentences, tags = kzoo.data.load_conll2003("testb")
    tag_ids = [[text.CONLL_TAGS.index(t) for t in row] for row in tags]
    data_features = text.TokenFeatures(record.text["num_bins"], record.text["max_word_length"], normalize_digits=True)
    data = text.tagging_datasets(sentences, tag_ids, features=data_features, batch_size=256, shuffle=False)
    truth, guesses = text.predict_tags(model, data)
    scores = text.conll_f1(truth, guesses, by_type=True)
    assert scores["chunks"] == 5648
    assert scores["f1"] == pytest.approx(record.metrics["test_f1"], abs=0.02)  # the shipped file, re-read
    assert scores["precision"] == pytest.approx(record.metrics["test_precision"], abs=0.02)
    assert scores["recall"] == pytest.approx(record.metrics["test_recall"], abs=0.02)
    assert scores["f1"] == pytest.approx(100 * seqeval.f1_score(truth, guesses), abs=1e-6)
    assert scores["precision"] == pytest.approx(100 * seqeval.precision_score(truth, guesses), abs=1e-6)
    report = seqeval.classification_report(truth, guesses, output_dict=True)
    for kind, numbers in scores["by_type"].items():
        assert numbers["f1"] == pytest.approx(100 * report[kind]["f1-score"], abs=1e-6), kind
        assert numbers["chunks"] == report[kind]["support"]
        assert numbers["f1"] == pytest.approx(record.metrics[f"test_f1_{kind}"], abs=0.02)
    # the dev F1 the recipe chose its epoch by (eng.testa), re-measured on the shipped file
    dev_sentences, dev_tags = kzoo.data.load_conll2003("testa")
    dev_ids = [[text.CONLL_TAGS.index(t) for t in row] for row in dev_tags]
    dev = text.tagging_datasets(dev_sentences, dev_ids, features=data_features, batch_size=256, shuffle=False)
    assert text.conll_f1(*text.predict_tags(model, dev))["f1"] == pytest.approx(record.metrics["dev_f1"], abs=0.02)
    # the manifest's spread is over the recipe's seeds, and the shipped seed is its median
    assert record.metrics["seeds"] >= 3 and record.metrics["test_f1_sd"] > 0
    assert abs(record.metrics["test_f1"] - record.metrics["test_f1_mean"]) <= 2 * record.metrics["test_f1_sd"]


@pytest.mark.parametrize("name", ["word2vec_skipgram", "word2vec_cbow"])
@pytest.mark.skipif(not kzoo.data.has_data("wikitext2"), reason="WikiText-2 not in KZOO_DATA_DIR")
def test_shipped_word2vec_reaches_its_recorded_held_out_ranking_accuracy(name):
    model = kzoo.get(name, pretrained=True)
    record = kzoo.info(name).weights[0]
    vectors, vocabulary = text.embeddings_for(model)
    assert vectors.shape == (len(vocabulary), record.builder_kwargs["embedding_dim"])
    vectorizer = text.vectorizer_for(model)
    counts = text.token_counts(
        text.id_stream(vectorizer, text.corpus_lines("wikitext2-valid", "tinyshakespeare")), len(vocabulary)
    )
    held_out = text.id_stream(vectorizer, text.corpus_lines("wikitext2-test"))
    accuracy = text.ranking_accuracy(model, held_out, counts)
    assert accuracy == pytest.approx(record.metrics["held_out_ranking_accuracy"], abs=0.002)
    assert accuracy > 1.5 / (1 + record.builder_kwargs["num_negatives"])  # well above chance


def test_sst2_sentences_keep_each_sentence_once_and_no_piece_of_it():
    phrases = ["the film is a charming delight .", "a charming delight", "charming", "is a charming delight .", "bad"]
    phrases += ["a dull , lifeless movie", "dull , lifeless", "the film is a charming delight ."]  # a repeat
    assert kzoo.data.sst2_sentences(phrases) == ["the film is a charming delight .", "a dull , lifeless movie"]


@pytest.mark.skipif(not kzoo.data.has_data("sst2"), reason="SST-2 not in KZOO_DATA_DIR")
def test_sst2_train_corpus_holds_whole_training_sentences_and_nothing_from_dev():
    lines = text.corpus_lines("sst2-train")
    words = sum(len(line.split()) for line in lines)
    assert 6000 < len(lines) < 8000 and 100_000 < words < 200_000  # SST has 6,920 training sentences
    train, _ = kzoo.data.load_sst2("train")
    joined = "\n".join(lines)
    assert all(phrase in joined for phrase in train[:2000] if len(phrase.split()) >= 4)  # every phrase is in one
    dev, _ = kzoo.data.load_sst2("dev")
    assert not set(lines) & {sentence.strip() for sentence in dev}
