"""Unit tests for course_lib.semi_supervised (self-training, label spreading, FixMatch), course_lib.leaderboard
and the Day-10 self-checks."""

import math

import keras
import numpy as np
import pytest
from keras import ops

from course_lib import leaderboard, semi_supervised
from course_lib.checks import day10 as checks
from course_lib.evaluation import LabelEfficiencyResult
from course_lib.semi_supervised import (FixMatch, FixMatchTrainer, fixmatch_batches, fixmatch_loss,
                                        label_spreading_predict, select_pseudo_labels, self_training)


def blobs(n_per_class=60, n_classes=3, dim=5, spread=1.2, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, dim)) * 3
    y = np.repeat(np.arange(n_classes), n_per_class)
    x = centres[y] + spread * rng.normal(size=(len(y), dim))
    order = rng.permutation(len(y))
    return x[order].astype(np.float32), y[order]


def tiny_images(n=64, seed=0):
    """Two classes of 8x8 images: a bright left half or a bright right half, plus noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = np.zeros((n, 8, 8, 1), np.float32)
    x[y == 0, :, :4] = 1.0
    x[y == 1, :, 4:] = 1.0
    x = np.clip(x + rng.normal(scale=0.1, size=x.shape), 0, 1).astype(np.float32)
    return x, y


# --- selection and self-training ---------------------------------------------------------------

def test_select_pseudo_labels_known_values_and_inclusive_threshold():
    probs = np.array([[0.9, 0.1], [0.55, 0.45], [0.25, 0.75], [0.5, 0.5]])
    idx, labels = select_pseudo_labels(probs, 0.75)
    assert idx.tolist() == [0, 2] and labels.tolist() == [0, 1]
    assert idx.dtype == np.int64 and labels.dtype == np.int64
    idx, labels = select_pseudo_labels(probs, 0.0)
    assert idx.tolist() == [0, 1, 2, 3] and labels.tolist() == [0, 0, 1, 0]  # tie -> first class
    idx, labels = select_pseudo_labels(probs, 1.0)
    assert idx.size == 0 and labels.size == 0


@pytest.mark.parametrize("probs, threshold",
                         [(np.ones(3), 0.5), (np.ones((2, 2)) / 2, 1.5), (np.ones((2, 2)) / 2, -0.1)])
def test_select_pseudo_labels_rejects_bad_input(probs, threshold):
    with pytest.raises(ValueError):
        select_pseudo_labels(probs, threshold)


def stripes(n=300, seed=0):
    """Two long vertical clusters at x = -2 and x = +2 (a vertical boundary separates them)."""
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1], n // 2)
    x = np.stack([np.where(y == 0, -2.0, 2.0) + 0.5 * rng.normal(size=n), 3.0 * rng.normal(size=n)], axis=1)
    return x.astype(np.float32), y


# Two labels per class at opposite ends of the clusters: the labeled-only boundary is tilted.
STRIPE_LABELED = np.array([[-2.0, 4.0], [-1.5, 3.0], [2.0, -4.0], [1.5, -3.0]], np.float32), np.array([0, 0, 1, 1])


def test_self_training_fixes_a_tilted_boundary_and_never_reads_unlabeled_labels():
    x, y = stripes(seed=0)
    x_test, y_test = stripes(seed=100)
    x_l, y_l = STRIPE_LABELED
    make = lambda: semi_supervised.logistic_regression(C=10.0)  # noqa: E731
    baseline = np.mean(make().fit(x_l, y_l).predict(x_test) == y_test)
    result = self_training(make, x_l, y_l, x, threshold=0.9, n_rounds=5, y_unlabeled=y)
    assert result.history[0]["n_pseudo"] == 0
    assert all(h["n_pseudo"] > 0 for h in result.history[1:])
    assert baseline < 0.9 and np.mean(result.predict(x_test) == y_test) > 0.98
    # confirmation bias: taking every prediction at once just re-learns the tilted boundary
    everything = self_training(make, x_l, y_l, x, threshold=0.0, n_rounds=5)
    assert np.mean(everything.predict(x_test) == y_test) < 0.95
    # The labels of the pool are diagnostics only: scrambling them changes nothing but the diagnostic.
    scrambled = self_training(make, x_l, y_l, x, threshold=0.9, n_rounds=5,
                              y_unlabeled=np.random.default_rng(0).permutation(y))
    assert np.array_equal(scrambled.predict(x_test), result.predict(x_test))
    assert np.array_equal(scrambled.pseudo_indices, result.pseudo_indices)
    assert result.history[-1]["pseudo_accuracy"] > 0.95 > scrambled.history[-1]["pseudo_accuracy"]


def test_self_training_threshold_zero_takes_the_whole_pool_and_stops_at_a_fixed_point():
    x, y = blobs(seed=1)
    labeled = np.concatenate([np.flatnonzero(y == c)[:3] for c in range(3)])
    result = self_training(semi_supervised.logistic_regression, x[labeled], y[labeled], x, threshold=0.0,
                           n_rounds=10)
    assert result.history[1]["n_pseudo"] == len(x)
    assert len(result.history) < 11  # the selection stopped changing before the round limit
    assert math.isnan(result.history[1]["pseudo_accuracy"])  # no labels given for diagnostics


def test_self_training_uses_the_given_selection_function():
    x, y = blobs(seed=2)
    labeled = np.concatenate([np.flatnonzero(y == c)[:3] for c in range(3)])
    calls = []

    def select_nothing(probabilities, threshold):
        calls.append((probabilities.shape, threshold))
        return np.zeros(0, np.int64), np.zeros(0, np.int64)

    result = self_training(semi_supervised.logistic_regression, x[labeled], y[labeled], x, threshold=0.42,
                           n_rounds=3, select=select_nothing)
    assert calls[0] == ((len(x), 3), 0.42)
    assert len(result.pseudo_indices) == 0


# --- label spreading ----------------------------------------------------------------------------

def test_label_spreading_beats_the_labeled_points_alone():
    x, y = blobs(n_per_class=150, spread=1.0, seed=5)
    x, y, x_test, y_test = x[:300], y[:300], x[300:], y[300:]
    labeled = np.concatenate([np.flatnonzero(y == c)[:1] for c in range(3)])
    predictions = label_spreading_predict(x[labeled], y[labeled], x, x_test, n_neighbors=7)
    assert predictions.dtype == np.int64 and predictions.shape == y_test.shape
    assert np.mean(predictions == y_test) > 0.9


def test_label_spreading_without_label_mass_falls_back_to_the_majority_class():
    # two far-apart groups; only the first has labels, so the second component never receives label mass
    rng = np.random.default_rng(0)
    near = rng.normal(size=(20, 2)).astype(np.float32)
    far = (rng.normal(size=(20, 2)) + 1000).astype(np.float32)
    y_labeled = np.array([1, 1, 2])
    predictions = label_spreading_predict(near[:3], y_labeled, np.concatenate([near, far]), far[:5], n_neighbors=3)
    assert predictions.tolist() == [1] * 5


# --- FixMatch loss ------------------------------------------------------------------------------

def loss_values(out):
    return {k: float(ops.convert_to_numpy(v)) for k, v in out.items()}


def test_fixmatch_loss_hand_computed():
    y = np.array([1, 0])
    p_l = np.array([[0.25, 0.75], [0.5, 0.5]], np.float32)
    p_w = np.array([[0.99, 0.01], [0.3, 0.7], [0.04, 0.96], [0.5, 0.5]], np.float32)
    p_s = np.array([[0.5, 0.5], [0.9, 0.1], [0.2, 0.8], [0.6, 0.4]], np.float32)
    out = loss_values(fixmatch_loss(y, p_l, p_w, p_s, threshold=0.95, lambda_u=3.0))
    sup = (-math.log(0.75) - math.log(0.5)) / 2
    unl = (-math.log(0.5) - math.log(0.8)) / 4  # images 0 and 2 are confident; mean over all 4
    assert out["supervised_loss"] == pytest.approx(sup, abs=1e-5)
    assert out["unlabeled_loss"] == pytest.approx(unl, abs=1e-5)
    assert out["mask_rate"] == pytest.approx(0.5)
    assert out["loss"] == pytest.approx(sup + 3.0 * unl, abs=1e-5)
    none = loss_values(fixmatch_loss(y, p_l, p_w, p_s, threshold=1.0))
    assert none["unlabeled_loss"] == 0.0 and none["mask_rate"] == 0.0


# --- FixMatch model -----------------------------------------------------------------------------

def small_classifier():
    return keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(16, activation="relu"),
                             keras.layers.Dense(2, activation="softmax")])


def test_fixmatch_batches_shapes_and_sampling():
    x, y = tiny_images(30)
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


def test_fixmatch_call_training_structure_and_inference():
    model = FixMatch(small_classifier(), threshold=0.9, seed=0)
    x, _ = tiny_images(6)
    out = model((x[:2], np.stack([x[2:5], x[3:6]])), training=True)
    assert {k: tuple(v.shape) for k, v in out.items()} == {"labeled": (2, 2), "weak": (6, 2), "strong": (6, 2)}
    probs = ops.convert_to_numpy(model(x))
    assert probs.shape == (6, 2) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)


def test_fixmatch_learns_and_save_load_round_trip(tmp_path):
    x, y = tiny_images(200, seed=1)
    labeled = np.concatenate([np.flatnonzero(y == c)[:2] for c in range(2)])
    keras.utils.set_random_seed(0)
    model = FixMatch(small_classifier(), threshold=0.8, lambda_u=1.0, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    (x_l, x_u), y_l = fixmatch_batches(x[labeled], y[labeled], x, mu=4, steps=60, batch_size=8, seed=0)
    history = model.fit((x_l, x_u), y_l, batch_size=8, epochs=2, shuffle=False, verbose=0)
    assert set(history.history) == {"loss", "supervised_loss", "unlabeled_loss", "mask_rate"}
    assert history.history["mask_rate"][-1] > 0.5
    x_test, y_test = tiny_images(100, seed=2)
    predictions = model.predict(x_test, verbose=0)
    assert np.mean(predictions.argmax(axis=1) == y_test) > 0.9
    path = tmp_path / "fixmatch.keras"
    model.save(path)
    restored = keras.models.load_model(path)
    assert isinstance(restored, FixMatch)
    assert (restored.threshold, restored.lambda_u) == (0.8, 1.0)
    np.testing.assert_allclose(restored.predict(x_test, verbose=0), predictions, atol=1e-6)


def test_fixmatch_rejects_bad_hyper_parameters_and_image_only_training():
    with pytest.raises(ValueError):
        FixMatch(small_classifier(), threshold=1.5)
    with pytest.raises(ValueError):
        FixMatch(small_classifier(), lambda_u=-1.0)
    model = FixMatch(small_classifier())
    with pytest.raises(ValueError, match="x_labeled, x_unlabeled"):
        model.compute_loss(y=np.zeros(2), y_pred=np.zeros((2, 2)))


def test_fixmatch_trainer_resets_between_draws(tmp_path):
    x, y = tiny_images(120, seed=3)
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


# --- leaderboard --------------------------------------------------------------------------------

def test_keras_fit_predict_resets_and_learns():
    x, y = tiny_images(80, seed=4)
    labeled = np.concatenate([np.flatnonzero(y == c)[:3] for c in range(2)])
    fit_predict = leaderboard.KerasFitPredict(small_classifier, epochs=2, batch_size=16, rows_per_epoch=64,
                                              learning_rate=1e-2, seed=0)
    predictions = fit_predict(x[labeled], y[labeled], x)
    assert predictions.shape == (80,) and np.mean(predictions == y) > 0.9
    assert int(fit_predict.model.optimizer.iterations.numpy()) == 8
    fit_predict(x[labeled], y[labeled], x)
    assert int(fit_predict.model.optimizer.iterations.numpy()) == 8 and fit_predict.draws == 2


def make_result(method, accs):
    return LabelEfficiencyResult(method, [1, 10], accs)


def test_leaderboard_table_and_metrics():
    a = make_result("alpha", [[0.5, 0.7], [0.9, 0.9]])
    b = make_result("beta", [[0.8], [0.85]])
    text = leaderboard.leaderboard_table([a, b], sort_by=10)
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["method", "1", "labels/class"]
    assert lines[2].startswith("alpha") and "0.600 ± 0.100 (2)" in lines[2]
    assert lines[3].startswith("beta") and "0.850 ± 0.000 (1)" in lines[3]
    assert leaderboard.leaderboard_table([b, a], sort_by=1).splitlines()[2].startswith("beta")
    markdown = leaderboard.leaderboard_table([a], markdown=True).splitlines()
    assert markdown[0].startswith("| method |") and markdown[1] == "|---|---:|---:|"
    metrics = leaderboard.leaderboard_metrics({"a": a, "b": b})
    assert metrics == {"a_1": 0.6, "a_1_std": 0.1, "a_10": 0.9, "a_10_std": 0.0, "a_draws": 2,
                       "b_1": 0.8, "b_1_std": 0.0, "b_10": 0.85, "b_10_std": 0.0, "b_draws": 1}
    with pytest.raises(ValueError):
        leaderboard.leaderboard_table([a], budgets=[5])


# --- self-checks --------------------------------------------------------------------------------

def test_checks_pass_the_reference_and_fail_typical_mistakes():
    assert checks.check_select_pseudo_labels(select_pseudo_labels).passed

    def strict(probabilities, threshold):  # '>' instead of '>='
        confidence = np.asarray(probabilities).max(axis=1)
        idx = np.flatnonzero(confidence > threshold)
        return idx, np.asarray(probabilities)[idx].argmax(axis=1)

    assert checks.check_select_pseudo_labels(strict).status == "fail"
    assert checks.check_fixmatch_loss(fixmatch_loss).passed

    def mean_over_confident(y, p_l, p_w, p_s, threshold=0.95, lambda_u=1.0):
        out = fixmatch_loss(y, p_l, p_w, p_s, threshold, lambda_u)
        mask_rate = ops.maximum(out["mask_rate"], 1e-8)
        unl = out["unlabeled_loss"] / mask_rate
        return {**out, "unlabeled_loss": unl, "loss": out["supervised_loss"] + lambda_u * unl}

    result = checks.check_fixmatch_loss(mean_over_confident)
    assert result.status == "fail" and "mu*B" in result.message

    def todo(*args, **kwargs):
        raise NotImplementedError()

    assert checks.check_fixmatch_loss(todo).status == "todo"
