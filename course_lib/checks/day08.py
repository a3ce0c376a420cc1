"""Self-checks for Day 08 (beyond SimCLR): the momentum update, BYOL's loss and the target-momentum study."""

from __future__ import annotations

import math

import numpy as np

from course_lib.checks import (Hints, ReferenceSpy, as_tensors, assert_all_passed, expect, hint,  # noqa: F401
                               register_hints, run_check, summary, use_or_reference)

HINTS = register_hints({
    "day08.momentum_update": Hints(
        todo="Write the in-place exponential moving average of the equation above the exercise cell.",
        tiers=("Each target weight becomes a weighted average of itself and the matching online weight; the "
               "weight of the old target value is the momentum.",
               "Walk through the two lists in parallel and give every target variable its new value with the "
               "variable's assign method (keras.Variable), so that the change happens in place, inside the "
               "compiled training step too.",
               "Usual mistakes: swapping the roles (momentum on the online weights), building a new list "
               "instead of assigning (nothing changes in the model), or changing the online weights.")),
    "day08.byol_loss": Hints(
        todo="Write BYOL's symmetrized loss of the equation above the exercise cell, with keras.ops.",
        tiers=("Each view's online prediction must point in the same direction as the target projection of the "
               "other view; the distance between unit vectors measures that, and the targets are constants.",
               "Normalise every row of the predictions and of the targets to unit length, wrap the targets in "
               "keras.ops.stop_gradient, take the squared Euclidean distance per row, average over the batch, "
               "and average the two pairings (prediction of view 1 with target of view 2, and the reverse).",
               "Usual mistakes: pairing a prediction with the target of its own view, forgetting the "
               "stop-gradient (gradients then flow into the target network), or not normalising, which lets "
               "the network shrink its outputs instead of aligning them.")),
    "day08.target_momentum": Hints(
        todo="Write initial_weight_share: what fraction of the target network is still its random start.",
        tiers=("Every update keeps the fraction tau of the current target and mixes in 1 - tau of the online "
               "network, so whatever the target was made of shrinks by tau at each step.",
               "The share of the initial weights after K updates is the product of the K momenta used. With the "
               "cosine schedule, step k (from 0 to K - 1) uses tau_k = 1 - (1 - base)(cos(pi k / K) + 1) / 2.",
               "Usual mistakes: starting the schedule at step 1 instead of 0, using K + 1 factors, or adding the "
               "momenta instead of multiplying them.")),
})


def _numpy(x):
    from keras import ops

    return np.asarray(ops.convert_to_numpy(x))


def _scalar(x) -> float:
    return float(_numpy(x).squeeze())


def gradients(fn, arrays):
    """Gradients of the scalar ``fn(*arrays)`` with respect to each array, on the current Keras backend.

    Args:
        fn: a function of ``len(arrays)`` backend tensors (TensorFlow variables, JAX arrays or PyTorch tensors
            that require grad) returning a scalar float tensor.
        arrays: array-likes of any shapes, each cast to float32.

    Returns:
        A list of float32 NumPy arrays, one per array and of its shape (None where the backend reports no
        gradient at all: TensorFlow and PyTorch for an input the result does not depend on, or that a
        stop-gradient cuts off; JAX returns zeros instead).

    Raises:
        NotImplementedError: a Keras backend other than TensorFlow, JAX and PyTorch.
    """
    import keras

    backend = keras.backend.backend()
    arrays = [np.asarray(a, dtype="float32") for a in arrays]
    if backend == "tensorflow":
        import tensorflow as tf

        variables = [tf.Variable(a) for a in arrays]
        with tf.GradientTape() as tape:
            loss = fn(*variables)
        return [None if g is None else np.asarray(g) for g in tape.gradient(loss, variables)]
    if backend == "jax":
        import jax

        grads = jax.grad(lambda *a: fn(*a), argnums=tuple(range(len(arrays))))(*[jax.numpy.asarray(a) for a in arrays])
        return [np.asarray(g) for g in grads]
    if backend == "torch":
        import torch

        tensors = [torch.tensor(a, requires_grad=True) for a in arrays]
        fn(*tensors).backward()
        return [None if t.grad is None else t.grad.detach().cpu().numpy() for t in tensors]
    raise NotImplementedError(f"no gradient helper for the {backend} backend")


def check_momentum_update(momentum_update):
    """Check ``momentum_update(target_weights, online_weights, momentum)`` (Exercise 8.1), updating in place."""
    import keras

    from course_lib.models.contrastive import momentum_update as reference

    spy = ReferenceSpy(reference)
    student = spy.wrap(momentum_update)

    def test():
        rng = np.random.default_rng(0)
        start = [rng.normal(size=(3, 2)).astype("float32"), rng.normal(size=(4,)).astype("float32")]
        online_values = [rng.normal(size=(3, 2)).astype("float32"), rng.normal(size=(4,)).astype("float32")]
        target = [keras.Variable(v) for v in start]
        online = [keras.Variable(v) for v in online_values]
        student(target, online, 0.9)
        for t, s, o in zip(target, start, online_values):
            expect(np.allclose(_numpy(t), 0.9 * s + 0.1 * o, atol=1e-6),
                   "after one update with momentum 0.9 the target should be 90% old target and 10% online "
                   "weights, changed in place")
        for o, v in zip(online, online_values):
            expect(np.allclose(_numpy(o), v), "the online weights must not change")
        student(target, online, 0.0)
        expect(all(np.allclose(_numpy(t), v) for t, v in zip(target, online_values)),
               "momentum 0 must copy the online weights")
        before = [_numpy(t).copy() for t in target]
        student(target, [v * 0 + 5 for v in online_values], 1.0)
        expect(all(np.allclose(_numpy(t), b) for t, b in zip(target, before)), "momentum 1 must leave the target frozen")
        from keras import ops

        student(target, online, ops.convert_to_tensor(0.5))
        expect(all(np.allclose(_numpy(t), v) for t, v in zip(target, online_values)),
               "a momentum given as a tensor (BYOL's schedule) must work too")
        return "in-place exponential moving average; momentum 0 copies, 1 freezes; tensor momentum accepted"

    return run_check("day08.momentum_update", "Exercise 8.1 - momentum update", test, spy=spy)


def check_byol_loss(byol_loss):
    """Check ``byol_loss(p1, p2, z1, z2) -> scalar`` (Exercise 8.2): value, pairing and where the gradient flows."""
    from course_lib import losses

    spy = ReferenceSpy(losses.byol_loss, losses.negative_cosine_loss, losses.symmetric_stop_gradient_loss)
    student = spy.wrap(byol_loss)

    def test():
        rng = np.random.default_rng(1)
        for n, d in [(5, 3), (16, 8)]:
            p1, p2, z1, z2 = (rng.normal(size=(n, d)).astype("float32") for _ in range(4))
            got = _scalar(student(*as_tensors(p1, p2, z1, z2)))
            want = float(losses.byol_loss(p1, p2, z1, z2))
            expect(np.isclose(got, want, rtol=1e-4, atol=1e-5),
                   f"N={n}, d={d}: got {got:.4f}, expected {want:.4f} (squared distance of unit vectors, "
                   "prediction of each view against the target of the other, averaged)")
        z = rng.normal(size=(4, 3)).astype("float32")
        w = rng.normal(size=(4, 3)).astype("float32")
        expect(np.isclose(_scalar(student(*as_tensors(w, z, 2 * z, 3 * w))), 0.0, atol=1e-5),
               "predictions pointing exactly at the other view's targets must give 0 (pair p1 with z2, p2 with z1; "
               "normalise)")
        grads = gradients(lambda a, b, c, e: student(a, b, c, e), [rng.normal(size=(6, 4)) for _ in range(4)])
        expect(all(g is None or np.allclose(g, 0) for g in grads[2:]),
               "a gradient reaches the targets z1 / z2: they must be constants (keras.ops.stop_gradient)")
        expect(all(g is not None and not np.allclose(g, 0) for g in grads[:2]),
               "the predictions p1 / p2 must receive a gradient")
        return "matches the reference; pairs each view with the other's target; no gradient reaches the targets"

    return run_check("day08.byol_loss", "Exercise 8.2 - BYOL loss", test, spy=spy)


def reference_initial_weight_share(momentum: float, total_steps: int, cosine: bool = False) -> float:
    """Share of a momentum target's weights still made of its initial values after ``total_steps`` EMA updates."""
    steps = np.arange(int(total_steps))
    if cosine:
        taus = 1.0 - (1.0 - momentum) * (np.cos(np.pi * steps / max(int(total_steps), 1)) + 1.0) / 2.0
    else:
        taus = np.full(len(steps), float(momentum))
    return float(np.prod(taus))


def check_initial_weight_share(initial_weight_share):
    """Check ``initial_weight_share(momentum, total_steps, cosine=False) -> float`` (Exercise 8.3, investigate)."""
    spy = ReferenceSpy(reference_initial_weight_share)
    student = spy.wrap(initial_weight_share)

    def test():
        for m, k, cosine in [(0.9, 10, False), (0.99, 160, False), (0.99, 160, True), (0.5, 7, True), (0.0, 3, False)]:
            got = float(student(m, k, cosine))
            want = reference_initial_weight_share(m, k, cosine)
            expect(math.isclose(got, want, rel_tol=1e-4, abs_tol=1e-9),
                   f"momentum {m}, {k} steps, cosine={cosine}: got {got:.6f}, expected {want:.6f}")
        expect(math.isclose(float(student(0.7, 0, False)), 1.0), "after 0 updates the target is all initial weights")
        return "matches the reference for constant and cosine momentum"

    return run_check("day08.target_momentum", "Exercise 8.3 - how fast does the target forget its start?", test, spy=spy)
