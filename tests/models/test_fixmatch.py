"""Unit tests for course_lib.models.fixmatch: the batches, the FixMatch model and its trainer."""

import keras
import numpy as np
import pytest
from keras import ops

from course_lib.models.fixmatch import FixMatch, FixMatchTrainer, fixmatch_batches


def test_fixmatch_batches_shapes_and_sampling(two_class_images):
    x, y = two_class_images(30)
    unlabeled = np.arange(50, dtype=np.float32)[:, None, None, None] * np.ones((1, 8, 8, 1), np.float32)
    (x_l, x_u), y_l = fixmatch_batches(x[:4], y[:4], unlabeled, mu=3, steps=5, batch_size=4, seed=0)
    assert x_l.shape == (20, 8, 8, 1) and x_u.shape == (20, 3, 8, 8, 1) and y_l.shape == (20,)
    for image, label in zip(x_l, y_l):  # each labeled row is one of the 4 labeled images, with its own label
        match = [i for i in range(4) if np.array_equal(image, x[i])]
        assert match and y[match[0]] == label
    ids = x_u[:, :, 0, 0, 0].ravel().astype(int)
    assert sorted(ids[:50].tolist()) == list(range(50))  # the first pass visits every unlabeled image once
    with pytest.raises(ValueError):
        fixmatch_batches(x[:4], y[:3], unlabeled)


def test_fixmatch_call_training_structure_and_inference(two_class_images, small_classifier):
    model = FixMatch(small_classifier(), threshold=0.9, seed=0)
    x, _ = two_class_images(6)
    out = model((x[:2], np.stack([x[2:5], x[3:6]])), training=True)
    assert {k: tuple(v.shape) for k, v in out.items()} == {"labeled": (2, 2), "weak": (6, 2), "strong": (6, 2)}
    probs = ops.convert_to_numpy(model(x))
    assert probs.shape == (6, 2) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)


def test_fixmatch_learns_and_save_load_round_trip(tmp_path, two_class_images, small_classifier):
    x, y = two_class_images(200, seed=1)
    labeled = np.concatenate([np.flatnonzero(y == c)[:2] for c in range(2)])
    keras.utils.set_random_seed(0)
    model = FixMatch(small_classifier(), threshold=0.8, lambda_u=1.0, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    (x_l, x_u), y_l = fixmatch_batches(x[labeled], y[labeled], x, mu=4, steps=60, batch_size=8, seed=0)
    history = model.fit((x_l, x_u), y_l, batch_size=8, epochs=2, shuffle=False, verbose=0)
    assert set(history.history) == {"loss", "supervised_loss", "unlabeled_loss", "mask_rate"}
    assert history.history["mask_rate"][-1] > 0.5
    x_test, y_test = two_class_images(100, seed=2)
    predictions = model.predict(x_test, verbose=0)
    assert np.mean(predictions.argmax(axis=1) == y_test) > 0.9
    path = tmp_path / "fixmatch.keras"
    model.save(path)
    restored = keras.models.load_model(path)
    assert isinstance(restored, FixMatch)
    assert (restored.threshold, restored.lambda_u) == (0.8, 1.0)
    np.testing.assert_allclose(restored.predict(x_test, verbose=0), predictions, atol=1e-6)


def test_fixmatch_rejects_bad_hyper_parameters_and_image_only_training(small_classifier):
    with pytest.raises(ValueError):
        FixMatch(small_classifier(), threshold=1.5)
    with pytest.raises(ValueError):
        FixMatch(small_classifier(), lambda_u=-1.0)
    model = FixMatch(small_classifier())
    with pytest.raises(ValueError, match="x_labeled, x_unlabeled"):
        model.compute_loss(y=np.zeros(2), y_pred=np.zeros((2, 2)))


def test_fixmatch_trainer_resets_between_draws(tmp_path, two_class_images, small_classifier):
    x, y = two_class_images(120, seed=3)
    trainer = FixMatchTrainer(small_classifier, x, steps=20, epochs=2, batch_size=8, mu=2, seed=0)
    labeled = np.concatenate([np.flatnonzero(y == c)[:3] for c in range(2)])
    trainer.fit(x[labeled], y[labeled], seed=5)
    first = [w.copy() for w in trainer.model.classifier.get_weights()]
    assert int(trainer.model.optimizer.iterations.numpy()) == 20
    trainer.fit(x[labeled], y[labeled], seed=6)  # another draw in between
    trainer.fit(x[labeled], y[labeled], seed=5)
    assert int(trainer.model.optimizer.iterations.numpy()) == 20  # optimizer state restarted, not accumulated
    for a, b in zip(first, trainer.model.classifier.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-5)
    trainer.model.save(tmp_path / "trained.keras")  # the bookkeeping of the reset does not get in the way
    restored = keras.models.load_model(tmp_path / "trained.keras")
    np.testing.assert_allclose(restored.predict(x, verbose=0), trainer.model.predict(x, verbose=0), atol=1e-6)


def test_warmup_cosine_schedule_shape():
    from course_lib.models.fixmatch import WarmupCosine

    schedule = WarmupCosine(1.0, total_steps=100, warmup_steps=10, final_fraction=0.1)
    values = [float(ops.convert_to_numpy(schedule(step))) for step in (0, 9, 10, 55, 100, 200)]
    np.testing.assert_allclose(values[:3], [0.1, 1.0, 1.0], atol=1e-6)   # linear warm-up, then the peak
    assert values[2] > values[3] > values[4]                            # cosine decay
    np.testing.assert_allclose(values[4:], [0.1, 0.1], atol=1e-6)        # ... to final_fraction * peak, then flat
    assert WarmupCosine.from_config(schedule.get_config()).get_config() == schedule.get_config()
    with pytest.raises(ValueError):
        WarmupCosine(1.0, total_steps=10, warmup_steps=10)


def test_softmax_head_shapes_and_shared_encoder():
    from course_lib.models.encoders import build_encoder28
    from course_lib.models.fixmatch import softmax_head

    encoder = build_encoder28((28, 28, 1), width=4, embedding_dim=8)
    classifier = softmax_head(encoder, 3)
    probs = ops.convert_to_numpy(classifier(np.zeros((2, 28, 28, 1), np.float32)))
    assert probs.shape == (2, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert all(any(w is v for v in classifier.weights) for w in encoder.weights)   # shared, not copied


def test_fixmatch_trainer_rebuild_fresh_batches_and_custom_loss(two_class_images, small_classifier):
    from course_lib.losses import fixmatch_loss

    x, y = two_class_images(80, seed=4)
    labeled = np.concatenate([np.flatnonzero(y == c)[:3] for c in range(2)])
    keras.utils.set_random_seed(0)
    start = small_classifier()
    start_weights = start.get_weights()
    calls = []

    def build():  # every draw starts from the same ("pretrained") weights
        model = small_classifier()
        model.set_weights(start_weights)
        return model

    def counting_loss(*args):
        calls.append(1)
        return fixmatch_loss(*args)

    trainer = FixMatchTrainer(build, x, steps=12, epochs=3, batch_size=4, mu=2, seed=0, rebuild=True,
                              schedule="warmup_cosine", fresh_batches=True, loss_fn=counting_loss,
                              steps_per_execution=2)
    trainer.reset(7)
    for a, b in zip(trainer.model.classifier.get_weights(), start_weights):
        np.testing.assert_allclose(a, b)                      # rebuild=True: the builder's weights, not random ones
    trainer.fit(x[labeled], y[labeled], seed=5)
    assert calls                                              # the given loss is the one that trained
    assert set(trainer.history) >= {"loss", "supervised_loss", "unlabeled_loss", "mask_rate"}
    assert len(trainer.history["mask_rate"]) == 3             # one value per chunk of the fresh batches
    assert int(ops.convert_to_numpy(trainer.model.optimizer.iterations)) == 12
    assert trainer.predict_proba(x[:5]).shape == (5, 2)
    with pytest.raises(ValueError):
        FixMatchTrainer(build, x, steps=4, epochs=2, schedule="linear")
