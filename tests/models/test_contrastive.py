"""Tests of the self-supervised models: SimCLR, MoCo, SimSiam, rotation prediction, and the probes."""

import json

import keras
import numpy as np
import pytest

from course_lib import probes
from course_lib.augment import build_augmenter
from course_lib.data import load_dataset
from course_lib.models import contrastive, pretext


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits").x_train[:256]


def _small_encoder(shape=(8, 8, 1), **kwargs):
    return contrastive.build_encoder(shape, width=8, embedding_dim=16, **kwargs)


def _models(shape=(8, 8, 1)):
    """One small instance of every model, built the way the notebooks build them."""
    keras.utils.set_random_seed(0)
    aug = build_augmenter(shape, seed=0)
    out = {
        "simclr": contrastive.SimCLR(_small_encoder(shape), contrastive.build_projection_head(16, 32, 8), aug,
                                     temperature=0.2),
        "moco": contrastive.MoCo(_small_encoder(shape), contrastive.build_projection_head(16, 32, 8), aug,
                                 queue_size=64, momentum=0.9),
        "simsiam": contrastive.SimSiam(_small_encoder(shape),
                                       contrastive.build_projection_head(16, 32, 8, output_batch_norm=True),
                                       contrastive.build_predictor(8, 4), aug),
        "rotation": pretext.RotationPrediction(_small_encoder(shape), augmenter=aug),
    }
    for model in out.values():
        model.compile(optimizer=keras.optimizers.Adam(3e-3))
    return out


@pytest.mark.parametrize("shape", [(8, 8, 1), (28, 28, 1)])
@pytest.mark.parametrize("kind", ["conv", "mlp"])
def test_encoder_output_shapes(shape, kind):
    encoder = contrastive.build_encoder(shape, kind=kind, width=8, embedding_dim=24)
    out = np.asarray(encoder(np.zeros((3, *shape), "float32")))
    assert out.shape == (3, 24) and out.dtype == np.float32
    assert contrastive.build_projection_head(24, 16, 7)(out).shape == (3, 7)
    with pytest.raises(ValueError):
        contrastive.build_encoder(shape, kind="resnet")


@pytest.mark.parametrize("shape", [(8, 8, 1), (28, 28, 1)])
def test_every_model_outputs_the_representation(shape):
    x = np.random.default_rng(0).uniform(size=(5, *shape)).astype("float32")
    for name, model in _models(shape).items():
        features = np.asarray(model.predict(x, verbose=0))
        assert features.shape == (5, 16), name
        np.testing.assert_allclose(features, np.asarray(model.encoder(x, training=False)), rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def trained(digits):
    """Every model trained for 6 epochs on 256 digits: {name: (model, history dict)}."""
    return {name: (model, model.fit(digits, epochs=6, batch_size=64, verbose=0).history)
            for name, model in _models().items()}


def test_a_few_epochs_reduce_every_loss(trained):
    for name, (_, history) in trained.items():
        assert np.all(np.isfinite(history["loss"])), name
        # MoCo's first epoch is special: its queue starts with random keys, easy negatives
        start = history["loss"][1 if name == "moco" else 0]
        assert np.mean(history["loss"][-2:]) < start - 0.02, (name, history["loss"])


def test_rotation_accuracy_rises(trained):
    history = trained["rotation"][1]
    assert history["accuracy"][-1] > 0.5 > 0.25   # chance is 0.25


def test_moco_momentum_and_queue(digits):
    model = _models()["moco"]
    queue_before = np.array(model.queue.numpy())
    np.testing.assert_allclose(model.key_encoder.get_weights()[0], model.encoder.get_weights()[0])
    model.fit(digits[:48], epochs=1, batch_size=24, verbose=0)     # two steps
    queue_after = np.array(model.queue.numpy())
    changed = np.any(queue_after != queue_before, axis=1)
    assert changed.sum() == 48 and changed[:48].all()              # two batches of 24 keys enqueued in order
    np.testing.assert_allclose(np.linalg.norm(queue_after[:48], axis=1), 1.0, rtol=1e-5)
    assert int(model.queue_pointer.numpy()) == 48
    model.fit(digits[:24], epochs=1, batch_size=24, verbose=0)     # 48 + 24 = 72 wraps around the queue of 64
    assert int(model.queue_pointer.numpy()) == 8
    key, query = model.key_encoder.get_weights()[0], model.encoder.get_weights()[0]
    assert not np.allclose(key, query)                             # the key encoder lags behind
    assert model.key_encoder.trainable is False and len(model.trainable_weights) == len(
        model.encoder.trainable_weights + model.projection_head.trainable_weights)


def test_momentum_update_formula():
    target = [keras.Variable(np.full((2, 3), 1.0, "float32")), keras.Variable(np.zeros(2, "float32"))]
    online = [np.full((2, 3), 3.0, "float32"), np.ones(2, "float32")]
    contrastive.momentum_update(target, online, 0.75)
    np.testing.assert_allclose(target[0].numpy(), 1.5)
    np.testing.assert_allclose(target[1].numpy(), 0.25)
    contrastive.momentum_update(target, online, 0.0)
    np.testing.assert_allclose(target[0].numpy(), 3.0)
    with pytest.raises(ValueError):
        contrastive.momentum_update(target, online[:1], 0.5)


def test_same_seed_same_encoder(digits):
    kwargs = dict(epochs=1, batch_size=64, encoder_kwargs={"width": 8, "embedding_dim": 16})
    a = contrastive.embed(contrastive.pretrain_simclr(digits[:128], seed=3, **kwargs), digits[:20])
    b = contrastive.embed(contrastive.pretrain_simclr(digits[:128], seed=3, **kwargs), digits[:20])
    c = contrastive.embed(contrastive.pretrain_simclr(digits[:128], seed=4, **kwargs), digits[:20])
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert not np.allclose(a, c, atol=1e-3)


def test_same_seed_same_result_for_every_model(digits):
    def run():
        out = {}
        for name, model in _models().items():            # _models() seeds everything with seed 0
            model.compile(optimizer=keras.optimizers.Adam(3e-3), run_eagerly=True)   # eager: no tracing cost
            history = model.fit(digits[:32], epochs=1, batch_size=32, verbose=0).history   # one step
            out[name] = (history["loss"][-1], np.asarray(model(digits[:8])))
        return out

    first, second = run(), run()
    for name in first:
        assert first[name][0] == pytest.approx(second[name][0], rel=1e-5), name
        np.testing.assert_allclose(first[name][1], second[name][1], rtol=1e-5, atol=1e-6, err_msg=name)


def test_save_load_round_trip(tmp_path, digits, trained):
    x = digits[:16]
    for name, (model, _) in trained.items():
        path = tmp_path / f"{name}.keras"
        model.save(path)
        loaded = keras.models.load_model(path)
        assert type(loaded) is type(model)
        np.testing.assert_array_equal(np.asarray(loaded.predict(x, verbose=0)), np.asarray(model.predict(x, verbose=0)))
        assert json.dumps(loaded.get_config()) == json.dumps(model.get_config())   # (tuples come back as lists)
        assert type(loaded.optimizer) is type(model.optimizer)
        assert int(loaded.optimizer.iterations.numpy()) == int(model.optimizer.iterations.numpy()) == 24
        if name == "moco":
            np.testing.assert_array_equal(loaded.queue.numpy(), model.queue.numpy())
            np.testing.assert_array_equal(loaded.key_encoder.get_weights()[0], model.key_encoder.get_weights()[0])
        if name == "simclr":
            np.testing.assert_array_equal(np.asarray(loaded.project(x)), np.asarray(model.project(x)))
        if name == "rotation":
            np.testing.assert_array_equal(np.asarray(loaded.rotation_logits(x)), np.asarray(model.rotation_logits(x)))
    encoder = trained["simclr"][0].encoder
    encoder.save(tmp_path / "encoder.keras")
    np.testing.assert_array_equal(np.asarray(keras.models.load_model(tmp_path / "encoder.keras")(x)),
                                  np.asarray(encoder(x)))


def test_invalid_arguments():
    enc, head = _small_encoder(), contrastive.build_projection_head(16, 32, 8)
    with pytest.raises(ValueError):
        contrastive.SimCLR(enc, head, objective="cosine")
    with pytest.raises(ValueError):
        contrastive.SimCLR(enc, head, temperature=0.0)
    with pytest.raises(ValueError):
        contrastive.MoCo(enc, head, momentum=1.0)


def test_rotations_match_numpy():
    x = np.random.default_rng(0).uniform(size=(3, 5, 5, 1)).astype("float32")
    rotated, labels = pretext.rotation_batch(x)
    rotated = np.asarray(rotated)
    assert rotated.shape == (12, 5, 5, 1) and np.asarray(labels).tolist() == [0] * 3 + [1] * 3 + [2] * 3 + [3] * 3
    for k in range(4):
        np.testing.assert_array_equal(rotated[3 * k: 3 * k + 3], np.rot90(x, k, axes=(1, 2)))
    with pytest.raises(ValueError):
        pretext.rotate90(np.zeros((1, 4, 5, 1), "float32"), 1)


def test_probes():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 30)
    features = rng.normal(size=(90, 4)) + 4 * np.eye(3, 4)[y]
    predictions = probes.knn_probe_predict(features[::2], y[::2], features[1::2], k=3)
    assert predictions.shape == (45,) and np.mean(predictions == y[1::2]) > 0.9
    from course_lib.evaluation import knn_probe

    assert np.mean(predictions == y[1::2]) == pytest.approx(knn_probe(features[::2], y[::2], features[1::2], y[1::2], k=3))
    results = probes.probe_label_efficiency(features[::2], y[::2], features[1::2], y[1::2], budgets=(1, 5), n_draws=3,
                                            name="toy")
    assert set(results) == {"linear", "knn"} and results["linear"].method == "toy (linear)"
    assert results["linear"].mean(5) > 0.8 and len(results["knn"].accuracies[0]) == 3
    table = probes.probe_table(results.values())
    assert "toy (kNN)" in table and "5 labels/class" in table and "±" in table


def test_save_and_load_encoder_with_metadata(tmp_path):
    encoder = _small_encoder()
    path = contrastive.save_encoder(encoder, tmp_path / "models" / "enc.keras", dataset="digits", seed=0,
                                    encoder_kwargs={"width": 8}, image_shape=(8, 8, 1))
    assert path.exists() and path.with_suffix(".json").exists()
    x = np.random.default_rng(0).uniform(size=(4, 8, 8, 1)).astype("float32")
    loaded = contrastive.load_encoder(path, dataset="digits", seed=0, image_shape=(8, 8, 1), encoder_kwargs={"width": 8})
    np.testing.assert_array_equal(np.asarray(loaded(x)), np.asarray(encoder(x)))
    assert contrastive.load_encoder(path, dataset="mnist") is None
    assert contrastive.load_encoder(path, seed=1) is None
    assert contrastive.load_encoder(tmp_path / "missing.keras") is None
    path.write_bytes(b"not a keras file")
    assert contrastive.load_encoder(path, dataset="digits") is None
