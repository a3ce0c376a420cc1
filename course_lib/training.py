"""What several models of the course share when they are trained, reused and evaluated.

- :func:`predict_batched`: a model in inference mode over a large array, batch by batch, as NumPy (frozen
  features for the probes, reconstructions, generated images, class probabilities).
- :func:`reset_seed_generators`, :func:`snapshot_optimizer` / :func:`restore_optimizer`: start a
  training run again from a known state without building (and tracing) a new model.
- :class:`KerasFitPredict`: train one compiled Keras classifier on one labeled draw after another (Day 01's
  recipe for tiny labeled sets; the leaderboard's Keras rows).
- :func:`fit_self_supervised`: the training recipe shared by every self-supervised method of Days 07-08.
- :func:`save_trained` / :func:`load_trained`: a ``.keras`` file plus the settings it was trained with, reused
  by a later day only when those settings match.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np

from course_lib import backends
from course_lib.backends import to_numpy


def predict_batched(model, x, batch_size: int = 512) -> np.ndarray:
    """Run ``model`` in inference mode on ``x`` batch by batch and return one NumPy array.

    Calls the model directly (``model(batch, training=False)``) instead of ``predict``: for the course's
    small models, building a traced prediction function for every model and input size costs more than it
    saves. Outputs are converted with ``keras.ops.convert_to_numpy``, so this works on every backend.

    Args:
        model: a callable ``keras.Model`` / layer mapping ``(batch, ...)`` to ``(batch, ...)``.
        x: array ``(n, ...)`` (converted to float32 unless it is an integer array, e.g. token ids).
        batch_size: rows per call (>= 1).

    Returns:
        The outputs for all ``n`` rows, concatenated along the first axis (float32 for float outputs).

    Raises:
        ValueError: an empty ``x`` or ``batch_size`` < 1.
    """
    from keras import ops

    x = to_numpy(x)
    if not np.issubdtype(x.dtype, np.integer):
        x = x.astype(np.float32, copy=False)
    if len(x) == 0 or batch_size < 1:
        raise ValueError(f"need a non-empty array and batch_size >= 1, got {len(x)} rows, batch_size {batch_size}")
    parts = [ops.convert_to_numpy(model(x[i:i + batch_size], training=False)) for i in range(0, len(x), batch_size)]
    out = np.concatenate(parts)
    return out.astype(np.float32, copy=False) if np.issubdtype(out.dtype, np.floating) else out


def reset_seed_generators(model, seed: int) -> int:
    """Restart every ``keras.random.SeedGenerator`` inside ``model`` from a state derived from ``seed``.

    ``keras.utils.set_random_seed`` does not touch generators that already exist; a layer's generator (dropout,
    random augmentations) keeps advancing from one ``fit`` to the next. Resetting them makes a training run
    depend only on its own seed. Generator ``i`` restarts at ``[(s_i + 1_000_003 * seed) mod (2^31 - 1), 0]``,
    where ``s_i`` is the seed it was created with (read from its state variable the first time).

    Args:
        model: a ``keras.Model`` (or layer).
        seed: non-negative integer.

    Returns:
        The number of generators reset.
    """
    from keras import ops

    states = [v for v in model.variables if v.path.endswith("seed_generator_state")]
    if not hasattr(model, "_course_initial_seeds"):
        model._course_initial_seeds = {v.path: int(ops.convert_to_numpy(v)[0]) for v in states}
    for variable in states:
        start = (model._course_initial_seeds.get(variable.path, 0) + 1_000_003 * int(seed)) % (2**31 - 1)
        variable.assign(np.array([start, 0], dtype=ops.convert_to_numpy(variable).dtype))
    return len(states)


def build_compiled(model, x, y) -> None:
    """Build a compiled model's loss and metrics on one batch now, outside ``fit``.

    On JAX and PyTorch, Keras builds whatever is still unbuilt at the first ``fit`` by running the model on a
    batch of the training data (``Trainer._symbolic_build``). That draws one more shuffle order (and, on PyTorch,
    may draw dropout masks from torch's global generator), so the first fit after seeding differs from every
    later fit seeded alike. Called once after ``compile``, it makes every fit start in the same state.

    Args:
        model: a compiled ``keras.Model``.
        x: one batch of inputs, e.g. zeros ``(1, *input_shape)``; y: matching targets.
    """
    y_pred = model(x, training=False)
    model.compute_loss(x, y, y_pred)
    model.compute_metrics(x, y, y_pred, sample_weight=None)
    model.reset_metrics()


def snapshot_optimizer(optimizer, variables) -> list[np.ndarray]:
    """Build ``optimizer`` for ``variables`` if needed and return a copy of its state (its initial state).

    Building the optimizer's variables before the first training step also keeps TensorFlow from tracing
    the step twice (variables created while tracing force a retrace).

    Args:
        optimizer: a ``keras.optimizers.Optimizer``.
        variables: the trainable variables it updates (used only when it is not built yet).

    Returns:
        One NumPy array per optimizer variable (copies with the variables' shapes and dtypes, e.g. the integer
        iteration counter and Adam's float32 moments), in ``optimizer.variables`` order, for
        :func:`restore_optimizer`.
    """
    from keras import ops

    if not optimizer.built:
        optimizer.build(variables)
    return [np.array(ops.convert_to_numpy(v)) for v in optimizer.variables]


def restore_optimizer(optimizer, state: list[np.ndarray]) -> None:
    """Put back an optimizer state taken by :func:`snapshot_optimizer` (moments, step counter...).

    Raises:
        ValueError: ``state`` does not have one array per optimizer variable.
    """
    if len(state) != len(optimizer.variables):
        raise ValueError(f"the state has {len(state)} arrays, the optimizer {len(optimizer.variables)} variables")
    for variable, value in zip(optimizer.variables, state):
        variable.assign(value)


class KerasFitPredict:
    """``fit_predict(x_labeled, y_labeled, x_test)`` for a Keras classifier, reusing one compiled model.

    ``build_model()`` must return a *new* ``keras.Model`` mapping images to class probabilities (softmax)
    with the initial weights of one draw: random for a network trained from scratch, or pretrained
    encoder weights + a fresh head for fine-tuning. It is called once to create the compiled model and
    once per draw, whose weights are copied into the compiled model (building a model is cheap; tracing
    a new training step is not). The optimizer state is restored to its initial values at every draw.

    Training: Adam with ``learning_rate``, sparse categorical cross-entropy, ``epochs`` epochs of
    ``rows_per_epoch`` rows (the labeled set repeated, in a random order, then cut to that length),
    ``batch_size`` rows per step, so every draw makes the same number of optimiser steps whatever its size.

    Args:
        build_model: ``build_model() -> keras.Model`` as above.
        epochs, batch_size, learning_rate: training length and optimiser.
        rows_per_epoch: rows per epoch after tiling (a multiple of ``batch_size`` keeps one batch shape).
        seed: base seed; draw ``i`` calls ``keras.utils.set_random_seed(seed + i)`` before ``build_model``.
        steps_per_execution: training steps per call of the compiled step function (fewer Python round trips;
            always 1 on PyTorch, see :func:`course_lib.backends.steps_per_execution`).

    Attributes:
        model: the compiled model; draws: number of draws trained so far.

    Raises:
        ValueError: ``epochs``, ``batch_size`` or ``rows_per_epoch`` < 1.
    """

    def __init__(self, build_model: Callable, epochs: int = 12, batch_size: int = 64, learning_rate: float = 1e-3,
                 rows_per_epoch: int = 2048, seed: int = 0, steps_per_execution: int = 8):
        import keras

        if min(epochs, batch_size, rows_per_epoch) < 1:
            raise ValueError(f"epochs, batch_size and rows_per_epoch must be >= 1, got {epochs}, {batch_size}, "
                             f"{rows_per_epoch}")
        self.build_model, self.seed, self.draws = build_model, seed, 0
        self.epochs, self.batch_size, self.rows_per_epoch = int(epochs), int(batch_size), int(rows_per_epoch)
        keras.utils.set_random_seed(seed)
        self.model = build_model()
        self.model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy",
                           steps_per_execution=backends.steps_per_execution(steps_per_execution))
        build_compiled(self.model, np.zeros((1, *self.model.input_shape[1:]), np.float32), np.zeros((1,), np.int64))
        self._optimizer_state = snapshot_optimizer(self.model.optimizer, self.model.trainable_variables)

    def fit(self, x_labeled, y_labeled):
        """Reset, then train on one labeled set; returns the trained model.

        Args:
            x_labeled: float ``(n, h, w, c)`` labeled images (cast to float32), ``n >= 1``.
            y_labeled: int labels ``(n,)`` (cast to int64).

        Returns:
            :attr:`model`, trained.

        Raises:
            ZeroDivisionError: an empty ``x_labeled``.
            ValueError: ``x_labeled`` and ``y_labeled`` of different lengths (from Keras), or ``build_model()``
                returns a model whose weights do not match the compiled model's.
        """
        import keras

        seed = self.seed + self.draws
        self.draws += 1
        keras.utils.set_random_seed(seed)
        self.model.set_weights(self.build_model().get_weights())
        reset_seed_generators(self.model, seed)
        restore_optimizer(self.model.optimizer, self._optimizer_state)
        x_labeled, y_labeled = to_numpy(x_labeled, np.float32), to_numpy(y_labeled, np.int64)
        rng = np.random.default_rng(seed)
        reps = int(np.ceil(self.rows_per_epoch / len(x_labeled)))
        rows = np.concatenate([rng.permutation(len(x_labeled)) for _ in range(reps)])[:self.rows_per_epoch]
        self.model.fit(x_labeled[rows], y_labeled[rows], batch_size=self.batch_size, epochs=self.epochs,
                       shuffle=True, verbose=0)
        return self.model

    def predict(self, x) -> np.ndarray:
        """Predicted labels, int64 ``(n,)``, of float images ``x`` ``(n, h, w, c)`` (inference mode)."""
        return predict_batched(self.model, x).argmax(axis=1)

    def __call__(self, x_labeled, y_labeled, x_test) -> np.ndarray:
        """:meth:`fit` then :meth:`predict` ``x_test`` (the ``label_efficiency_curve`` signature)."""
        self.fit(x_labeled, y_labeled)
        return self.predict(x_test)


#: Defaults of :func:`fit_self_supervised`.
SELF_SUPERVISED_DEFAULTS = {"batch_size": 256, "learning_rate": 2e-3}


def fit_self_supervised(model, x_train, epochs: int, batch_size: int = SELF_SUPERVISED_DEFAULTS["batch_size"],
                        learning_rate: float = SELF_SUPERVISED_DEFAULTS["learning_rate"], callbacks=None,
                        verbose: int = 0, steps_per_execution: int = 1):
    """Compile ``model`` with Adam and a cosine learning-rate decay to 0, then ``fit`` it on unlabeled images.

    The shared training recipe of Days 07-08, so that every method gets the same budget.

    Args:
        model: a self-supervised model (SimCLR, MoCo, SimSiam, BYOL, rotation prediction: any model whose
            ``compute_loss`` needs no targets).
        x_train: float32 images ``(n, h, w, c)``.
        epochs, batch_size: training length (the last batch of an epoch may be smaller).
        learning_rate: peak learning rate.
        callbacks, verbose: passed to ``fit``.
        steps_per_execution: training steps per compiled call (Keras ``compile``); e.g. 32 runs most of an
            epoch of a small dataset in one call, with less Python overhead per step (always 1 on PyTorch).

    Returns:
        The ``keras.callbacks.History``.
    """
    import keras

    steps = epochs * int(np.ceil(len(x_train) / batch_size))
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=max(steps, 1))
    model.compile(optimizer=keras.optimizers.Adam(schedule),
                  steps_per_execution=backends.steps_per_execution(steps_per_execution))
    return model.fit(to_numpy(x_train, dtype=np.float32), epochs=epochs, batch_size=batch_size, shuffle=True,
                     verbose=verbose, callbacks=callbacks)


def save_trained(model, path, **settings) -> Path:
    """Save ``model`` to ``path`` (a ``.keras`` file) and the ``settings`` it was trained with to a JSON file beside it.

    Day 07 saves its SimCLR encoder this way to ``course_lib.paths.build_dir() / "models" /
    "day07_simclr_encoder.keras"`` with the dataset, mode, seed and training settings, so that later days
    reuse it only when it was trained the way they would train it (:func:`load_trained`).

    Args:
        model: a ``keras.Model``.
        path: target ``.keras`` path (parent folders are created).
        **settings: JSON-serializable values, written to ``path`` with the suffix ``.json``.

    Returns:
        The path of the saved model.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    path.with_suffix(".json").write_text(json.dumps(settings, indent=1, sort_keys=True), encoding="utf-8")
    return path


def load_trained(path, **expected):
    """Load a model saved by :func:`save_trained` if it exists and its settings equal ``expected``.

    Args:
        path: the ``.keras`` file.
        **expected: settings that must match exactly (after a JSON round-trip, so tuples compare equal to
            lists), e.g. ``dataset="mnist5k", mode="quick", seed=0``.

    Returns:
        The loaded ``keras.Model``, or None when the file or its settings are missing, a value differs, or the
        file cannot be loaded (a stale or foreign file is never used silently: the caller trains instead).
    """
    import keras

    path = Path(path)
    sidecar = path.with_suffix(".json")
    if not path.exists() or not sidecar.exists():
        return None
    try:
        saved = json.loads(sidecar.read_text(encoding="utf-8"))
        wanted = json.loads(json.dumps(expected))
        if any(saved.get(key) != value for key, value in wanted.items()):
            return None
        return keras.models.load_model(path)
    except (OSError, ValueError, TypeError, KeyError):
        return None
