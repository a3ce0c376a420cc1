"""Self-checks for Day 07 (SimCLR): the NT-Xent loss, the SimCLR training step and the temperature study."""

from __future__ import annotations

import numpy as np

from course_lib.checks import (Hints, ReferenceSpy, assert_all_passed, expect, hint, register_hints,  # noqa: F401
                               run_check, summary, use_or_reference)

HINTS = register_hints({
    "day07.nt_xent": Hints(
        todo="Write the NT-Xent loss of the equation above the exercise cell, with keras.ops only.",
        tiers=("Put the 2N views in one matrix and see every row as a classification problem: among the 2N - 1 "
               "other rows, which one is my partner? The loss is a cross-entropy over those choices.",
               "Normalise each row to unit length, take all pairwise dot products divided by the temperature, "
               "exclude the diagonal by giving it a very negative value, and use sparse categorical "
               "cross-entropy from logits whose target for row i is i + N for the first half and i - N for the "
               "second half.",
               "Usual mistakes: forgetting to L2-normalise, leaving the self-similarity in the denominator, "
               "scoring only the first N rows (the loss must be symmetric in the two views), or dividing by the "
               "temperature before normalising.")),
    "day07.simclr_step": Hints(
        todo="Write compute_loss of the SimCLR model: two views, projections of both, your NT-Xent, metrics.",
        tiers=("One training step sees the batch twice, through two independent random augmentations; both "
               "views go through the encoder and the projection head, and the loss compares the two halves.",
               "The base class gives you the views (self.two_views), the projections (self.project, pass it "
               "training) and self.temperature; concatenate the two views so that batch normalisation sees "
               "all 2N images in one pass, split the projections back into two halves, and report the loss, "
               "losses.contrastive_accuracy and losses.embedding_std of the first half with self.track.",
               "Usual mistakes: augmenting once and comparing a view with itself (the loss is then trivially "
               "low and nothing is learned), projecting each view in a separate pass (batch statistics then "
               "differ between the halves), or forgetting to return the loss.")),
    "day07.temperature": Hints(
        todo="Write hard_negative_share: the share of the negatives' softmax weight held by the k hardest ones.",
        tiers=("For one anchor view, the gradient of its NT-Xent term pushes it away from each negative with a "
               "weight proportional to exp(similarity / temperature). Measure how concentrated those weights "
               "are on the most similar negatives.",
               "For every one of the 2N views, take the cosine similarities to its 2N - 2 negatives (everything "
               "except itself and its partner), apply a softmax to similarity / temperature over those "
               "negatives only, add up the k largest weights, and average that sum over the 2N views.",
               "Usual mistakes: leaving the partner or the view itself among the negatives, forgetting to "
               "normalise the vectors, or taking the k largest similarities from the wrong axis.")),
})


def _numpy(x):
    from keras import ops

    return np.asarray(ops.convert_to_numpy(x))


def _scalar(x) -> float:
    return float(_numpy(x).squeeze())


def check_nt_xent(nt_xent):
    """Check ``nt_xent(z1, z2, temperature) -> scalar`` (Exercise 7.1) against course_lib's NT-Xent."""
    from course_lib import losses

    spy = ReferenceSpy(losses.nt_xent_loss, losses.nt_xent_logits)
    student = spy.wrap(nt_xent)

    def test():
        rng = np.random.default_rng(0)
        for n, d, tau in [(4, 3, 0.5), (10, 8, 0.1), (3, 16, 1.0)]:
            z1, z2 = rng.normal(size=(n, d)).astype("float32"), rng.normal(size=(n, d)).astype("float32")
            got = _scalar(student(z1, z2, tau))
            want = float(losses.nt_xent_loss(z1, z2, tau))
            expect(np.isclose(got, want, rtol=1e-3, atol=1e-4),
                   f"N={n}, d={d}, temperature={tau}: got {got:.4f}, expected {want:.4f}")
            swapped = _scalar(student(z2, z1, tau))
            expect(np.isclose(swapped, got, rtol=1e-4), "the loss must be symmetric: nt_xent(z1, z2) == nt_xent(z2, z1)")
        e = np.eye(4, dtype="float32")
        expected = -np.log(np.exp(2.0) / (np.exp(2.0) + 6.0))
        got = _scalar(student(e, e, 0.5))
        expect(np.isclose(got, expected, rtol=1e-4),
               f"4 orthogonal images, identical views, temperature 0.5: expected {expected:.4f}, got {got:.4f} "
               "(is the self-similarity excluded from the denominator? are the vectors L2-normalized?)")
        got = _scalar(student(3 * e, 3 * e, 0.5))
        expect(np.isclose(got, expected, rtol=1e-4), "scaling the embeddings must not change the loss: normalise them")
        return "matches the reference on random inputs, symmetric, self-similarity masked, scale-invariant"

    return run_check("day07.nt_xent", "Exercise 7.1 - NT-Xent loss", test, spy=spy)


def check_simclr_step(simclr_class):
    """Check a ``contrastive.SimCLR`` subclass whose ``compute_loss`` is the student's (Exercise 7.2).

    The student's model and course_lib's SimCLR share an encoder and a head and get augmenters with the same
    seed, so they see the same two views: their losses must agree, and the metrics must be tracked.
    """
    import keras

    from course_lib import losses
    from course_lib.data.augment import build_augmenter28
    from course_lib.models import contrastive, encoders

    spy = ReferenceSpy(contrastive.SimCLR.compute_loss, losses.nt_xent_loss)

    def build(cls):
        return cls(encoder, head, build_augmenter28(seed=7), temperature=0.3)

    keras.utils.set_random_seed(0)
    encoder = encoders.build_encoder28(width=4, embedding_dim=16)
    head = encoders.build_projection_head(16, hidden_dim=16, output_dim=8)
    x = np.random.default_rng(0).uniform(size=(12, 28, 28, 1)).astype("float32")

    def student_loss():
        model = build(simclr_class)
        return model, model.compute_loss(x=x, training=True)

    watched = spy.wrap(student_loss)

    def test():
        expect(isinstance(simclr_class, type) and issubclass(simclr_class, contrastive.SimCLR),
               "the answer must be a subclass of contrastive.SimCLR")
        model, loss = watched()
        expect(loss is not None, "compute_loss must return the loss")
        got = _scalar(loss)
        want = _scalar(build(contrastive.SimCLR).compute_loss(x=x, training=True))
        random_level = float(np.log(2 * len(x) - 1))
        expect(np.isfinite(got), f"the loss is {got}")
        expect(np.isclose(got, want, rtol=1e-3, atol=1e-4),
               f"loss {got:.4f} on a batch where two independent views, projected together, give {want:.4f} "
               f"(log(2N - 1) = {random_level:.3f}). Are both views drawn independently, from the same augmenter, "
               "and projected in one pass?")
        counts = {t.name: _scalar(t.count) for t in model.trackers}
        expect(counts.get("loss", 0) > 0, "record the loss with self.track(loss=...) so that fit reports it")
        expect(counts.get("std", 0) > 0 and counts.get("accuracy", 0) > 0,
               "record the contrastive accuracy and the spread too: self.track(loss=..., accuracy=..., std=...)")
        return "same loss as two independent views projected together; loss, accuracy and spread tracked"

    return run_check("day07.simclr_step", "Exercise 7.2 - SimCLR training step", test, spy=spy)


def reference_hard_negative_share(z1, z2, temperature: float, k: int = 5) -> float:
    """Mean over the 2N views of the softmax weight (over negatives only) held by the k most similar negatives.

    Args:
        z1, z2: float arrays or tensors ``(N, d)``: projections of the two views of the same N images
            (L2-normalized here, in float64).
        temperature: the NT-Xent temperature (> 0) dividing the cosine similarities.
        k: number of hardest negatives counted, at most the ``2N - 2`` negatives of a view.

    Returns:
        A Python float in (0, 1]: 1 means the ``k`` hardest negatives hold all the weight.
    """
    z = np.concatenate([_numpy(z1), _numpy(z2)]).astype("float64")
    z /= np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
    n2 = len(z)
    n = n2 // 2
    sims = z @ z.T
    excluded = np.eye(n2, dtype=bool)
    excluded[np.arange(n2), (np.arange(n2) + n) % n2] = True
    logits = np.where(excluded, -np.inf, sims / temperature)
    logits -= logits.max(axis=1, keepdims=True)
    weights = np.exp(logits)
    weights /= weights.sum(axis=1, keepdims=True)
    top = np.sort(weights, axis=1)[:, ::-1][:, :k]
    return float(top.sum(axis=1).mean())


def check_hard_negative_share(hard_negative_share):
    """Check ``hard_negative_share(z1, z2, temperature, k) -> float`` (Exercise 7.3, investigate)."""
    spy = ReferenceSpy(reference_hard_negative_share)
    student = spy.wrap(hard_negative_share)

    def test():
        rng = np.random.default_rng(3)
        base = rng.normal(size=(16, 6)).astype("float32")
        z1 = base + 0.3 * rng.normal(size=base.shape).astype("float32")
        z2 = base + 0.3 * rng.normal(size=base.shape).astype("float32")
        for tau, k in [(0.1, 3), (0.5, 5), (5.0, 1)]:
            got = float(_numpy(student(z1, z2, tau, k)).squeeze())
            want = reference_hard_negative_share(z1, z2, tau, k)
            expect(np.isclose(got, want, rtol=1e-3, atol=1e-4),
                   f"temperature {tau}, k={k}: got {got:.4f}, expected {want:.4f}")
        uniform = reference_hard_negative_share(z1, z2, 1e6, 3)
        expect(np.isclose(uniform, 3 / 30, atol=1e-4), "internal: a huge temperature must give k / (2N - 2)")
        got = float(_numpy(student(z1, z2, 1e6, 3)).squeeze())
        expect(np.isclose(got, 3 / 30, atol=1e-3),
               f"with a huge temperature every negative weighs the same: expected 3 / 30 = 0.1, got {got:.4f}")
        return "matches the reference at three temperatures; uniform weights at a huge temperature"

    return run_check("day07.temperature", "Exercise 7.3 - temperature and hard negatives", test, spy=spy)
