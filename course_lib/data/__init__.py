"""Data: the image datasets and their fixed splits, augmentations, text corpora, tokenisation and masking.

- :mod:`course_lib.data.datasets`     -- :func:`load_dataset` (``mnist5k``, ``digits``, ``mnist``, ``fashion_mnist``),
  :class:`Dataset`, :func:`labeled_subset` (the "n labels per class" sampler).
- :mod:`course_lib.data.downloads`    -- fetching, hash-checking and parsing the full datasets (MNIST, Fashion-MNIST, IMDB).
- :mod:`course_lib.data.augment`      -- seeded augmentation pipelines (views for contrastive learning, FixMatch's
  weak / strong views) and the denoising corruption.
- :mod:`course_lib.data.corpus`       -- Day 09's text corpora (pydoc, IMDB, a folder of ``.txt`` files).
- :mod:`course_lib.data.tokenization` -- the WordPiece vocabulary and fixed-length token inputs.
- :mod:`course_lib.data.masking`      -- BERT's masking rule and masked-LM batches.

The dataset API is available from the package itself: ``from course_lib import data; data.load_dataset()``.
"""

from course_lib.data.datasets import Dataset, labeled_subset, load_dataset
from course_lib.data.downloads import CorruptDataFile, DatasetUnavailable, ensure_available

__all__ = ["Dataset", "load_dataset", "labeled_subset", "DatasetUnavailable", "CorruptDataFile", "ensure_available"]
