"""Unit tests for course_lib.training: batched inference, seed-generator and optimizer resets,
KerasFitPredict, and saving a trained model with its settings."""

import keras
import numpy as np
import pytest

from course_lib import training


# --- KerasFitPredict ----------------------------------------------------------------------------

def test_keras_fit_predict_resets_and_learns(two_class_images, small_classifier):
    x, y = two_class_images(80, seed=4)
    labeled = np.concatenate([np.flatnonzero(y == c)[:3] for c in range(2)])
    fit_predict = training.KerasFitPredict(small_classifier, epochs=2, batch_size=16, rows_per_epoch=64,
                                           learning_rate=1e-2, seed=0)
    predictions = fit_predict(x[labeled], y[labeled], x)
    assert predictions.shape == (80,) and np.mean(predictions == y) > 0.9
    assert int(fit_predict.model.optimizer.iterations.numpy()) == 8
    fit_predict(x[labeled], y[labeled], x)
    assert int(fit_predict.model.optimizer.iterations.numpy()) == 8 and fit_predict.draws == 2


# --- save_trained / load_trained ---------------------------------------------------------------

def test_save_and_load_encoder_with_metadata(tmp_path, small_encoder):
    encoder = small_encoder()
    path = training.save_trained(encoder, tmp_path / "models" / "enc.keras", dataset="digits", seed=0,
                                 encoder_kwargs={"width": 8}, image_shape=(8, 8, 1))
    assert path.exists() and path.with_suffix(".json").exists()
    x = np.random.default_rng(0).uniform(size=(4, 8, 8, 1)).astype("float32")
    loaded = training.load_trained(path, dataset="digits", seed=0, image_shape=(8, 8, 1), encoder_kwargs={"width": 8})
    np.testing.assert_array_equal(np.asarray(loaded(x)), np.asarray(encoder(x)))
    assert training.load_trained(path, dataset="mnist") is None
    assert training.load_trained(path, seed=1) is None
    assert training.load_trained(tmp_path / "missing.keras") is None
    path.write_bytes(b"not a keras file")
    assert training.load_trained(path, dataset="digits") is None
