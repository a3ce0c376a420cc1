"""Model builders and ``keras.Model`` subclasses of the course, one module per family.

- :mod:`~course_lib.models.base`          -- sub-model (de)serialisation and the self-supervised base model.
- :mod:`~course_lib.models.classifier`    -- the Day-01 classifier and its feature extractor.
- :mod:`~course_lib.models.autoencoders`  -- dense, convolutional, linear and denoising autoencoders (Day 04).
- :mod:`~course_lib.models.vae`           -- the sampling layer and the VAE (Day 05).
- :mod:`~course_lib.models.gan`           -- DCGAN with an alternating ``train_step`` (Day 06).
- :mod:`~course_lib.models.encoders`      -- encoders, projection heads and predictors (Days 07, 08, 10).
- :mod:`~course_lib.models.contrastive`   -- SimCLR and MoCo (Days 07-08).
- :mod:`~course_lib.models.siamese`       -- SimSiam and BYOL (Day 08).
- :mod:`~course_lib.models.pretext`       -- rotation prediction (Day 08).
- :mod:`~course_lib.models.bert`          -- the mini-BERT for masked language modeling (Day 09).
- :mod:`~course_lib.models.text_classifier` -- probe features, a text classifier and fine-tuning on it (Day 09).
- :mod:`~course_lib.models.fixmatch`      -- FixMatch and its trainer (Day 10).
- :mod:`~course_lib.models.self_training` -- self-training with pseudo-labels and label spreading (Day 10).

Every custom layer and model is registered with ``keras.saving.register_keras_serializable(package="course_lib")``
and survives a ``.keras`` save / load round-trip. The public builders and models are available from this
package (``from course_lib.models import SimCLR``); each is imported on first use, so importing the package
does not load every family's dependencies (keras_hub for the mini-BERT, for example).
"""

import importlib

_EXPORTS = {
    "classifier": ("build_classifier", "feature_extractor", "train_classifier"),
    "autoencoders": ("Autoencoder", "DenoisingAutoencoder", "build_dense_autoencoder", "build_conv_autoencoder",
                     "build_linear_autoencoder", "build_denoising_autoencoder"),
    "vae": ("Sampling", "VAE", "build_vae"),
    "gan": ("DCGAN", "build_generator", "build_discriminator", "generate_images", "SampleGrid"),
    "encoders": ("build_encoder", "build_encoder28", "build_projection_head", "build_predictor"),
    "contrastive": ("SimCLR", "MoCo", "pretrain_simclr", "momentum_update"),
    "siamese": ("SimSiam", "BYOL"),
    "pretext": ("RotationPrediction",),
    "bert": ("MiniBert",),
    "text_classifier": ("build_text_classifier", "FineTuneRuns"),
    "fixmatch": ("FixMatch", "FixMatchTrainer"),
    # not the function self_training: a package attribute of that name is the module (once it is imported)
    "self_training": ("select_pseudo_labels", "label_spreading_predict"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name):
    """Import the defining module of a public name on first use (``course_lib.models.SimCLR`` ...)."""
    if name in _WHERE:
        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'course_lib.models' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
