"""Self-checks for Day 08 (beyond SimCLR): the momentum update, the stop-gradient loss and rotation batches."""

from __future__ import annotations

import numpy as np

from course_lib.checks import Hints, assert_all_passed, expect, hint, register_hints, run_check, summary, use_or_reference  # noqa: F401 (re-exported for the notebook)


HINTS = register_hints({
    "day08.momentum_update": Hints(
        todo="Implement the momentum update described above the exercise cell.",
        tiers=("for t, o in zip(target_weights, online_weights): t.assign(momentum * t + (1 - momentum) * o)",
               "Compare each intermediate result with the equation of the exercise, one step at a time.")),
    "day08.stop_gradient_loss": Hints(
        todo="Implement the stop-gradient loss described above the exercise cell.",
        tiers=("D(p, z) = -mean(sum(normalize(p) * normalize(ops.stop_gradient(z)), axis=1)); "
                          "loss = 0.5 * D(p1, z2) + 0.5 * D(p2, z1)",
               "Compare each intermediate result with the equation of the exercise, one step at a time.")),
    "day08.rotation_batch": Hints(
        todo="Implement the rotation pretext batch described above the exercise cell.",
        tiers=("rot90 once = ops.flip(ops.transpose(x, (0, 2, 1, 3)), axis=1); apply it k times; "
                          "labels = ops.repeat(ops.arange(4), N)",
               "Compare each intermediate result with the equation of the exercise, one step at a time.")),
})


def _numpy(x):
    from keras import ops

    return np.asarray(ops.convert_to_numpy(x))


def check_momentum_update(momentum_update):
    """Check ``momentum_update(target_weights, online_weights, momentum)`` (Exercise 8.1), updating in place."""
    def test():
        import keras

        rng = np.random.default_rng(0)
        start = [rng.normal(size=(3, 2)).astype("float32"), rng.normal(size=(4,)).astype("float32")]
        online_values = [rng.normal(size=(3, 2)).astype("float32"), rng.normal(size=(4,)).astype("float32")]
        target = [keras.Variable(v) for v in start]
        online = [keras.Variable(v) for v in online_values]
        momentum_update(target, online, 0.9)
        for t, s, o in zip(target, start, online_values):
            expect(np.allclose(_numpy(t), 0.9 * s + 0.1 * o, atol=1e-6),
                   "after one update the target should be 0.9 * target + 0.1 * online (update the variables in "
                   "place with .assign)")
        for o, v in zip(online, online_values):
            expect(np.allclose(_numpy(o), v), "the online weights must not change")
        momentum_update(target, online, 0.0)
        expect(all(np.allclose(_numpy(t), v) for t, v in zip(target, online_values)),
               "momentum 0 must copy the online weights")
        before = [_numpy(t).copy() for t in target]
        momentum_update(target, [v * 0 + 5 for v in online_values], 1.0)
        expect(all(np.allclose(_numpy(t), b) for t, b in zip(target, before)), "momentum 1 must leave the target frozen")
        return "in-place exponential moving average; momentum 0 copies, momentum 1 freezes"

    return run_check("day08.momentum_update", "Exercise 8.1 - momentum update", test)


def check_stop_gradient_loss(simsiam_loss):
    """Check ``simsiam_loss(p1, p2, z1, z2) -> scalar`` (Exercise 8.2): value and where the gradient flows."""
    def test():
        from course_lib.losses import symmetric_stop_gradient_loss

        rng = np.random.default_rng(1)
        for n, d in [(5, 3), (16, 8)]:
            p1, p2, z1, z2 = (rng.normal(size=(n, d)).astype("float32") for _ in range(4))
            got = float(_numpy(simsiam_loss(p1, p2, z1, z2)).squeeze())
            want = float(symmetric_stop_gradient_loss(p1, p2, z1, z2))
            expect(np.isclose(got, want, rtol=1e-4, atol=1e-5), f"N={n}, d={d}: got {got:.4f}, expected {want:.4f} "
                                                                 "(negative cosine, p1 with z2 and p2 with z1, halves)")
        z = rng.normal(size=(4, 3)).astype("float32")
        expect(np.isclose(float(_numpy(simsiam_loss(z, 3 * z, z, 2 * z)).squeeze()), -1.0, atol=1e-5),
               "predictions pointing exactly at their targets must give -1 (are you normalizing?)")
        import keras

        if keras.backend.backend() == "tensorflow":  # gradients need the backend's autodiff
            import tensorflow as tf

            p1, p2, z1, z2 = (tf.Variable(rng.normal(size=(6, 4)).astype("float32")) for _ in range(4))
            with tf.GradientTape() as tape:
                loss = simsiam_loss(p1, p2, z1, z2)
            grads = tape.gradient(loss, [p1, p2, z1, z2])
            expect(all(g is None or np.allclose(g, 0) for g in grads[2:]),
                   "a gradient reaches z1 / z2: wrap the targets in keras.ops.stop_gradient")
            expect(all(g is not None and not np.allclose(g, 0) for g in grads[:2]),
                   "the predictions p1 / p2 must receive a gradient")
        return "matches the reference; no gradient reaches the targets z"

    return run_check("day08.stop_gradient_loss", "Exercise 8.2 - stop-gradient loss", test)


def check_rotation_batch(rotation_batch):
    """Check ``rotation_batch(images) -> (rotated, labels)`` (Exercise 8.3) against ``np.rot90``."""
    def test():
        x = np.random.default_rng(2).uniform(size=(3, 6, 6, 1)).astype("float32")
        rotated, labels = rotation_batch(x)
        rotated, labels = _numpy(rotated), _numpy(labels)
        expect(rotated.shape == (12, 6, 6, 1), f"expected 4N = 12 rotated images of shape (6, 6, 1), got {rotated.shape}")
        expect(labels.shape == (12,) and labels.tolist() == [0] * 3 + [1] * 3 + [2] * 3 + [3] * 3,
               f"labels should be [0]*N + [1]*N + [2]*N + [3]*N, got {labels.tolist()}")
        for k in range(4):
            expect(np.allclose(rotated[3 * k: 3 * k + 3], np.rot90(x, k, axes=(1, 2))),
                   f"images with label {k} should equal np.rot90(x, {k}, axes=(1, 2)) ({90 * k} degrees "
                   "counter-clockwise)")
        return "all four rotations, in order, with the right labels"

    return run_check("day08.rotation_batch", "Exercise 8.3 - rotation pretext batch", test)
