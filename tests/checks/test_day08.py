"""Day 08 self-checks: each passes a correct answer, fails known mistakes, says todo and spots the reference."""

import numpy as np
from keras import ops

from course_lib import losses
from course_lib.checks import day08 as checks
from course_lib.models import contrastive


def _todo(*args, **kwargs):
    raise NotImplementedError()


def test_momentum_update_check():
    def own(target_weights, online_weights, momentum):
        for t, o in zip(target_weights, online_weights):
            t.assign(momentum * t + (1.0 - momentum) * ops.convert_to_tensor(o, t.dtype))

    def swapped(target_weights, online_weights, momentum):  # momentum on the online weights
        for t, o in zip(target_weights, online_weights):
            t.assign((1.0 - momentum) * t + momentum * ops.convert_to_tensor(o, t.dtype))

    def not_in_place(target_weights, online_weights, momentum):
        return [momentum * t + (1 - momentum) * o for t, o in zip(target_weights, online_weights)]

    assert checks.check_momentum_update(own).passed
    assert checks.check_momentum_update(swapped).status == "fail"
    assert checks.check_momentum_update(not_in_place).status == "fail"
    assert checks.check_momentum_update(_todo).status == "todo"
    assert checks.check_momentum_update(contrastive.momentum_update).status == "reference"


def _unit(v):
    return v / ops.maximum(ops.norm(v, axis=1, keepdims=True), 1e-12)


def _constant(z):
    return ops.stop_gradient(z)  # the check passes tensors, as training does (PyTorch cannot detach an ndarray)


def test_byol_loss_check():
    def own(p1, p2, z1, z2):
        d = lambda p, z: ops.mean(ops.sum(ops.square(_unit(p) - _unit(_constant(z))), axis=1))
        return 0.5 * (d(p1, z2) + d(p2, z1))

    def no_stop_gradient(p1, p2, z1, z2):
        d = lambda p, z: ops.mean(ops.sum(ops.square(_unit(p) - _unit(z)), axis=1))
        return 0.5 * (d(p1, z2) + d(p2, z1))

    def same_view(p1, p2, z1, z2):
        d = lambda p, z: ops.mean(ops.sum(ops.square(_unit(p) - _unit(_constant(z))), axis=1))
        return 0.5 * (d(p1, z1) + d(p2, z2))

    assert checks.check_byol_loss(own).passed
    result = checks.check_byol_loss(no_stop_gradient)
    assert result.status == "fail" and "stop_gradient" in result.message
    assert checks.check_byol_loss(same_view).status == "fail"
    assert checks.check_byol_loss(_todo).status == "todo"
    assert checks.check_byol_loss(lambda *a: 2 + 2 * losses.symmetric_stop_gradient_loss(*a)).status == "reference"


def test_initial_weight_share_check():
    def own(momentum, total_steps, cosine=False):
        k = np.arange(total_steps)
        taus = (1 - (1 - momentum) * (np.cos(np.pi * k / max(total_steps, 1)) + 1) / 2) if cosine else \
            np.full(total_steps, momentum)
        return float(np.prod(taus))

    def off_by_one(momentum, total_steps, cosine=False):  # schedule from step 1 to K
        k = np.arange(1, total_steps + 1)
        taus = (1 - (1 - momentum) * (np.cos(np.pi * k / max(total_steps, 1)) + 1) / 2) if cosine else \
            np.full(total_steps, momentum)
        return float(np.prod(taus))

    assert checks.check_initial_weight_share(own).passed
    assert checks.check_initial_weight_share(off_by_one).status == "fail"
    assert checks.check_initial_weight_share(_todo).status == "todo"
    assert checks.check_initial_weight_share(checks.reference_initial_weight_share).status == "reference"


def test_gradients_helper_sees_the_stop_gradient():
    g = checks.gradients(lambda a, b: ops.sum(a * ops.stop_gradient(b)), [np.ones(3), np.full(3, 2.0)])
    assert np.allclose(g[0], 2.0) and (g[1] is None or np.allclose(g[1], 0.0))
