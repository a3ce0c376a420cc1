"""Fixtures shared by the tests of the self-supervised models (contrastive, siamese, pretext)."""

import keras
import pytest

from course_lib.data.augment import build_augmenter
from course_lib.models import contrastive, encoders, pretext, siamese


@pytest.fixture(scope="session")
def digits(digits_dataset):
    """The first 256 training images of the digits dataset, float32 ``(256, 8, 8, 1)``."""
    return digits_dataset.x_train[:256]


@pytest.fixture(scope="session")
def self_supervised_models(small_encoder):
    """``self_supervised_models(shape=(8, 8, 1))``: one small, compiled instance of every self-supervised model,
    built the way the notebooks build them: ``{"simclr", "moco", "simsiam", "rotation"}``."""

    def build(shape=(8, 8, 1)):
        keras.utils.set_random_seed(0)
        aug = build_augmenter(shape, seed=0)
        out = {
            "simclr": contrastive.SimCLR(small_encoder(shape), encoders.build_projection_head(16, 32, 8), aug,
                                         temperature=0.2),
            "moco": contrastive.MoCo(small_encoder(shape), encoders.build_projection_head(16, 32, 8), aug,
                                     queue_size=64, momentum=0.9),
            "simsiam": siamese.SimSiam(small_encoder(shape),
                                       encoders.build_projection_head(16, 32, 8, output_batch_norm=True),
                                       encoders.build_predictor(8, 4), aug),
            "rotation": pretext.RotationPrediction(small_encoder(shape), augmenter=aug),
        }
        for model in out.values():
            model.compile(optimizer=keras.optimizers.Adam(3e-3))
        return out

    return build


@pytest.fixture(scope="session")
def trained(digits, self_supervised_models):
    """Every self-supervised model trained for 6 epochs on 256 digits: ``{name: (model, history dict)}``.

    Shared by the tests of contrastive and pretext; they read the models and never train them further.
    """
    return {name: (model, model.fit(digits, epochs=6, batch_size=64, verbose=0).history)
            for name, model in self_supervised_models().items()}
