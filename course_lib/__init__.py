"""course_lib: corrected, tested building blocks for the course "Learning without labels".

The notebooks in ``solutions/`` (and the lessons generated from them) import from here. One folder per
concern, one module per idea::

    course_lib/
      __init__.py        setup() and record_metrics() shortcuts; submodules load lazily
      config.py          mode / dataset / seed resolution, setup() (seeds everything, prints the backend)
      backends.py        the Keras backend and devices (DataParallel on JAX with COURSE_DEVICES=all); to_numpy
      autodiff.py        value_and_grad with one branch per backend (the GAN's hand-written training step)
      paths.py           the project root, build/, the dataset cache data/, solutions/ and lessons/
      losses.py          every objective of the course (VAE, GAN, NT-Xent, InfoNCE, SimSiam, FixMatch...)
      training.py        shared training helpers: batched inference, seed / optimizer resets, KerasFitPredict,
                         the self-supervised recipe, saving a trained model with its settings
      plotting.py        image grids, embedding scatter plots, training curves, label-efficiency plots
      reporting.py       recording a notebook's metrics; the one table renderer; strip_ansi
      lessons.py         generating lessons/ from solutions/ (nbgrader markers); cell_source, day_key
      cli.py             the `course` command: run, lessons, grade
      data/
        datasets.py      load_dataset (mnist5k, digits, mnist, fashion_mnist), Dataset, labeled_subset
        downloads.py     fetching and hash-checking the full datasets; IDX / npz parsers
        augment.py       seeded view augmentations; the denoising corruption add_noise
        corpus.py        Day 09's text corpora (pydoc, IMDB, a folder of .txt files)
        tokenization.py  the WordPiece vocabulary and fixed-length token inputs
        masking.py       BERT's 15 % / 80-10-10 masking rule and masked-LM batches
      models/
        base.py          sub-model (de)serialisation; the self-supervised base model
        classical.py     reference k-means (++ seeding, Lloyd steps) and PCA by SVD (Days 02-03)
        classifier.py    the Day-01 classifier, its step-counted training and feature extractor
        autoencoders.py  dense, convolutional, linear and denoising autoencoders
        vae.py           the sampling layer and the VAE
        gan.py           DCGAN with an alternating train_step
        encoders.py      encoders, projection heads, predictors
        contrastive.py   SimCLR and MoCo
        siamese.py       SimSiam and BYOL
        pretext.py       rotation prediction
        bert.py          the mini-BERT (keras_hub layers)
        fixmatch.py      FixMatch and its trainer
        self_training.py pseudo-labels and label spreading
      evaluation/
        clustering.py    cluster accuracy (Hungarian matching), NMI, ARI
        probes.py        linear and kNN probes of frozen features
        label_efficiency.py  accuracy vs labels per class over draws, and its table
        reconstruction.py    reconstruction error, PSNR, anomaly AUROC
        generative.py    Fréchet distance in a classifier's feature space, class coverage
        leaderboard.py   Day 10's leaderboard (metrics and build/leaderboard.json)
      checks/            per-day self-checks with tiered hints (day01.py ... day10.py)
      grading/           `course grade`: rebuilding, sandboxed kernels, guard, gradebook, feedback

Submodules are imported lazily so that ``import course_lib`` stays cheap (Keras and TensorFlow are only
loaded by the parts that need them).
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
