"""Which Keras backend runs the course, on which devices, and how results come back as NumPy.

Keras 3 runs the same model code on TensorFlow, JAX and PyTorch; the backend is chosen once per process by the
``KERAS_BACKEND`` environment variable, before Keras is imported (``course run --backend`` sets it for the
notebook kernels). This module holds what the course needs around that choice:

- :func:`resolve_backend` and :func:`resolve_devices`: the validated names (``$KERAS_BACKEND``, ``$COURSE_DEVICES``).
- :func:`backend_installed`: whether the packages of a backend can be imported here (the ``jax`` and ``torch``
  extras of the project install them; TensorFlow is a base dependency).
- :func:`list_devices` and :func:`configure_devices`: the devices found (``keras.distribution.list_devices()``) and,
  with ``COURSE_DEVICES=all`` on the JAX backend, data-parallel training over all of them with
  ``keras.distribution.DataParallel``.
- :func:`to_numpy`: NumPy arrays from backend tensors, the portable way (``keras.ops.convert_to_numpy``).
- :func:`steps_per_execution`: the ``compile(steps_per_execution=...)`` value the backend accepts.
- :func:`seed_unseeded_dropout`: seeds what a ``Dropout`` layer created without a seed draws from on PyTorch.
"""

from __future__ import annotations

import importlib.util
import sys
from typing import NamedTuple

import numpy as np

from course_lib.config import resolve_choice

BACKENDS = ("tensorflow", "jax", "torch")
DEFAULT_BACKEND = "tensorflow"
DEVICE_CHOICES = ("one", "all")
DEFAULT_DEVICES = "one"

#: The modules a backend needs, and the extra of the project that installs them (None: a base dependency).
BACKEND_MODULES = {"tensorflow": ("tensorflow",), "jax": ("jax", "jaxlib"), "torch": ("torch",)}
BACKEND_EXTRAS = {"tensorflow": None, "jax": "jax", "torch": "torch"}


def resolve_backend(backend: str | None = None) -> str:
    """Return ``backend``, else ``$KERAS_BACKEND``, else ``"tensorflow"``, lower-cased.

    The name is only validated: the backend of a running Python process is fixed when Keras is first imported
    (read it with ``keras.backend.backend()``).

    Args:
        backend: ``"tensorflow"``, ``"jax"``, ``"torch"`` or None.

    Returns:
        One of :data:`BACKENDS`.

    Raises:
        course_lib.config.ConfigError: the resolved value is not one of :data:`BACKENDS`.
    """
    return resolve_choice(backend, "KERAS_BACKEND", DEFAULT_BACKEND, BACKENDS, "backend", "--backend")


def resolve_devices(devices: str | None = None) -> str:
    """Return ``devices``, else ``$COURSE_DEVICES``, else ``"one"``, lower-cased.

    ``"one"`` trains on one device (the first GPU / TPU if any, else the CPU); ``"all"`` spreads training over
    every device found, on the JAX backend (see :func:`configure_devices`).

    Args:
        devices: ``"one"``, ``"all"`` or None.

    Returns:
        One of :data:`DEVICE_CHOICES`.

    Raises:
        course_lib.config.ConfigError: the resolved value is not one of :data:`DEVICE_CHOICES`.
    """
    return resolve_choice(devices, "COURSE_DEVICES", DEFAULT_DEVICES, DEVICE_CHOICES, "devices", "--devices")


def backend_installed(backend: str) -> bool:
    """True when every module the backend needs can be imported here (checked without importing it)."""
    return all(importlib.util.find_spec(module) is not None for module in BACKEND_MODULES[resolve_backend(backend)])


def installed_backends() -> list[str]:
    """The names of :data:`BACKENDS` that :func:`backend_installed` finds, in that order."""
    return [name for name in BACKENDS if backend_installed(name)]


def list_devices() -> list[str]:
    """The devices Keras trains on, e.g. ``["cpu:0"]`` or ``["gpu:0", "gpu:1"]`` (accelerators first, else the CPU).

    ``keras.distribution.list_devices()`` on TensorFlow and JAX. Keras has no distribution support for PyTorch
    (``keras.distribution`` raises there), so on that backend the devices come from ``torch.cuda``:
    ``["cuda:0", ...]`` when a CUDA GPU is visible, else ``["cpu:0"]``.
    """
    import keras

    if keras.backend.backend() == "torch":
        import torch

        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        return [f"cuda:{i}" for i in range(count)] or ["cpu:0"]
    return [str(device) for device in keras.distribution.list_devices()]


class DeviceSetup(NamedTuple):
    """What :func:`configure_devices` found and chose.

    Attributes:
        found: every device found, e.g. ``["cpu:0"]`` (see :func:`list_devices`).
        used: the devices training runs on: all of ``found`` under data parallelism, else the first one.
        description: one line for the user, e.g. ``"one device"``.
    """

    found: list
    used: list
    description: str


def configure_devices(devices: str | None = None) -> DeviceSetup:
    """Set Keras' global distribution for ``devices`` and describe what training will use.

    With ``"all"``, on the JAX backend, and more than one device found, models built afterwards train with
    ``keras.distribution.DataParallel`` over all the devices: every variable is replicated, every batch is split
    along its first axis, and the gradients are averaged over the whole batch, so the result is the one of a
    single device up to floating-point reduction order. Batch sizes (the last, partial batch of an epoch
    included) must then be divisible by the number of devices. In every other case the distribution is reset
    (``set_distribution(None)``) and training uses one device. Call it before building the models.

    Args:
        devices: ``"one"``, ``"all"`` or None (read ``$COURSE_DEVICES``, default one).

    Returns:
        A :class:`DeviceSetup`.

    Raises:
        ConfigError: an unknown ``devices`` value.
    """
    import keras

    choice = resolve_devices(devices)
    found = list_devices()
    backend = keras.backend.backend()
    if choice == "all" and backend == "jax" and len(found) > 1:
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=found))
        return DeviceSetup(found, list(found),
                           f"data-parallel over {len(found)} devices (keras.distribution.DataParallel)")
    keras.distribution.set_distribution(None)
    if choice == "all" and backend != "jax":
        why = f"COURSE_DEVICES=all: keras.distribution.DataParallel needs the JAX backend, not {backend}"
    elif choice == "all":
        why = "COURSE_DEVICES=all, but only one device found"
    else:
        why = ""
    return DeviceSetup(found, found[:1], f"one device ({why})" if why else "one device")


def to_numpy(x, dtype=None) -> np.ndarray:
    """``x`` as a NumPy array, whatever the backend produced it.

    ``np.asarray`` on a backend tensor is not portable: on PyTorch it raises for a tensor that requires grad (the
    output of any model with weights) or that lives on a GPU. Tensors of the current backend and Keras variables
    go through ``keras.ops.convert_to_numpy``; NumPy arrays, lists and scalars go straight to ``np.asarray``
    (their dtype is kept: no detour through a backend tensor, which would turn float64 into float32 on JAX).

    Args:
        x: a backend tensor, a ``keras.Variable``, a NumPy array or anything ``np.asarray`` accepts.
        dtype: optional dtype of the result.

    Returns:
        A NumPy array (no copy when ``x`` already is one of the right dtype).
    """
    keras = sys.modules.get("keras")  # not imported yet: x cannot come from a Keras backend
    if keras is not None and not isinstance(x, (np.ndarray, np.generic, list, tuple, int, float, bool)):
        if isinstance(x, keras.Variable) or keras.ops.is_tensor(x):
            x = keras.ops.convert_to_numpy(x)
    return np.asarray(x, dtype=dtype)


def steps_per_execution(requested: int) -> int:
    """The ``steps_per_execution`` to pass to ``Model.compile`` on the current backend.

    TensorFlow and JAX run several training steps per call of the compiled step function (fewer Python round
    trips, the same results); Keras's PyTorch trainer refuses any value but 1 (``ValueError`` in ``fit``).

    Args:
        requested: the wanted number of steps per execution (>= 1).

    Returns:
        ``requested`` on TensorFlow and JAX, 1 on PyTorch.
    """
    import keras

    return 1 if keras.backend.backend() == "torch" else int(requested)


def seed_unseeded_dropout(seed: int) -> None:
    """Seed the generator that unseeded ``Dropout`` layers draw their masks from, where that is a global one.

    A ``keras.layers.Dropout`` created without ``seed`` (keras_hub's transformer blocks create theirs so) draws
    from its own ``SeedGenerator`` on TensorFlow and JAX, which :func:`course_lib.training.reset_seed_generators`
    restarts; on PyTorch, Keras takes a fast path that draws from torch's global generator instead
    (``torch.nn.functional.dropout``), so a training run repeats only if that generator is seeded too. This seeds
    it on PyTorch and does nothing on the other backends (``keras.utils.set_random_seed`` would also reseed
    TensorFlow's global generator; measured on Day 09's fine-tuning, each TensorFlow run after it took about a
    second longer).

    Args:
        seed: non-negative integer.
    """
    import keras

    if keras.backend.backend() == "torch":   # the only backend whose unseeded dropout uses a global generator
        import torch

        torch.manual_seed(int(seed))
