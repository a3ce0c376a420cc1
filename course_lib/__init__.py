"""course_lib: corrected, tested building blocks for the course "Learning without labels".

The notebooks in ``solutions/`` (and the lessons generated from them) import from here:

- :mod:`course_lib.config`     -- mode / dataset / seed handling (``setup``).
- :mod:`course_lib.data`       -- the shared digits split, MNIST / Fashion-MNIST loaders, labeled-subset sampler.
- :mod:`course_lib.evaluation` -- cluster accuracy (Hungarian matching), NMI/ARI, probes, label-efficiency curves.
- :mod:`course_lib.plotting`   -- image grids, embedding scatter plots, training curves.
- :mod:`course_lib.checks`     -- student self-checks with pass / fail, hints and a structured record.
- :mod:`course_lib.metrics`    -- recording a notebook's metrics for ``course run``.
- :mod:`course_lib.notebooks`  -- generating lessons from solutions (nbgrader-style markers).
- :mod:`course_lib.cli`        -- the ``course`` command.
- :mod:`course_lib.models`     -- classifier, autoencoders, VAE, DCGAN, SimCLR / MoCo / BYOL, pretext tasks, mini-BERT.
- :mod:`course_lib.reconstruction`, :mod:`course_lib.frechet` -- PSNR / anomaly AUROC, Fréchet distance / coverage.

Submodules are imported lazily so that ``import course_lib`` stays cheap (TensorFlow is only
loaded by the parts that need it).
"""

import importlib
import os

# Quieter TensorFlow start-up; users can still override both by setting them first.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

__version__ = "0.1.0"

_SHORTCUTS = {"setup": "config", "record_metrics": "reporting"}

__all__ = ["setup", "record_metrics"]


def __getattr__(name):
    """Import submodules on first use (``course_lib.data``, ``course_lib.models`` ...)."""
    if name in _SHORTCUTS:
        return getattr(importlib.import_module(f"{__name__}.{_SHORTCUTS[name]}"), name)
    if not name.startswith("_"):
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as error:
            if error.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module 'course_lib' has no attribute {name!r}")
