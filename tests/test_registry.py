"""Registry behaviour: registration, listing, model cards, argument errors."""

from __future__ import annotations

import keras
import pytest

import kzoo
from kzoo import errors, registry

from helpers import tiny_spec


def test_duplicate_registration_raises(temporary_registry):
    temporary_registry.model(tiny_spec("tiny_dup"))
    with pytest.raises(errors.RegistryError, match="already registered"):
        kzoo.register_model(tiny_spec("tiny_dup"))


def test_bad_names_and_tasks_are_refused():
    with pytest.raises(errors.RegistryError, match="lower-case"):
        kzoo.register_model(tiny_spec("Tiny Net"))
    with pytest.raises(errors.RegistryError, match="expected one of"):
        kzoo.register_model(tiny_spec("tiny_task", task="magic"))
    with pytest.raises(errors.InvalidArgumentError):
        kzoo.register_model({"name": "not a spec"})


def test_list_models_wildcards_task_and_pretrained(temporary_registry):
    temporary_registry.model(tiny_spec("tiny_a"))
    temporary_registry.model(tiny_spec("tiny_b", task="image-segmentation"))
    assert kzoo.list_models("tiny_*") == ["tiny_a", "tiny_b"]
    assert kzoo.list_models("TINY_?") == ["tiny_a", "tiny_b"]
    assert kzoo.list_models("tiny_[a]") == ["tiny_a"]
    assert kzoo.list_models("tiny*", task="image-segmentation") == ["tiny_b"]
    assert kzoo.list_models("tiny*", pretrained=True) == []
    assert kzoo.list_models("tiny*", pretrained=False) == ["tiny_a", "tiny_b"]
    assert "lenet5" in kzoo.list_models(pretrained=True)
    everything = kzoo.list_models()
    assert everything == sorted(everything)
    with pytest.raises(errors.InvalidArgumentError, match="image-classification"):
        kzoo.list_models(task="image-clasification")


def test_unknown_model_suggests_close_matches():
    with pytest.raises(errors.UnknownModelError) as caught:
        kzoo.get("lenet-5")
    message = str(caught.value)
    assert "did you mean 'lenet5'" in message
    assert "kzoo.list_models()" in message
    assert isinstance(caught.value, ValueError)


def test_unknown_keyword_argument_is_named():
    with pytest.raises(errors.InvalidArgumentError, match="did you mean 'num_classes'"):
        kzoo.get("lenet5", num_class=3)


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"input_shape": (28, 28)}, "(height, width, channels)"),
        ({"input_shape": (16, 16, 1)}, "at least 28"),
        ({"num_classes": 0}, "a positive int"),
        ({"num_classes": "10"}, "a positive int"),
        ({"pooling": "mean", "include_top": False}, "'avg' or 'max'"),
        ({"classifier_activation": "softmaxx"}, "Keras activation"),
        ({"include_top": "yes"}, "True or False"),
    ],
)
def test_bad_vision_arguments_say_expected_and_received(kwargs, fragment):
    with pytest.raises(errors.InvalidArgumentError) as caught:
        kzoo.get("lenet5", **kwargs)
    message = str(caught.value)
    assert "expected" in message and "received" in message and fragment in message


def test_unknown_weights_tag_lists_tags():
    with pytest.raises(errors.UnknownWeightsError) as caught:
        kzoo.get("lenet5", pretrained="mnsit")
    assert "did you mean 'mnist'?" in str(caught.value)
    assert "['mnist', 'uci_digits']" in str(caught.value)  # every tag lenet5 ships


def test_pretrained_true_without_weights_is_a_clear_error(temporary_registry):
    temporary_registry.model(tiny_spec("tiny_noweights"))
    with pytest.raises(errors.UnknownWeightsError, match="has no pretrained weights"):
        kzoo.get("tiny_noweights", pretrained=True)
    with pytest.raises(errors.InvalidArgumentError, match="received 3"):
        kzoo.get("tiny_noweights", pretrained=3)


def test_get_returns_a_functional_model_that_carries_its_identity():
    model = kzoo.get("lenet5", num_classes=7, name="digits")
    assert isinstance(model, kzoo.KzooModel) and isinstance(model, keras.Model)
    assert "layers" in model.get_config()  # functional: its graph is its config
    assert model.name == "digits"
    assert model.output_shape == (None, 7)
    origin = registry.origin(model)
    assert origin.spec.name == "lenet5" and origin.weights is None
    identity = kzoo.identity.of(model)
    assert identity.name == "lenet5" and identity.builder_kwargs["num_classes"] == 7
    assert not identity.preprocessing_in_model  # random weights: kzoo.data applies the preprocessing
    assert kzoo.identity.of(keras.Model(model.inputs, model.outputs)) == identity


@pytest.mark.parametrize("name", kzoo.list_models())
def test_card_facts_match_the_built_model(name):
    """The parameters and input shape kzoo.info shows without building are the model's."""
    spec = registry.spec(name)
    with keras.StatelessScope():  # variables get shapes but no values: cheap for VGG's 138M
        model = spec.build()
        assert spec.num_params == model.count_params()
        assert spec.input_shape == (tuple(model.inputs[0].shape[1:]) if len(model.inputs) == 1 else None)


def test_info_does_not_build_the_model(monkeypatch):
    monkeypatch.setattr(registry.ModelSpec, "build", lambda *a, **k: pytest.fail("info built the model"))
    card = kzoo.info("vgg16")
    assert card.params == 138_357_544 and card.input_shape == (224, 224, 3)


def test_include_top_false_and_pooling():
    features = kzoo.get("lenet5", include_top=False)
    assert features.output_shape == (None, 1, 1, 120)
    pooled = kzoo.get("lenet5", include_top=False, pooling="avg")
    assert pooled.output_shape == (None, 120)
    assert "predictions" not in [layer.name for layer in pooled.layers]


def test_classifier_activation_softmax_sums_to_one():
    import numpy as np

    model = kzoo.get("lenet5", classifier_activation="softmax")
    probabilities = model.predict(np.random.default_rng(0).random((3, 28, 28, 1)), verbose=0)
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, rtol=1e-5)


def test_info_prints_a_readable_card():
    card = kzoo.info("lenet5")
    assert card.params == 61706
    assert card.input_shape == (28, 28, 1)
    assert card.tags == ["mnist", "uci_digits"]  # the default first
    text = str(card)
    for fragment in (
        "lenet5",
        "LeCun",
        "61,706",
        "'mnist' (default)",
        "test_accuracy",
        "recipe:",
        "license:",
        "sha256",
    ):
        assert fragment in text, fragment
