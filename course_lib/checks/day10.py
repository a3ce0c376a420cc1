"""Self-checks for Day 10 (semi-supervised learning): the pseudo-label selection step and the FixMatch loss."""

from __future__ import annotations

import math

import numpy as np

from course_lib.checks import Hints, assert_all_passed, expect, hint, register_hints, run_check, summary, use_or_reference  # noqa: F401 (re-exported for the notebook)


HINTS = register_hints({
    "day10.select_pseudo_labels": Hints(
        todo="Implement the pseudo-label selection described above the exercise cell.",
        tiers=("confidence = probabilities.max(axis=1); indices = np.flatnonzero(confidence >= threshold); "
                          "labels = probabilities[indices].argmax(axis=1)",
               "Compare each intermediate result with the equation of the exercise, one step at a time.")),
    "day10.fixmatch_loss": Hints(
        todo="Implement the the FixMatch loss described above the exercise cell.",
        tiers=("sup = mean(sparse_categorical_crossentropy(y, probs_labeled)); "
                          "q = stop_gradient(probs_weak); "
                          "mask = cast(max(q, -1) >= threshold); unl = mean(mask * sparse_categorical_crossentropy("
                          "argmax(q, -1), probs_strong)) -- a mean over ALL unlabeled images",
               "Compare each intermediate result with the equation of the exercise, one step at a time.")),
})


def _as_int_array(name, value):
    array = np.asarray(value)
    expect(array.ndim == 1, f"{name} should be a 1-D array, got shape {array.shape}")
    expect(array.size == 0 or np.issubdtype(array.dtype, np.integer), f"{name} should hold integers, got {array.dtype}")
    return array.astype(np.int64)


def check_select_pseudo_labels(select_pseudo_labels):
    """Check ``select_pseudo_labels(probabilities, threshold) -> (indices, labels)`` (Exercise 10.1)."""
    def test():
        from course_lib.models.self_training import select_pseudo_labels as reference

        probs = np.array([[0.90, 0.05, 0.05],
                          [0.40, 0.35, 0.25],
                          [0.10, 0.15, 0.75],
                          [0.20, 0.70, 0.10]])
        before = probs.copy()
        indices, labels = select_pseudo_labels(probs, 0.7)
        indices, labels = _as_int_array("indices", indices), _as_int_array("labels", labels)
        expect(np.array_equal(probs, before), "the probabilities must not be modified")
        expect(len(indices) == len(labels), f"indices and labels must have the same length, got {len(indices)} "
                                            f"and {len(labels)}")
        expect(indices.tolist() == [0, 2, 3], f"with threshold 0.7 rows 0, 2 and 3 are confident enough "
                                              f"(row 3's confidence 0.7 counts: >=), got indices {indices.tolist()}")
        expect(labels.tolist() == [0, 2, 1], f"pseudo-labels are the most probable class of each kept row: "
                                             f"expected [0, 2, 1], got {labels.tolist()}")
        all_idx, all_labels = select_pseudo_labels(probs, 0.0)
        expect(np.asarray(all_idx).tolist() == [0, 1, 2, 3] and np.asarray(all_labels).tolist() == [0, 0, 2, 1],
               "threshold 0 keeps every row with its argmax class")
        none_idx, none_labels = select_pseudo_labels(probs, 0.95)
        expect(len(np.asarray(none_idx)) == 0 and len(np.asarray(none_labels)) == 0,
               "no row reaches 0.95: expected two empty arrays")
        rng = np.random.default_rng(0)
        for trial in range(5):
            logits = rng.normal(scale=3.0, size=(200, 10))
            random_probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
            threshold = [0.5, 0.8, 0.9, 0.95, 0.3][trial]
            got_idx, got_labels = select_pseudo_labels(random_probs, threshold)
            want_idx, want_labels = reference(random_probs, threshold)
            expect(np.array_equal(np.sort(np.asarray(got_idx)), want_idx),
                   f"on random probabilities with threshold {threshold}: selected {len(np.asarray(got_idx))} rows, "
                   f"expected {len(want_idx)}")
            order = np.argsort(np.asarray(got_idx))
            expect(np.array_equal(np.asarray(got_labels)[order], want_labels),
                   f"on random probabilities with threshold {threshold}: wrong pseudo-labels")
        return "keeps exactly the rows with max probability >= threshold, labels = argmax, matches the reference"

    return run_check("day10.select_pseudo_labels", "Exercise 10.1 - pseudo-label selection", test)


def _numpy(value) -> float:
    from keras import ops

    return float(np.asarray(ops.convert_to_numpy(value)))


def check_fixmatch_loss(fixmatch_loss):
    """Check ``fixmatch_loss(y_labeled, probs_labeled, probs_weak, probs_strong, threshold, lambda_u) -> dict``
    (Exercise 10.2) on hand-computed values and against course_lib's implementation."""
    def test():
        from course_lib.losses import fixmatch_loss as reference

        y = np.array([0])
        p_l = np.array([[0.8, 0.2]], dtype="float32")
        p_w = np.array([[0.97, 0.03], [0.6, 0.4]], dtype="float32")
        p_s = np.array([[0.5, 0.5], [0.1, 0.9]], dtype="float32")
        out = fixmatch_loss(y, p_l, p_w, p_s, 0.95, 1.0)
        expect(isinstance(out, dict) and {"loss", "supervised_loss", "unlabeled_loss", "mask_rate"} <= set(out),
               "return a dict with keys 'loss', 'supervised_loss', 'unlabeled_loss', 'mask_rate'")
        sup, unsup, total, mask = (_numpy(out[k]) for k in ("supervised_loss", "unlabeled_loss", "loss", "mask_rate"))
        expect(math.isclose(sup, -math.log(0.8), abs_tol=1e-4),
               f"supervised loss: -ln 0.8 = {-math.log(0.8):.4f} expected, got {sup:.4f}")
        expect(math.isclose(mask, 0.5, abs_tol=1e-6), f"one of two unlabeled images is confident (0.97 >= 0.95): "
                                                     f"mask_rate 0.5 expected, got {mask:.4f}")
        if math.isclose(unsup, math.log(2.0), abs_tol=1e-4):
            raise AssertionError("unlabeled loss is ln 2: you divided by the number of confident images; FixMatch "
                                 "divides by all mu*B unlabeled images (expected ln(2)/2 = 0.3466)")
        expect(math.isclose(unsup, math.log(2.0) / 2, abs_tol=1e-4),
               f"unlabeled loss: only the confident image counts, its pseudo-label 0 gets probability 0.5 on the "
               f"strong view, averaged over 2 images: ln(2)/2 = 0.3466 expected, got {unsup:.4f}")
        expect(math.isclose(total, sup + unsup, abs_tol=1e-4), f"total with lambda_u = 1 should be "
                                                                 f"{sup + unsup:.4f}, got {total:.4f}")
        out2 = fixmatch_loss(y, p_l, p_w, p_s, 0.5, 2.0)
        expected_unsup = (math.log(2.0) - math.log(0.1)) / 2
        expect(math.isclose(_numpy(out2["unlabeled_loss"]), expected_unsup, abs_tol=1e-4),
               f"threshold 0.5 keeps both images (pseudo-labels 0 and 0): ({-math.log(0.5):.4f} + {-math.log(0.1):.4f})"
               f" / 2 = {expected_unsup:.4f} expected, got {_numpy(out2['unlabeled_loss']):.4f}")
        expect(math.isclose(_numpy(out2["loss"]), sup + 2.0 * expected_unsup, abs_tol=1e-3),
               "the total is supervised + lambda_u * unlabeled")
        rng = np.random.default_rng(1)
        for _ in range(3):
            def probs(n):
                logits = rng.normal(scale=3.0, size=(n, 10))
                return (np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)).astype("float32")
            args = (rng.integers(0, 10, 8), probs(8), probs(56), probs(56))
            got, want = fixmatch_loss(*args, 0.9, 1.5), reference(*args, 0.9, 1.5)
            for key in ("loss", "supervised_loss", "unlabeled_loss", "mask_rate"):
                expect(math.isclose(_numpy(got[key]), _numpy(want[key]), rel_tol=1e-3, abs_tol=1e-4),
                       f"on random inputs {key} = {_numpy(got[key]):.4f}, the reference gives {_numpy(want[key]):.4f}")
        return "hand-computed values, lambda_u and threshold behave, matches the reference"

    return run_check("day10.fixmatch_loss", "Exercise 10.2 - the FixMatch loss", test)
