"""Self-checks for Day 01 (learning without labels): the labeled-subset sampler, the classifier and its training.

Exercise 1.1 ``sample_labeled_subset(y, per_class, seed)``, Exercise 1.2 ``build_classifier(input_shape,
n_classes)`` and Exercise 1.3 ``fit_classifier(model, x, y, steps, batch_size)``; the Day 01 notebook's
label-efficiency curve samples, builds and trains with the student's three functions.
"""

from __future__ import annotations

import numpy as np

from course_lib.checks import (Hints, ReferenceSpy, assert_all_passed, expect, hint, register_hints,  # noqa: F401
                               run_check, summary, use_or_reference)


HINTS = register_hints({
    "day01.labeled_subset": Hints(
        todo="Write sample_labeled_subset(y, per_class, seed): the indices of per_class randomly chosen examples "
             "of every class, drawn with a generator seeded by seed.",
        tiers=("Treat the classes one at a time: find the positions of the examples of that class, draw the "
               "wanted number of them at random without putting any back, and collect the draws of all classes.",
               "NumPy's random generator (np.random.default_rng) has a choice method that draws without "
               "replacement when asked; np.unique lists the classes and np.flatnonzero turns a boolean mask "
               "into positions.",
               "Draw every random number from the one generator made from seed (never the global np.random "
               "state), and check the size of a class before drawing from it: a class that is too small must "
               "raise ValueError, not silently return fewer examples.")),
    "day01.classifier": Hints(
        todo="Write build_classifier(input_shape, n_classes): a Functional-API keras.Model from images to class "
             "probabilities with at least one hidden layer.",
        tiers=("A Functional model starts at keras.Input, calls one layer after the other on the result, and "
               "ends with keras.Model(inputs, outputs). Dense layers work on vectors, so the image has to become "
               "a vector first.",
               "The output layer has one unit per class and the softmax activation, so that each row is a "
               "probability vector; a hidden Dense layer with a ReLU activation sits between Flatten and it.",
               "Use the arguments, not constants: the same function must build a model for 8x8 and 28x28 "
               "images and for any number of classes.")),
    "day01.fit_classifier": Hints(
        todo="Write fit_classifier(model, x, y, steps, batch_size): compile the model for integer labels and "
             "train it for about `steps` optimiser steps, whatever the number of examples.",
        tiers=("Two things to do: compile (optimiser, loss) and fit. The labels are integers 0..K-1, and the "
               "model outputs probabilities; pick the cross-entropy loss made for that pair.",
               "One epoch makes ceil(n / batch_size) steps, so with 10 examples an epoch is one step. Either "
               "repeat the examples until there are steps * batch_size rows and fit one epoch, or choose the "
               "number of epochs from steps and n. The optimiser counts its own steps in "
               "model.optimizer.iterations.",
               "categorical_crossentropy expects one-hot rows, not integer labels: use the sparse version. "
               "And keep the learning rate modest (Adam's default is fine).")),
})


def check_labeled_subset(sample_labeled_subset):
    """Check ``sample_labeled_subset(y, per_class, seed) -> indices`` (Exercise 1.1).

    Expected: exactly ``per_class`` distinct indices per class, valid indices into ``y``, the same draw for
    the same seed, different draws for different seeds, roughly uniform draws within a class, and
    ``ValueError`` when a class is too small. The reference is ``course_lib.data.datasets.labeled_subset``.
    """
    from course_lib.data.datasets import labeled_subset

    spy = ReferenceSpy(labeled_subset)
    sample = spy.wrap(sample_labeled_subset)

    def test():
        y = np.repeat(np.arange(5), [7, 9, 11, 8, 6])
        y = y[np.random.default_rng(3).permutation(len(y))]
        idx = np.asarray(sample(y, 3, seed=1))
        expect(idx.ndim == 1 and len(idx) == 15, f"expected 15 indices (5 classes x 3), got shape {idx.shape}")
        expect(np.issubdtype(idx.dtype, np.integer), f"indices must be integers, got dtype {idx.dtype}")
        expect(idx.min() >= 0 and idx.max() < len(y), "indices must point into y")
        expect(len(np.unique(idx)) == 15, "indices must be distinct (sample without replacement)")
        counts = np.bincount(y[idx], minlength=5)
        expect(np.all(counts == 3), f"expected 3 examples of every class, got counts {counts.tolist()}")
        again = np.asarray(sample(y, 3, seed=1))
        expect(np.array_equal(np.sort(idx), np.sort(again)), "the same seed must give the same subset")
        draws = [np.asarray(sample(y, 1, seed=s)) for s in range(200)]
        expect(len({tuple(np.sort(d)) for d in draws}) > 1, "different seeds should give different subsets")
        picked = np.bincount(np.concatenate(draws), minlength=len(y))[y == 2]   # class 2 has 11 members
        expect(picked.min() > 0, "some members of a class are never drawn: every member should have the same "
                                 "chance")
        try:
            sample(y, 7, seed=0)
        except ValueError:
            pass
        else:
            raise AssertionError("per_class=7 with a class of only 6 examples must raise ValueError")
        return "per-class counts exact, indices distinct, reproducible per seed, ValueError when a class is too small"

    return run_check("day01.labeled_subset", "Exercise 1.1 - stratified labeled subset", test, spy=spy)


def check_classifier(build_classifier):
    """Check ``build_classifier(input_shape, n_classes) -> keras.Model`` (Exercise 1.2).

    Expected: a ``keras.Model`` taking ``(batch, *input_shape)`` images and returning ``(batch, n_classes)``
    class probabilities (rows sum to 1), with at least one hidden layer, for any image shape and number of
    classes. The reference is ``course_lib.models.classifier.build_classifier``.
    """
    from course_lib.models import classifier as reference

    spy = ReferenceSpy(reference.build_classifier)
    build = spy.wrap(build_classifier)

    def test():
        import keras

        model = build((8, 8, 1), 10)
        expect(isinstance(model, keras.Model), f"expected a keras.Model, got {type(model).__name__}")
        x = np.random.default_rng(0).random((4, 8, 8, 1)).astype("float32")
        probs = keras.ops.convert_to_numpy(model(x, training=False))
        expect(probs.shape == (4, 10), f"output shape should be (4, 10) for 4 images, got {probs.shape}")
        expect(np.allclose(probs.sum(axis=1), 1.0, atol=1e-4) and probs.min() >= 0,
               "outputs must be class probabilities (softmax): non-negative, rows summing to 1")
        dense = [layer for layer in _all_layers(model)[1:]
                 if isinstance(layer, (keras.layers.Dense, keras.layers.Conv2D))]
        expect(len(dense) >= 2, "use at least one hidden layer (Dense or Conv2D) before the output layer")
        other = build((28, 28, 1), 3)
        expect(tuple(other.output_shape) == (None, 3), f"(28, 28, 1) -> 3 classes gave {other.output_shape}")
        return "maps (batch, 8, 8, 1) to (batch, 10) probabilities, has a hidden layer, works for other shapes"

    return run_check("day01.classifier", "Exercise 1.2 - Keras classifier", test, spy=spy)


def _toy_problem(n_per_class: int, seed: int = 0):
    """Four classes of 8x8 images: a fixed random prototype per class plus noise (an easy problem)."""
    rng = np.random.default_rng(seed)
    prototypes = np.random.default_rng(1234).random((4, 8, 8, 1))
    y = np.repeat(np.arange(4), n_per_class)
    x = np.clip(prototypes[y] + rng.normal(scale=0.15, size=(len(y), 8, 8, 1)), 0, 1).astype("float32")
    return x, y.astype("int64")


def _small_model(seed: int):
    """A small softmax MLP with seeded initialisers (the check does not draw from the notebook's global seed)."""
    import keras

    init = keras.initializers.GlorotUniform
    return keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                             keras.layers.Dense(32, activation="relu", kernel_initializer=init(seed)),
                             keras.layers.Dense(4, activation="softmax", kernel_initializer=init(seed + 1))])


def _all_layers(layer):
    """``layer`` and every layer nested inside it (models inside models)."""
    found = [layer]
    for child in getattr(layer, "layers", []) or []:
        found.extend(_all_layers(child))
    return found


def check_fit_classifier(fit_classifier):
    """Check ``fit_classifier(model, x, y, steps, batch_size)`` (Exercise 1.3).

    Expected: the model is compiled for integer labels and trained for ``steps`` optimiser steps (within
    10 %) both on a set smaller than one batch and on a set of several batches, and it learns an easy
    four-class problem. The references are ``course_lib.models.classifier.fit_classifier`` and
    ``train_classifier`` and ``course_lib.training.KerasFitPredict``.
    """
    from course_lib import training
    from course_lib.models import classifier as reference

    spy = ReferenceSpy(reference.fit_classifier, reference.train_classifier, training.KerasFitPredict.fit,
                       training.KerasFitPredict.__call__)
    fit = spy.wrap(fit_classifier)

    def test():
        from keras import ops

        for n_per_class, steps in ((2, 60), (40, 50)):
            x, y = _toy_problem(n_per_class, seed=n_per_class)
            model = _small_model(seed=n_per_class)
            fit(model, x, y, steps=steps, batch_size=32)
            expect(getattr(model, "optimizer", None) is not None, "the model was not compiled")
            done = int(ops.convert_to_numpy(model.optimizer.iterations))
            expect(0.9 * steps <= done <= 1.1 * steps,
                   f"with {len(y)} examples, batch_size 32 and steps={steps} the optimiser made {done} steps: "
                   "count optimiser steps, not epochs")
            accuracy = float(np.mean(ops.convert_to_numpy(model(x, training=False)).argmax(axis=1) == y))
            expect(accuracy >= 0.9, f"after training, accuracy on an easy 4-class problem is only {accuracy:.2f} "
                                    "(which loss did you compile with?)")
        x_test, y_test = _toy_problem(25, seed=99)
        test_accuracy = float(np.mean(ops.convert_to_numpy(model(x_test, training=False)).argmax(axis=1) == y_test))
        expect(test_accuracy >= 0.9, f"held-out accuracy on the easy problem is only {test_accuracy:.2f}")
        return "compiles for integer labels, makes the requested number of steps on 8 or 160 examples, learns"

    return run_check("day01.fit_classifier", "Exercise 1.3 - training for a fixed number of steps", test, spy=spy)
