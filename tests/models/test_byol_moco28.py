"""BYOL, MoCo with in-batch negatives, the tensor momentum update and the BYOL loss."""

import keras
import numpy as np
import pytest
from keras import ops

from course_lib import losses, training
from course_lib.data.augment import build_augmenter28
from course_lib.models import contrastive, encoders, siamese


def _x(n=32, seed=0):
    return np.random.default_rng(seed).uniform(size=(n, 28, 28, 1)).astype("float32")


def _parts(dim=16):
    enc = encoders.build_encoder28(width=4, embedding_dim=dim)
    head = encoders.build_projection_head(dim, hidden_dim=16, output_dim=8)
    return enc, head


def test_byol_loss_matches_numpy_and_is_zero_when_aligned():
    rng = np.random.default_rng(0)
    p1, p2, z1, z2 = (rng.normal(size=(5, 3)).astype("float32") for _ in range(4))
    n = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)
    want = 0.5 * (np.mean(np.sum((n(p1) - n(z2)) ** 2, 1)) + np.mean(np.sum((n(p2) - n(z1)) ** 2, 1)))
    assert np.isclose(float(losses.byol_loss(p1, p2, z1, z2)), want, rtol=1e-5)
    assert np.isclose(float(losses.byol_loss(z2, z1, 2 * z1, 3 * z2)), 0.0, atol=1e-6)
    assert np.isclose(float(losses.byol_loss(p1, p2, z1, z2)),
                      2 + 2 * float(losses.symmetric_stop_gradient_loss(p1, p2, z1, z2)), rtol=1e-5)


def test_cosine_momentum_goes_from_base_to_one():
    values = [float(siamese.cosine_momentum(k, 10, 0.9)) for k in (0, 5, 10, 20)]
    assert np.allclose(values, [0.9, 0.95, 1.0, 1.0], atol=1e-6)


def test_momentum_update_accepts_a_tensor_momentum():
    t = [keras.Variable(np.zeros(3, "float32"))]
    contrastive.momentum_update(t, [np.ones(3, "float32")], ops.convert_to_tensor(0.25))
    assert np.allclose(ops.convert_to_numpy(t[0]), 0.75)
    with pytest.raises(ValueError):
        contrastive.momentum_update(t, [np.ones(3, "float32")], 1.5)


def test_target_copy_with_batch_stats_has_no_trainable_variable():
    enc, _ = _parts()
    twin = contrastive.target_copy(enc, "t_", batch_stats=True)
    assert twin.trainable and not twin.trainable_weights
    assert all(np.allclose(a, b) for a, b in zip(twin.get_weights(), enc.get_weights()))


def test_byol_trains_moves_target_and_round_trips(tmp_path):
    keras.utils.set_random_seed(0)
    enc, head = _parts()
    model = siamese.BYOL(enc, head, encoders.build_predictor(8, 16), build_augmenter28(seed=0), momentum=0.9,
                         total_steps=4)
    assert all(id(v) not in {id(w) for w in model.trainable_weights} for v in model.target_encoder.weights)
    before = model.target_encoder.get_weights()[0].copy()
    history = training.fit_self_supervised(model, _x(), epochs=2, batch_size=16)
    assert np.all(np.isfinite(history.history["loss"])) and "std" in history.history
    assert not np.allclose(before, model.target_encoder.get_weights()[0])
    assert int(ops.convert_to_numpy(model.step_counter)) == 4
    model.save(tmp_path / "byol.keras")
    loaded = keras.models.load_model(tmp_path / "byol.keras")
    x = _x(4, 1)
    assert np.allclose(ops.convert_to_numpy(loaded(x)), ops.convert_to_numpy(model(x)), atol=1e-5)


@pytest.mark.parametrize("queue_size", [0, 32])
def test_moco_with_batch_negatives_trains(queue_size):
    keras.utils.set_random_seed(0)
    enc, head = _parts()
    model = contrastive.MoCo(enc, head, build_augmenter28(seed=0), queue_size=queue_size, momentum=0.9,
                             batch_negatives=True, key_batch_stats=True)
    history = training.fit_self_supervised(model, _x(), epochs=1, batch_size=16, steps_per_execution=2)
    assert np.all(np.isfinite(history.history["loss"]))
    assert model.get_config()["batch_negatives"] and model.get_config()["key_batch_stats"]
    with pytest.raises(ValueError):
        contrastive.MoCo(*_parts(), queue_size=0)
