"""Unit tests for course_lib.checks.day10: the self-checks pass the reference and fail typical mistakes."""

import numpy as np
from keras import ops

from course_lib.checks import day10 as checks
from course_lib.losses import fixmatch_loss
from course_lib.models.self_training import pseudo_label_quality, select_pseudo_labels


# --- self-checks --------------------------------------------------------------------------------

def solution_select(probabilities, threshold):
    """The notebook's answer to Exercise 10.1, written out (the library's own function counts as 'reference')."""
    probabilities = np.asarray(probabilities)
    idx = np.flatnonzero(probabilities.max(axis=1) >= threshold)
    return idx, probabilities[idx].argmax(axis=1)


def solution_fixmatch_loss(y, p_l, p_w, p_s, threshold=0.95, lambda_u=1.0):
    """The notebook's answer to Exercise 10.2, written out."""
    supervised = ops.mean(ops.sparse_categorical_crossentropy(y, p_l))
    q = ops.stop_gradient(p_w)   # the check passes tensors, as training does (PyTorch cannot detach an ndarray)
    mask = ops.cast(ops.max(q, axis=-1) >= threshold, "float32")
    unlabeled = ops.mean(mask * ops.sparse_categorical_crossentropy(ops.argmax(q, axis=-1), p_s))
    return {"loss": supervised + lambda_u * unlabeled, "supervised_loss": supervised, "unlabeled_loss": unlabeled,
            "mask_rate": ops.mean(mask)}


def test_checks_pass_the_reference_and_fail_typical_mistakes():
    assert checks.check_select_pseudo_labels(solution_select).passed

    def strict(probabilities, threshold):  # '>' instead of '>='
        confidence = np.asarray(probabilities).max(axis=1)
        idx = np.flatnonzero(confidence > threshold)
        return idx, np.asarray(probabilities)[idx].argmax(axis=1)

    assert checks.check_select_pseudo_labels(strict).status == "fail"
    assert checks.check_fixmatch_loss(solution_fixmatch_loss).passed

    def mean_over_confident(y, p_l, p_w, p_s, threshold=0.95, lambda_u=1.0):
        out = solution_fixmatch_loss(y, p_l, p_w, p_s, threshold, lambda_u)
        mask_rate = ops.maximum(out["mask_rate"], 1e-8)
        unl = out["unlabeled_loss"] / mask_rate
        return {**out, "unlabeled_loss": unl, "loss": out["supervised_loss"] + lambda_u * unl}

    result = checks.check_fixmatch_loss(mean_over_confident)
    assert result.status == "fail" and "mu*B" in result.message

    def todo(*args, **kwargs):
        raise NotImplementedError()

    assert checks.check_fixmatch_loss(todo).status == "todo"


def test_select_check_says_todo_and_catches_a_wrong_label_and_the_reference():
    def todo(probabilities, threshold):
        raise NotImplementedError

    assert checks.check_select_pseudo_labels(todo).status == "todo"

    def wrong_labels(probabilities, threshold):  # the confidence instead of the class
        probabilities = np.asarray(probabilities)
        idx = np.flatnonzero(probabilities.max(axis=1) >= threshold)
        return idx, np.zeros(len(idx), np.int64)

    assert checks.check_select_pseudo_labels(wrong_labels).status == "fail"

    def calls_the_library(probabilities, threshold):
        return select_pseudo_labels(probabilities, threshold)

    result = checks.check_select_pseudo_labels(calls_the_library)
    assert result.status == "reference" and "select_pseudo_labels" in result.message


def test_fixmatch_check_catches_a_missing_threshold_and_the_reference():
    def no_threshold(y, p_l, p_w, p_s, threshold=0.95, lambda_u=1.0):
        return solution_fixmatch_loss(y, p_l, p_w, p_s, 0.0, lambda_u)

    assert checks.check_fixmatch_loss(no_threshold).status == "fail"

    def calls_the_library(y, p_l, p_w, p_s, threshold=0.95, lambda_u=1.0):
        return fixmatch_loss(y, p_l, p_w, p_s, threshold, lambda_u)

    result = checks.check_fixmatch_loss(calls_the_library)
    assert result.status == "reference" and "fixmatch_loss" in result.message


def test_hints_come_in_tiers_and_reveal_one_at_a_time(capsys):
    from course_lib.checks import hint

    for check_id in ("day10.select_pseudo_labels", "day10.fixmatch_loss"):
        assert 2 <= len(checks.HINTS[check_id].tiers) <= 3
        first = hint(check_id)
        second = hint(check_id)
        assert "hint 1 of" in first and "hint 2 of" in second


def solution_tradeoff(probabilities, y_true, thresholds):
    """The notebook's answer to Exercise 10.3, written out."""
    probabilities, y_true = np.asarray(probabilities), np.asarray(y_true)
    confidence, predicted = probabilities.max(axis=1), probabilities.argmax(axis=1)
    out = {}
    for tau in thresholds:
        kept = confidence >= tau
        out[tau] = {"mask_rate": kept.mean(),
                    "accuracy": np.mean(predicted[kept] == y_true[kept]) if kept.any() else float("nan")}
    return out


def test_threshold_tradeoff_check_pass_fail_todo_reference():
    assert checks.check_threshold_tradeoff(solution_tradeoff).passed

    def over_all_rows(probabilities, y_true, thresholds):  # accuracy over every row, not the kept ones
        out = solution_tradeoff(probabilities, y_true, thresholds)
        overall = float(np.mean(np.asarray(probabilities).argmax(axis=1) == np.asarray(y_true)))
        return {tau: {**row, "accuracy": overall} for tau, row in out.items()}

    assert checks.check_threshold_tradeoff(over_all_rows).status == "fail"

    def todo(probabilities, y_true, thresholds):
        raise NotImplementedError

    assert checks.check_threshold_tradeoff(todo).status == "todo"

    def calls_the_library(probabilities, y_true, thresholds):
        return pseudo_label_quality(probabilities, y_true, thresholds)

    assert checks.check_threshold_tradeoff(calls_the_library).status == "reference"
