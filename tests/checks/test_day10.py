"""Unit tests for course_lib.checks.day10: the self-checks pass the reference and fail typical mistakes."""

import numpy as np
from keras import ops

from course_lib.checks import day10 as checks
from course_lib.losses import fixmatch_loss
from course_lib.models.self_training import select_pseudo_labels


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
