"""The course's small supervised image classifier (Day 01), also used as a feature extractor.

- :func:`build_classifier`: the Functional-API multilayer perceptron (the reference of Day 01's Exercise 1.2).
- :func:`fit_classifier`: compile for integer labels and train for a fixed number of optimiser steps,
  whatever the size of the labeled set (the reference of Exercise 1.3; Day 01's label-efficiency curve).
- :func:`train_classifier`: build, compile and fit for a number of epochs (Day 06's feature classifier).
- :func:`feature_extractor`: the sub-model up to the hidden layer.

Day 06 measures generated images with a Fréchet distance in the feature space of this classifier
(the penultimate layer), as the Fréchet Inception Distance does with Inception-v3 features
(Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash Equilibrium",
NeurIPS 2017) — an Inception network trained on ImageNet means nothing for 8x8 digits.
"""

from __future__ import annotations

import keras
from keras import layers

from course_lib import backends

FEATURES_LAYER = "features"


def build_classifier(input_shape=(8, 8, 1), n_classes: int = 10, hidden: int = 128, dropout: float = 0.2,
                     name: str = "classifier") -> keras.Model:
    """A Functional-API multilayer perceptron for small images.

    ``Flatten -> Dense(hidden, relu) [named "features"] -> Dropout -> Dense(n_classes, softmax)``.

    Args:
        input_shape: ``(height, width, channels)`` of one image, e.g. ``(8, 8, 1)`` or ``(28, 28, 1)``.
        n_classes: number of classes (>= 2).
        hidden: width of the hidden layer (the feature dimension).
        dropout: dropout rate after the hidden layer, in [0, 1).
        name: model name.

    Returns:
        An uncompiled ``keras.Model`` mapping float32 ``(batch, *input_shape)`` to class probabilities
        ``(batch, n_classes)``.

    Raises:
        ValueError: ``n_classes`` < 2, ``hidden`` < 1 or ``dropout`` outside [0, 1).
    """
    if n_classes < 2 or hidden < 1 or not 0.0 <= dropout < 1.0:
        raise ValueError(f"need n_classes >= 2, hidden >= 1, 0 <= dropout < 1; got {n_classes}, {hidden}, {dropout}")
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = layers.Flatten()(inputs)
    x = layers.Dense(hidden, activation="relu", name=FEATURES_LAYER)(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=name)


def feature_extractor(classifier: keras.Model) -> keras.Model:
    """The sub-model from a :func:`build_classifier` model's input to its ``"features"`` layer.

    Returns:
        A ``keras.Model`` mapping ``(batch, *input_shape)`` to float32 ``(batch, hidden)`` features
        (shares weights with ``classifier``).

    Raises:
        ValueError: the classifier has no layer named ``"features"``.
    """
    try:
        features = classifier.get_layer(FEATURES_LAYER).output
    except ValueError as error:
        raise ValueError(f"{classifier.name} has no layer named {FEATURES_LAYER!r}: build it with build_classifier") from error
    return keras.Model(classifier.input, features, name=f"{classifier.name}_features")


def fit_classifier(model: keras.Model, x, y, steps: int, batch_size: int = 64, learning_rate: float = 1e-3,
                   seed: int = 0, steps_per_execution: int = 8, verbose: int = 0):
    """Compile ``model`` for integer labels and train it for exactly ``steps`` optimiser steps.

    With a tiny labeled set (10 images, batch 64) one epoch is a single step, and thousands of one-step
    epochs cost far more than the steps themselves; with all labels an epoch is many steps. Counting
    steps instead of epochs gives every labeled set the same training budget. The rows are the examples
    repeated in random orders (a fresh permutation per pass, from ``seed``), cut to ``steps * batch_size``,
    and fitted for one epoch.

    Compiled with Adam (Kingma & Ba, ICLR 2015) at ``learning_rate`` and the sparse categorical
    cross-entropy (integer labels against softmax probabilities), with an accuracy metric.

    Args:
        model: a ``keras.Model`` mapping images to class probabilities (softmax), e.g. :func:`build_classifier`.
        x: float32 images ``(n, h, w, c)``.
        y: int labels ``(n,)`` in ``[0, n_classes)``.
        steps: optimiser steps (>= 1).
        batch_size: rows per step (>= 1).
        learning_rate: Adam's step size.
        seed: seed of the row order.
        steps_per_execution: steps per call of the compiled training function (fewer Python round trips).
        verbose: passed to ``fit``.

    Returns:
        The ``keras.callbacks.History`` of the one epoch.

    Raises:
        ValueError: ``steps`` or ``batch_size`` < 1, an empty ``x``, or ``x`` and ``y`` of different lengths.
    """
    import numpy as np

    x, y = np.asarray(x, dtype=np.float32), np.asarray(y, dtype=np.int64)
    if steps < 1 or batch_size < 1 or len(x) == 0 or len(x) != len(y):
        raise ValueError(f"need steps >= 1, batch_size >= 1 and as many labels as images, got steps {steps}, "
                         f"batch_size {batch_size}, {len(x)} images, {len(y)} labels")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], steps_per_execution=backends.steps_per_execution(steps_per_execution))
    rng = np.random.default_rng(seed)
    n_rows = int(steps) * int(batch_size)
    rows = np.concatenate([rng.permutation(len(x)) for _ in range(-(-n_rows // len(x)))])[:n_rows]
    return model.fit(x[rows], y[rows], batch_size=batch_size, epochs=1, shuffle=False, verbose=verbose)


def train_classifier(x_train, y_train, input_shape=None, n_classes: int | None = None, epochs: int = 60,
                     batch_size: int = 64, seed: int = 0, **kwargs) -> keras.Model:
    """Build, compile (Adam, sparse categorical cross-entropy) and fit :func:`build_classifier`.

    Args:
        x_train: float32 images ``(n, h, w, c)``.
        y_train: int labels ``(n,)``.
        input_shape: default ``x_train.shape[1:]``.
        n_classes: default ``max(y_train) + 1``.
        epochs, batch_size: training length.
        seed: ``keras.utils.set_random_seed`` is called with it first (reproducible weights and shuffling).
        **kwargs: passed to :func:`build_classifier`.

    Returns:
        The trained model (compiled, mapping float32 ``(batch, *input_shape)`` to probabilities
        ``(batch, n_classes)``).

    Raises:
        ValueError: ``n_classes`` < 2 (as given, or ``max(y_train) + 1``), or another invalid argument of
            :func:`build_classifier`.
    """
    import numpy as np

    keras.utils.set_random_seed(seed)
    model = build_classifier(input_shape or tuple(x_train.shape[1:]),
                             n_classes or int(np.max(y_train)) + 1, **kwargs)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=epochs, batch_size=batch_size, verbose=0)
    return model
