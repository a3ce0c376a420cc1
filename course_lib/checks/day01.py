"""Self-checks for Day 01 (learning without labels): the labeled-subset sampler and the classifier builder."""

from __future__ import annotations

import numpy as np

from course_lib.checks import Hints, assert_all_passed, expect, hint, register_hints, run_check, summary, use_or_reference  # noqa: F401 (re-exported for the notebook)


HINTS = register_hints({
    "day01.labeled_subset": Hints(
        todo="Implement the stratified labeled subset described above the exercise cell.",
        tiers=("loop over np.unique(y); for each class draw per_class of np.flatnonzero(y == c) with "
                          "rng.choice(..., replace=False) from rng = np.random.default_rng(seed); raise ValueError "
                          "when a class has fewer members",
               "Compare each intermediate result with the equation of the exercise, one step at a time.")),
    "day01.classifier": Hints(
        todo="Implement the Keras classifier described above the exercise cell.",
        tiers=("inputs = keras.Input(shape=input_shape); x = layers.Flatten()(inputs); "
                          "x = layers.Dense(64, activation='relu')(x); "
                          "outputs = layers.Dense(n_classes, activation='softmax')(x); "
                          "return keras.Model(inputs, outputs)",
               "Compare each intermediate result with the equation of the exercise, one step at a time.")),
})


def check_labeled_subset(sample_labeled_subset):
    """Check ``sample_labeled_subset(y, per_class, seed) -> indices`` (Exercise 1.1).

    Expected: exactly ``per_class`` distinct indices per class, valid indices into ``y``, the same
    draw for the same seed, different draws for different seeds, ``ValueError`` when a class is too small.
    """
    def test():
        y = np.repeat(np.arange(5), [7, 9, 11, 8, 6])
        rng = np.random.default_rng(3)
        y = y[rng.permutation(len(y))]
        idx = np.asarray(sample_labeled_subset(y, 3, seed=1))
        expect(idx.ndim == 1 and len(idx) == 15, f"expected 15 indices (5 classes x 3), got shape {idx.shape}")
        expect(np.issubdtype(idx.dtype, np.integer), f"indices must be integers, got dtype {idx.dtype}")
        expect(idx.min() >= 0 and idx.max() < len(y), "indices must point into y")
        expect(len(np.unique(idx)) == 15, "indices must be distinct (sample without replacement)")
        counts = np.bincount(y[idx], minlength=5)
        expect(np.all(counts == 3), f"expected 3 examples of every class, got counts {counts.tolist()}")
        again = np.asarray(sample_labeled_subset(y, 3, seed=1))
        expect(np.array_equal(np.sort(idx), np.sort(again)), "the same seed must give the same subset")
        draws = {tuple(np.sort(np.asarray(sample_labeled_subset(y, 3, seed=s)))) for s in range(6)}
        expect(len(draws) > 1, "different seeds should give different subsets")
        try:
            sample_labeled_subset(y, 7, seed=0)
        except ValueError:
            pass
        else:
            raise AssertionError("per_class=7 with a class of only 6 examples must raise ValueError")
        return "per-class counts exact, indices distinct, reproducible per seed, ValueError when a class is too small"

    return run_check("day01.labeled_subset", "Exercise 1.1 - stratified labeled subset", test)


def check_classifier(build_classifier):
    """Check ``build_classifier(input_shape, n_classes) -> keras.Model`` (Exercise 1.2).

    Expected: a ``keras.Model`` taking ``(batch, *input_shape)`` images and returning ``(batch, n_classes)``
    class probabilities (rows sum to 1), with at least one hidden layer, that learns a tiny problem.
    """
    def test():
        import keras

        model = build_classifier((8, 8, 1), 10)
        expect(isinstance(model, keras.Model), f"expected a keras.Model, got {type(model).__name__}")
        x = np.random.default_rng(0).random((4, 8, 8, 1)).astype("float32")
        probs = keras.ops.convert_to_numpy(model(x, training=False))
        expect(probs.shape == (4, 10), f"output shape should be (4, 10) for 4 images, got {probs.shape}")
        expect(np.allclose(probs.sum(axis=1), 1.0, atol=1e-4) and probs.min() >= 0,
               "outputs must be class probabilities (softmax): non-negative, rows summing to 1")
        dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
        expect(len(dense) >= 2, "use at least one hidden Dense layer before the output layer")
        other = build_classifier((28, 28, 1), 3)
        expect(tuple(other.output_shape) == (None, 3), f"(28, 28, 1) -> 3 classes gave {other.output_shape}")
        return "maps (batch, 8, 8, 1) to (batch, 10) probabilities, works for other shapes"

    return run_check("day01.classifier", "Exercise 1.2 - Keras classifier", test)
