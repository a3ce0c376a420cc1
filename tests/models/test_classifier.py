"""Unit tests for course_lib.models.classifier: the Day-01 classifier and its feature extractor."""

import keras
import numpy as np
import pytest

from course_lib.models import classifier


@pytest.mark.parametrize("shape", [(8, 8, 1), (28, 28, 1)])
def test_classifier_outputs_probabilities_and_features(shape):
    keras.utils.set_random_seed(0)
    model = classifier.build_classifier(shape, n_classes=4, hidden=12)
    x = np.random.default_rng(0).uniform(size=(5, *shape)).astype("float32")
    probabilities = keras.ops.convert_to_numpy(model(x))
    assert probabilities.shape == (5, 4)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    features = classifier.feature_extractor(model)
    assert keras.ops.convert_to_numpy(features(x)).shape == (5, 12)
    assert features.get_layer(classifier.FEATURES_LAYER) is model.get_layer(classifier.FEATURES_LAYER)  # shared


def test_classifier_rejects_bad_arguments_and_foreign_models():
    for kwargs in ({"n_classes": 1}, {"hidden": 0}, {"dropout": 1.0}):
        with pytest.raises(ValueError):
            classifier.build_classifier((8, 8, 1), **kwargs)
    other = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)], name="other")
    with pytest.raises(ValueError, match="features"):
        classifier.feature_extractor(other)


def test_train_classifier_learns_two_classes(two_class_images):
    x, y = two_class_images(64, seed=0)
    model = classifier.train_classifier(x, y, epochs=30, batch_size=16, hidden=8, seed=0)
    assert model.output_shape == (None, 2)  # n_classes inferred from the labels
    assert np.mean(keras.ops.convert_to_numpy(model(x)).argmax(axis=1) == y) > 0.9
