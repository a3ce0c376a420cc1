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
