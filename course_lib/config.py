"""Run configuration shared by every notebook: mode, dataset and seed.

Every notebook has a papermill-style ``parameters`` cell::

    MODE = None     # "quick" or "full"; None reads $COURSE_MODE, else "quick"
    DATASET = None  # "mnist5k", "digits", "mnist" or "fashion_mnist"; None reads $COURSE_DATASET, else "mnist5k"
    SEED = 0

followed by ``cfg = course_lib.setup(MODE, DATASET, SEED)``, which validates the values, seeds
Python, NumPy and Keras (``keras.utils.set_random_seed``) and returns a :class:`CourseConfig`.
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


def resolve_mode(mode: str | None = None) -> str:
    """Return ``mode``, else ``$COURSE_MODE``, else ``"quick"``; raise :class:`ConfigError` if unknown."""
    value = mode if mode is not None else os.environ.get("COURSE_MODE") or DEFAULT_MODE
    value = str(value).strip().lower()
    if value not in MODES:
        raise ConfigError(f"unknown mode {value!r}: expected one of {', '.join(MODES)} "
                          "(set the MODE parameter or the COURSE_MODE environment variable)")
    return value


def resolve_dataset(dataset: str | None = None) -> str:
    """Return ``dataset``, else ``$COURSE_DATASET``, else ``"mnist5k"``; raise :class:`ConfigError` if unknown.

    ``"fashion-mnist"`` is accepted as a spelling of ``"fashion_mnist"``.
    """
    value = dataset if dataset is not None else os.environ.get("COURSE_DATASET") or DEFAULT_DATASET
    value = str(value).strip().lower().replace("-", "_")
    if value not in DATASETS:
        raise ConfigError(f"unknown dataset {value!r}: expected one of {', '.join(DATASETS)} "
                          "(set the DATASET parameter or the COURSE_DATASET environment variable)")
    return value


@dataclass(frozen=True)
class CourseConfig:
    """The resolved run configuration.

    Attributes:
        mode: ``"quick"`` (CPU-sized, what CI runs) or ``"full"`` (more data and epochs).
        dataset: image dataset name, one of :data:`DATASETS`.
        seed: the integer seed given to ``keras.utils.set_random_seed``.
    """

    mode: str
    dataset: str
    seed: int

    @property
    def quick(self) -> bool:
        """True in quick mode."""
        return self.mode == "quick"

    def pick(self, quick: Any, full: Any) -> Any:
        """Return ``quick`` in quick mode and ``full`` in full mode (for epochs, sizes, draws...)."""
        return quick if self.quick else full


def setup(mode: str | None = None, dataset: str | None = None, seed: int = 0, verbose: bool = True) -> CourseConfig:
    """Validate the run configuration and seed every random number generator.

    Args:
        mode: ``"quick"``, ``"full"`` or None (read ``$COURSE_MODE``, default quick).
        dataset: ``"mnist5k"``, ``"digits"``, ``"mnist"``, ``"fashion_mnist"`` or None (read ``$COURSE_DATASET``,
            default mnist5k).
        seed: non-negative integer passed to ``keras.utils.set_random_seed`` (seeds Python, NumPy and the backend).
        verbose: print one line describing the configuration and the Keras backend / devices.

    Returns:
        The :class:`CourseConfig`.

    Raises:
        ConfigError: unknown mode or dataset, or a seed that is not a non-negative integer.
    """
    resolved_mode = resolve_mode(mode)
    resolved_dataset = resolve_dataset(dataset)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    import keras

    keras.utils.set_random_seed(seed)
    cfg = CourseConfig(resolved_mode, resolved_dataset, seed)
    if verbose:
        print(f"mode={cfg.mode} dataset={cfg.dataset} seed={cfg.seed} | "
              f"Keras {keras.__version__} on {keras.backend.backend()} ({_device_summary()})")
    return cfg


def _device_summary() -> str:
    try:
        import keras

        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            return f"{len(gpus)} GPU" if gpus else "CPU"
    except Exception:  # device discovery is informative only
        pass
    return "device unknown"
