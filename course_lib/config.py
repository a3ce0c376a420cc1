"""Run configuration shared by every notebook: mode, dataset and seed.

Every notebook has a papermill-style ``parameters`` cell::

    MODE = None     # "quick" or "full"; None reads $COURSE_MODE, else "quick"
    DATASET = None  # "mnist5k", "digits", "mnist" or "fashion_mnist"; None reads $COURSE_DATASET, else "mnist5k"
    SEED = 0

followed by ``cfg = course_lib.setup(MODE, DATASET, SEED)``, which validates the values, seeds
Python, NumPy and Keras (``keras.utils.set_random_seed``), sets up the devices (``$COURSE_DEVICES``, see
:func:`course_lib.backends.configure_devices`), prints the Keras backend and the devices, and returns a
:class:`CourseConfig`. The backend itself is chosen by ``$KERAS_BACKEND`` before Keras is imported
(``course run --backend``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

MODES = ("quick", "full")
DATASETS = ("mnist5k", "digits", "mnist", "fashion_mnist")
DEFAULT_MODE = "quick"
DEFAULT_DATASET = "mnist5k"


class ConfigError(ValueError):
    """A mode, dataset or seed that the course does not know."""


def resolve_choice(value, variable: str, default: str, choices, what: str, where: str) -> str:
    """``value``, else the environment variable ``variable``, else ``default``, lower-cased and checked.

    Args:
        value: the explicit setting, or None to read ``variable``.
        variable: the environment variable's name, e.g. ``"COURSE_MODE"``.
        default: used when neither is set.
        choices: the accepted values.
        what: the setting's name for the error message, e.g. ``"mode"``.
        where: how the user sets it, for the error message, e.g. ``"the MODE parameter"``.

    Raises:
        ConfigError: a value outside ``choices``, in one line naming the choices and how to set them.
    """
    resolved = value if value is not None else os.environ.get(variable) or default
    resolved = str(resolved).strip().lower()
    if resolved not in choices:
        raise ConfigError(f"unknown {what} {resolved!r}: expected one of {', '.join(choices)} "
                          f"(set {where} or the {variable} environment variable)")
    return resolved


def resolve_mode(mode: str | None = None) -> str:
    """Return ``mode``, else ``$COURSE_MODE``, else ``"quick"``, lower-cased.

    Args:
        mode: ``"quick"``, ``"full"`` or None.

    Returns:
        One of :data:`MODES`.

    Raises:
        ConfigError: the resolved value is not one of :data:`MODES`.
    """
    return resolve_choice(mode, "COURSE_MODE", DEFAULT_MODE, MODES, "mode", "the MODE parameter")


def resolve_dataset(dataset: str | None = None) -> str:
    """Return ``dataset``, else ``$COURSE_DATASET``, else ``"mnist5k"``, lower-cased.

    ``"fashion-mnist"`` is accepted as a spelling of ``"fashion_mnist"``.

    Args:
        dataset: a dataset name or None.

    Returns:
        One of :data:`DATASETS`.

    Raises:
        ConfigError: the resolved value is not one of :data:`DATASETS`.
    """
    if dataset is None:
        dataset = os.environ.get("COURSE_DATASET") or None
    if dataset is not None:
        dataset = str(dataset).replace("-", "_")
    return resolve_choice(dataset, "COURSE_DATASET", DEFAULT_DATASET, DATASETS, "dataset", "the DATASET parameter")


@dataclass(frozen=True)
class CourseConfig:
    """The resolved run configuration.

    Attributes:
        mode: ``"quick"`` (CPU-sized, what CI runs) or ``"full"`` (more data and epochs).
        dataset: image dataset name, one of :data:`DATASETS`.
        seed: the integer seed given to ``keras.utils.set_random_seed``.
        backend: the Keras backend of this process (``"tensorflow"``, ``"jax"`` or ``"torch"``).
        devices: the devices training runs on, e.g. ``("cpu:0",)``; more than one under data parallelism.
    """

    mode: str
    dataset: str
    seed: int
    backend: str = "tensorflow"
    devices: tuple[str, ...] = ("cpu:0",)

    @property
    def quick(self) -> bool:
        """True in quick mode."""
        return self.mode == "quick"

    def pick(self, quick: Any, full: Any) -> Any:
        """Return ``quick`` in quick mode and ``full`` in full mode (for epochs, sizes, draws...)."""
        return quick if self.quick else full


def setup(mode: str | None = None, dataset: str | None = None, seed: int = 0, verbose: bool = True,
          devices: str | None = None) -> CourseConfig:
    """Validate the run configuration, seed every random number generator and set up the devices.

    Args:
        mode: ``"quick"``, ``"full"`` or None (read ``$COURSE_MODE``, default quick).
        dataset: ``"mnist5k"``, ``"digits"``, ``"mnist"``, ``"fashion_mnist"`` or None (read ``$COURSE_DATASET``,
            default mnist5k).
        seed: non-negative integer passed to ``keras.utils.set_random_seed`` (seeds Python, NumPy and the backend).
        verbose: print one line describing the configuration, the Keras backend and the devices.
        devices: ``"one"``, ``"all"`` or None (read ``$COURSE_DEVICES``, default one). ``"all"`` trains the models
            built afterwards data-parallel over every device found, on the JAX backend
            (:func:`course_lib.backends.configure_devices`); elsewhere it says that it uses one device.

    Returns:
        The :class:`CourseConfig`.

    Raises:
        ConfigError: unknown mode, dataset or devices, or a seed that is not a non-negative integer.
    """
    from course_lib import backends

    resolved_mode = resolve_mode(mode)
    resolved_dataset = resolve_dataset(dataset)
    resolved_devices = backends.resolve_devices(devices)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    import keras

    keras.utils.set_random_seed(seed)
    placement = backends.configure_devices(resolved_devices)
    cfg = CourseConfig(resolved_mode, resolved_dataset, seed, keras.backend.backend(), tuple(placement.used))
    if verbose:
        print(f"mode={cfg.mode} dataset={cfg.dataset} seed={cfg.seed} | Keras {keras.__version__} on {cfg.backend}"
              f" | devices found: {', '.join(placement.found)}; training on {placement.description}")
    return cfg
