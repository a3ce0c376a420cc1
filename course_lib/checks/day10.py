"""Self-checks for Day 10 (semi-supervised learning): the pseudo-label selection step, the FixMatch loss and the
confidence-threshold trade-off."""

from __future__ import annotations

import math

import numpy as np

from course_lib.backends import to_numpy
from course_lib.checks import (Hints, ReferenceSpy, as_tensors, assert_all_passed, expect,  # noqa: F401 (re-exported)
                               hint, register_hints, run_check, summary, use_or_reference)


HINTS = register_hints({
    "day10.select_pseudo_labels": Hints(
        todo="Return the rows of the unlabeled pool whose predicted class is probable enough to serve as a label, "
             "and that class, as described above the exercise cell.",
        tiers=("A row's confidence is its largest class probability, and its pseudo-label is the class that "
               "reaches it. Keep a row when the confidence is at least the threshold.",
               "NumPy has a reduction for the largest value along an axis and one for its position; a boolean "
               "comparison followed by the function that lists the positions of the true entries gives the "
               "indices, already in increasing order.",
               "The comparison is 'at least' (greater or equal): a row exactly at the threshold is kept, and a "
               "threshold of 0 keeps every row. Return integer arrays, empty ones when nothing passes.")),
    "day10.fixmatch_loss": Hints(
        todo="Write the FixMatch objective with keras.ops: the supervised cross-entropy, the confidence-masked "
             "cross-entropy between the weak view's pseudo-label and the strong view, and the mask rate.",
        tiers=("The weak view produces a target (a constant: no gradient flows into it); the strong view is "
               "trained to predict that target, but only where the weak prediction is confident. The total is "
               "the supervised term plus lambda_u times the unlabeled term.",
               "Per-example cross-entropy of integer labels against probabilities is "
               "keras.ops.sparse_categorical_crossentropy; keras.ops.stop_gradient, keras.ops.max, "
               "keras.ops.argmax and keras.ops.cast turn the weak probabilities into a 0/1 mask and hard labels.",
               "The unlabeled term is averaged over all mu*B unlabeled images, confident or not (the masked "
               "terms count as zeros), not over the confident ones only; the mask rate is the mean of the mask.")),
    "day10.threshold_tradeoff": Hints(
        todo="For each threshold, compute the share of rows whose largest probability reaches it and the accuracy "
             "of those rows' most probable classes against the hidden labels; return them in a dict.",
        tiers=("A threshold splits the rows into confident ones and the rest; the mask rate is the size of the "
               "first group over the number of rows, and the accuracy is measured on that group only.",
               "The largest probability and its class come from the max and argmax reductions along the class "
               "axis; a boolean comparison with the threshold selects the rows, and the mean of a boolean array "
               "is a share.",
               "When no row passes a threshold the accuracy is undefined: return NaN there instead of raising "
               "(the mean of an empty array warns). Keep 'at least' as the comparison, as in Exercise 10.1.")),
})


def _as_int_array(name, value):
    array = to_numpy(value)
    expect(array.ndim == 1, f"{name} should be a 1-D array, got shape {array.shape}")
    expect(array.size == 0 or np.issubdtype(array.dtype, np.integer), f"{name} should hold integers, got {array.dtype}")
    return array.astype(np.int64)


def check_select_pseudo_labels(select_pseudo_labels):
    """Check ``select_pseudo_labels(probabilities, threshold) -> (indices, labels)`` (Exercise 10.1)."""
    from course_lib.models.self_training import select_pseudo_labels as reference

    spy = ReferenceSpy(reference)
    select_pseudo_labels = spy.wrap(select_pseudo_labels)

    def test():
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
        expect(to_numpy(all_idx).tolist() == [0, 1, 2, 3] and to_numpy(all_labels).tolist() == [0, 0, 2, 1],
               "threshold 0 keeps every row with its argmax class")
        none_idx, none_labels = select_pseudo_labels(probs, 0.95)
        expect(len(to_numpy(none_idx)) == 0 and len(to_numpy(none_labels)) == 0,
               "no row reaches 0.95: expected two empty arrays")
        rng = np.random.default_rng(0)
        for trial in range(5):
            logits = rng.normal(scale=3.0, size=(200, 10))
            random_probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
            threshold = [0.5, 0.8, 0.9, 0.95, 0.3][trial]
            got_idx, got_labels = select_pseudo_labels(random_probs, threshold)
            want_idx, want_labels = reference(random_probs, threshold)
            expect(np.array_equal(np.sort(to_numpy(got_idx)), want_idx),
                   f"on random probabilities with threshold {threshold}: selected {len(to_numpy(got_idx))} rows, "
                   f"expected {len(want_idx)}")
            order = np.argsort(to_numpy(got_idx))
            expect(np.array_equal(to_numpy(got_labels)[order], want_labels),
                   f"on random probabilities with threshold {threshold}: wrong pseudo-labels")
        return "keeps exactly the rows with max probability >= threshold, labels = argmax, matches the reference"

    return run_check("day10.select_pseudo_labels", "Exercise 10.1 - pseudo-label selection", test, spy=spy)


def _numpy(value) -> float:
    from keras import ops

    return float(ops.convert_to_numpy(value))


def check_fixmatch_loss(fixmatch_loss):
    """Check ``fixmatch_loss(y_labeled, probs_labeled, probs_weak, probs_strong, threshold, lambda_u) -> dict``
    (Exercise 10.2) on hand-computed values and against course_lib's implementation."""
    from course_lib.losses import fixmatch_loss as reference

    spy = ReferenceSpy(reference)
    fixmatch_loss = spy.wrap(fixmatch_loss)

    def test():
        y = np.array([0])
        p_l = np.array([[0.8, 0.2]], dtype="float32")
        p_w = np.array([[0.97, 0.03], [0.6, 0.4]], dtype="float32")
        p_s = np.array([[0.5, 0.5], [0.1, 0.9]], dtype="float32")
        out = fixmatch_loss(*as_tensors(y, p_l, p_w, p_s), 0.95, 1.0)
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
        out2 = fixmatch_loss(*as_tensors(y, p_l, p_w, p_s), 0.5, 2.0)
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
            got, want = fixmatch_loss(*as_tensors(*args), 0.9, 1.5), reference(*args, 0.9, 1.5)
            for key in ("loss", "supervised_loss", "unlabeled_loss", "mask_rate"):
                expect(math.isclose(_numpy(got[key]), _numpy(want[key]), rel_tol=1e-3, abs_tol=1e-4),
                       f"on random inputs {key} = {_numpy(got[key]):.4f}, the reference gives {_numpy(want[key]):.4f}")
        return "hand-computed values, lambda_u and threshold behave, matches the reference"

    return run_check("day10.fixmatch_loss", "Exercise 10.2 - the FixMatch loss", test, spy=spy)


def check_threshold_tradeoff(threshold_tradeoff):
    """Check ``threshold_tradeoff(probabilities, y_true, thresholds) -> {tau: {"mask_rate", "accuracy"}}``
    (Exercise 10.3) on hand-made and random inputs, against course_lib's diagnostic."""
    from course_lib.models.self_training import pseudo_label_quality as reference

    spy = ReferenceSpy(reference)
    threshold_tradeoff = spy.wrap(threshold_tradeoff)

    def test():
        probs = np.array([[0.96, 0.04], [0.30, 0.70], [0.55, 0.45], [0.10, 0.90]])
        y = np.array([0, 0, 0, 1])
        out = threshold_tradeoff(probs, y, (0.5, 0.9, 0.99))
        expect(isinstance(out, dict) and set(out) == {0.5, 0.9, 0.99},
               "return a dict with one entry per threshold (the thresholds themselves as keys)")
        for tau, (rate, acc) in {0.5: (1.0, 0.75), 0.9: (0.5, 1.0)}.items():
            expect(set(out[tau]) >= {"mask_rate", "accuracy"}, "each entry is a dict with 'mask_rate' and 'accuracy'")
            expect(math.isclose(float(out[tau]["mask_rate"]), rate, abs_tol=1e-9),
                   f"threshold {tau}: {rate:.2f} of the rows reach it, got mask_rate {out[tau]['mask_rate']}")
            expect(math.isclose(float(out[tau]["accuracy"]), acc, abs_tol=1e-9),
                   f"threshold {tau}: the kept rows' pseudo-labels are right {acc:.2f} of the time, got "
                   f"{out[tau]['accuracy']}")
        expect(float(out[0.99]["mask_rate"]) == 0.0 and math.isnan(float(out[0.99]["accuracy"])),
               "no row reaches 0.99: mask_rate 0 and accuracy NaN expected")
        rng = np.random.default_rng(3)
        logits = rng.normal(scale=3.0, size=(500, 10))
        random_probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        labels = np.where(rng.random(500) < 0.7, random_probs.argmax(axis=1), rng.integers(0, 10, 500))
        thresholds = (0.0, 0.5, 0.8, 0.95)
        got, want = threshold_tradeoff(random_probs, labels, thresholds), reference(random_probs, labels, thresholds)
        for tau in thresholds:
            for key in ("mask_rate", "accuracy"):
                expect(math.isclose(float(got[tau][key]), want[tau][key], abs_tol=1e-6),
                       f"on random probabilities, threshold {tau}: {key} {float(got[tau][key]):.4f}, expected "
                       f"{want[tau][key]:.4f}")
        return "mask rate and pseudo-label accuracy per threshold, NaN when nothing passes, matches the reference"

    return run_check("day10.threshold_tradeoff", "Exercise 10.3 - the threshold trade-off", test, spy=spy)
