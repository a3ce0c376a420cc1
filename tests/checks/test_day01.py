"""Unit tests for course_lib.checks.day01: each check passes a right answer, fails known wrong ones, says "todo"
for an unwritten exercise and "reference" for an answer that calls course_lib's implementation."""

import keras
import numpy as np

from course_lib.checks import day01 as checks
from course_lib.data.datasets import labeled_subset
from course_lib.models import classifier


def _todo(*args, **kwargs):
    raise NotImplementedError


# --- Exercise 1.1: the stratified sampler ----------------------------------------------------------------------

def _sampler(y, per_class, seed=0):
    rng = np.random.default_rng(seed)
    picked = []
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        if len(members) < per_class:
            raise ValueError("class too small")
        picked.append(rng.choice(members, size=per_class, replace=False))
    return np.concatenate(picked)


def test_labeled_subset_check_passes_a_right_answer_and_fails_wrong_ones():
    assert checks.check_labeled_subset(_sampler).status == "pass"

    def unstratified(y, per_class, seed=0):       # per_class * K random indices: not per class
        return np.random.default_rng(seed).choice(len(y), size=per_class * len(np.unique(y)), replace=False)

    def first_ones(y, per_class, seed=0):         # deterministic: always the first members of every class
        return np.concatenate([np.flatnonzero(y == c)[:per_class] for c in np.unique(y)])

    def no_error(y, per_class, seed=0):           # returns fewer instead of raising
        rng = np.random.default_rng(seed)
        return np.concatenate([rng.permutation(np.flatnonzero(y == c))[:per_class] for c in np.unique(y)])

    for wrong in (unstratified, first_ones, no_error):
        assert checks.check_labeled_subset(wrong).status == "fail", wrong.__name__


def test_labeled_subset_check_todo_and_reference():
    assert checks.check_labeled_subset(_todo).status == "todo"
    assert checks.check_labeled_subset(lambda y, per_class, seed=0: labeled_subset(y, per_class, seed=seed)
                                       ).status == "reference"


# --- Exercise 1.2: the classifier ------------------------------------------------------------------------------

def _build(input_shape, n_classes):
    inputs = keras.Input(shape=input_shape)
    hidden = keras.layers.Dense(32, activation="relu")(keras.layers.Flatten()(inputs))
    return keras.Model(inputs, keras.layers.Dense(n_classes, activation="softmax")(hidden))


def test_classifier_check_passes_a_right_answer_and_fails_wrong_ones():
    assert checks.check_classifier(_build).status == "pass"

    def logits(input_shape, n_classes):           # no softmax: rows do not sum to 1
        inputs = keras.Input(shape=input_shape)
        hidden = keras.layers.Dense(32, activation="relu")(keras.layers.Flatten()(inputs))
        return keras.Model(inputs, keras.layers.Dense(n_classes)(hidden))

    def no_hidden(input_shape, n_classes):        # plain softmax regression
        inputs = keras.Input(shape=input_shape)
        return keras.Model(inputs, keras.layers.Dense(n_classes, activation="softmax")(keras.layers.Flatten()(inputs)))

    def fixed_shape(input_shape, n_classes):      # ignores its arguments
        return _build((8, 8, 1), 10)

    for wrong in (logits, no_hidden, fixed_shape):
        assert checks.check_classifier(wrong).status == "fail", wrong.__name__


def test_classifier_check_todo_and_reference():
    assert checks.check_classifier(_todo).status == "todo"
    assert checks.check_classifier(lambda shape, k: classifier.build_classifier(shape, k)).status == "reference"


# --- Exercise 1.3: training for a fixed number of steps --------------------------------------------------------

def _fit(model, x, y, steps, batch_size=64):
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    reps = -(-steps * batch_size // len(x))
    rows = np.concatenate([np.random.default_rng(r).permutation(len(x)) for r in range(reps)])[:steps * batch_size]
    model.fit(x[rows], y[rows], batch_size=batch_size, epochs=1, shuffle=False, verbose=0)


def test_fit_classifier_check_passes_a_right_answer_and_fails_wrong_ones():
    assert checks.check_fit_classifier(_fit).status == "pass"

    def epochs_as_steps(model, x, y, steps, batch_size=64):     # `steps` epochs: far too many steps on 160 rows
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.fit(x, y, batch_size=batch_size, epochs=steps, verbose=0)

    result = checks.check_fit_classifier(epochs_as_steps)
    assert result.status == "fail" and "steps" in result.message

    def one_hot_loss(model, x, y, steps, batch_size=64):        # categorical_crossentropy on integer labels
        model.compile(optimizer="adam", loss="categorical_crossentropy")
        rows = np.resize(np.arange(len(x)), steps * batch_size)
        model.fit(x[rows], y[rows], batch_size=batch_size, epochs=1, verbose=0)

    assert checks.check_fit_classifier(one_hot_loss).status in ("fail", "error")


def test_fit_classifier_check_todo_and_reference():
    assert checks.check_fit_classifier(_todo).status == "todo"
    assert checks.check_fit_classifier(
        lambda model, x, y, steps, batch_size=64: classifier.fit_classifier(model, x, y, steps, batch_size)
    ).status == "reference"


def test_fit_classifier_reference_trains_for_the_requested_steps():
    x = np.random.default_rng(0).random((10, 8, 8, 1)).astype("float32")
    y = np.arange(10) % 4
    model = _build((8, 8, 1), 4)
    classifier.fit_classifier(model, x, y, steps=24, batch_size=16, steps_per_execution=1)
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 24
