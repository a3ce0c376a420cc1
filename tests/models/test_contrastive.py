"""Tests of the self-supervised models: SimCLR and MoCo (course_lib.models.contrastive), with SimSiam and
rotation prediction wherever every self-supervised model is checked the same way (representation, training,
seeding, .keras round-trip)."""

import json

import keras
import numpy as np
import pytest

from course_lib.backends import to_numpy
from course_lib.models import contrastive, encoders
from course_lib.training import predict_batched


@pytest.mark.parametrize("shape", [(8, 8, 1), (28, 28, 1)])
def test_every_model_outputs_the_representation(shape, self_supervised_models):
    x = np.random.default_rng(0).uniform(size=(5, *shape)).astype("float32")
    for name, model in self_supervised_models(shape).items():
        features = np.asarray(model.predict(x, verbose=0))
        assert features.shape == (5, 16), name
        np.testing.assert_allclose(features, to_numpy(model.encoder(x, training=False)), rtol=1e-5, atol=1e-6)


def test_every_model_jit_compiles_on_jax_also_when_rebuilt_from_its_config(self_supervised_models):
    # a model loaded from a .keras file is rebuilt from its config: its augmenter's layers are new ones
    on_jax = keras.backend.backend() == "jax"
    for name, model in self_supervised_models().items():
        rebuilt = type(model).from_config(model.get_config())
        rebuilt.compile(optimizer=keras.optimizers.Adam(3e-3))
        assert model.jit_compile is on_jax and rebuilt.jit_compile is on_jax, name


def test_training_compiles_once_per_batch_shape_on_jax(digits, self_supervised_models):
    """No recompilation per step: with the augmenter jit-compatible, SimCLR's first epoch compiles the training
    step (once per batch shape: 32 rows and the last 8), the later epochs compile nothing (counted with
    ``jax.monitoring``'s XLA compilation events)."""
    if keras.backend.backend() != "jax":
        pytest.skip("counts XLA compilations of the JAX backend; the CI runs it with KERAS_BACKEND=jax")
    import jax

    compiles = []

    def listener(event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            compiles.append(event)

    per_epoch = []

    class CountPerEpoch(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = len(compiles)

        def on_epoch_end(self, epoch, logs=None):
            per_epoch.append(len(compiles) - self.start)

    model = self_supervised_models()["simclr"]
    assert model.jit_compile is True
    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        model.fit(digits[:72], epochs=3, batch_size=32, verbose=0, callbacks=[CountPerEpoch()])
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    assert per_epoch[0] >= 1 and per_epoch[1:] == [0, 0], per_epoch


def test_a_few_epochs_reduce_every_loss(trained):
    for name, (_, history) in trained.items():
        assert np.all(np.isfinite(history["loss"])), name
        # MoCo's first epoch is special: its queue starts with random keys, easy negatives
        start = history["loss"][1 if name == "moco" else 0]
        assert np.mean(history["loss"][-2:]) < start - 0.02, (name, history["loss"])


def test_moco_momentum_and_queue(digits, self_supervised_models):
    model = self_supervised_models()["moco"]
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
    a = predict_batched(contrastive.pretrain_simclr(digits[:128], seed=3, **kwargs), digits[:20])
    b = predict_batched(contrastive.pretrain_simclr(digits[:128], seed=3, **kwargs), digits[:20])
    c = predict_batched(contrastive.pretrain_simclr(digits[:128], seed=4, **kwargs), digits[:20])
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert not np.allclose(a, c, atol=1e-3)


def test_same_seed_same_result_for_every_model(digits, self_supervised_models):
    def run():
        out = {}
        for name, model in self_supervised_models().items():   # the fixture seeds everything with seed 0
            model.compile(optimizer=keras.optimizers.Adam(3e-3), run_eagerly=True)   # eager: no tracing cost
            history = model.fit(digits[:32], epochs=1, batch_size=32, verbose=0).history   # one step
            out[name] = (history["loss"][-1], to_numpy(model(digits[:8])))
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
            np.testing.assert_array_equal(to_numpy(loaded.project(x)), to_numpy(model.project(x)))
        if name == "rotation":
            np.testing.assert_array_equal(to_numpy(loaded.rotation_logits(x)), to_numpy(model.rotation_logits(x)))
    encoder = trained["simclr"][0].encoder
    encoder.save(tmp_path / "encoder.keras")
    np.testing.assert_array_equal(to_numpy(keras.models.load_model(tmp_path / "encoder.keras")(x)),
                                  to_numpy(encoder(x)))


def test_invalid_arguments(small_encoder):
    enc, head = small_encoder(), encoders.build_projection_head(16, 32, 8)
    with pytest.raises(ValueError):
        contrastive.SimCLR(enc, head, objective="cosine")
    with pytest.raises(ValueError):
        contrastive.SimCLR(enc, head, temperature=0.0)
    with pytest.raises(ValueError):
        contrastive.MoCo(enc, head, momentum=1.0)
