"""Unit tests for course_lib.training: batched inference, seed-generator and optimizer resets,
KerasFitPredict, and saving a trained model with its settings."""

import keras
import numpy as np
import pytest

from course_lib import training


# --- predict_batched ------------------------------------------------------------------------------

def test_predict_batched_calls_the_model_batch_by_batch_in_inference_mode():
    calls = []

    def double(batch, training=None):
        calls.append((len(batch), batch.dtype, training))
        return batch * 2

    ids = np.arange(7, dtype=np.int32).reshape(7, 1)
    out = training.predict_batched(double, ids, batch_size=3)
    assert calls == [(3, np.int32, False), (3, np.int32, False), (1, np.int32, False)]
    assert out.dtype == np.int32 and out.ravel().tolist() == [0, 2, 4, 6, 8, 10, 12]  # integers stay integers
    floats = training.predict_batched(double, np.full((2, 3), 0.5, np.float64))
    assert floats.dtype == np.float32 and floats.shape == (2, 3) and np.all(floats == 1.0)


def test_predict_batched_equals_the_model_on_the_whole_array():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dropout(0.5)])
    x = np.random.default_rng(0).normal(size=(10, 3))
    out = training.predict_batched(model, x, batch_size=4)
    assert out.shape == (10, 4) and out.dtype == np.float32
    expected = keras.ops.convert_to_numpy(model(x.astype(np.float32), training=False))  # no dropout
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)


def test_predict_batched_rejects_empty_input_and_bad_batch_size():
    with pytest.raises(ValueError, match="non-empty"):
        training.predict_batched(lambda batch, training=None: batch, np.zeros((0, 3)))
    with pytest.raises(ValueError, match="batch_size"):
        training.predict_batched(lambda batch, training=None: batch, np.zeros((2, 3)), batch_size=0)


# --- seed generators and optimizer state ---------------------------------------------------------

def test_reset_seed_generators_makes_a_run_depend_only_on_its_seed():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dropout(0.5, seed=1),
                              keras.layers.GaussianNoise(1.0, seed=2)])
    x = np.ones((4, 6), np.float32)

    def run():
        return keras.ops.convert_to_numpy(model(x, training=True))

    assert training.reset_seed_generators(model, 5) == 2
    first, second = run(), run()
    assert not np.array_equal(first, second)  # the generators advance from call to call
    training.reset_seed_generators(model, 5)
    np.testing.assert_array_equal(run(), first)
    training.reset_seed_generators(model, 6)
    assert not np.array_equal(run(), first)


def test_snapshot_and_restore_optimizer():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    optimizer = keras.optimizers.Adam(0.1)
    state = training.snapshot_optimizer(optimizer, model.trainable_variables)
    assert optimizer.built and len(state) == len(optimizer.variables)
    assert all(isinstance(value, np.ndarray) for value in state)
    initial = [value.copy() for value in state]
    optimizer.apply([keras.ops.ones(v.shape, v.dtype) for v in model.trainable_variables], model.trainable_variables)
    assert int(keras.ops.convert_to_numpy(optimizer.iterations)) == 1
    for value, before in zip(state, initial):  # the snapshot is a copy, not a view of the variables
        np.testing.assert_array_equal(value, before)
    training.restore_optimizer(optimizer, state)
    assert int(keras.ops.convert_to_numpy(optimizer.iterations)) == 0
    for variable, value in zip(optimizer.variables, state):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(variable), value)
    with pytest.raises(ValueError, match="arrays"):
        training.restore_optimizer(optimizer, state[:-1])


# --- KerasFitPredict ----------------------------------------------------------------------------

def test_keras_fit_predict_resets_and_learns(two_class_images, small_classifier):
    x, y = two_class_images(80, seed=4)
    labeled = np.concatenate([np.flatnonzero(y == c)[:3] for c in range(2)])
    fit_predict = training.KerasFitPredict(small_classifier, epochs=2, batch_size=16, rows_per_epoch=64,
                                           learning_rate=1e-2, seed=0)
    assert fit_predict.model.steps_per_execution == (1 if keras.backend.backend() == "torch" else 8)  # torch: 1 only
    predictions = fit_predict(x[labeled], y[labeled], x)
    assert predictions.shape == (80,) and np.mean(predictions == y) > 0.9
    assert int(fit_predict.model.optimizer.iterations.numpy()) == 8
    fit_predict(x[labeled], y[labeled], x)
    assert int(fit_predict.model.optimizer.iterations.numpy()) == 8 and fit_predict.draws == 2


def test_keras_fit_predict_draw_depends_only_on_its_seed(two_class_images, small_classifier):
    """Draw 1 of one instance is draw 0 of an instance seeded one higher: the first fit uses no extra randomness
    (compiling the step on the first fit must not advance a shuffle or a seed generator)."""
    x, y = two_class_images(80, seed=4)
    labeled = np.concatenate([np.flatnonzero(y == c)[:3] for c in range(2)])
    settings = dict(epochs=2, batch_size=16, rows_per_epoch=64, learning_rate=1e-2)
    first = training.KerasFitPredict(small_classifier, seed=0, **settings)
    first.fit(x[labeled], y[labeled])
    second_draw = keras.ops.convert_to_numpy(first.fit(x[labeled], y[labeled]).predict(x, verbose=0))
    fresh = training.KerasFitPredict(small_classifier, seed=1, **settings)
    fresh_draw = keras.ops.convert_to_numpy(fresh.fit(x[labeled], y[labeled]).predict(x, verbose=0))
    np.testing.assert_allclose(second_draw, fresh_draw, rtol=1e-5, atol=1e-6)


# --- save_trained / load_trained ---------------------------------------------------------------

def test_save_and_load_encoder_with_metadata(tmp_path, small_encoder):
    encoder = small_encoder()
    path = training.save_trained(encoder, tmp_path / "models" / "enc.keras", dataset="digits", seed=0,
                                 encoder_kwargs={"width": 8}, image_shape=(8, 8, 1))
    assert path.exists() and path.with_suffix(".json").exists()
    x = np.random.default_rng(0).uniform(size=(4, 8, 8, 1)).astype("float32")
    loaded = training.load_trained(path, dataset="digits", seed=0, image_shape=(8, 8, 1), encoder_kwargs={"width": 8})
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded(x)), keras.ops.convert_to_numpy(encoder(x)))
    assert training.load_trained(path, dataset="mnist") is None
    assert training.load_trained(path, seed=1) is None
    assert training.load_trained(tmp_path / "missing.keras") is None
    path.write_bytes(b"not a keras file")
    assert training.load_trained(path, dataset="digits") is None
