"""The 28x28 encoder of Days 07, 08 and 10."""

import numpy as np
import pytest
from keras import ops

from course_lib.models.encoders import ENCODER28_DEFAULTS, build_encoder28


@pytest.mark.parametrize("pooling", ["flatten", "avg"])
def test_encoder28_shapes_and_non_negative(pooling):
    enc = build_encoder28(pooling=pooling, width=4, embedding_dim=8)
    h = ops.convert_to_numpy(enc(np.random.default_rng(0).uniform(size=(3, 28, 28, 1)).astype("float32")))
    assert h.shape == (3, 8) and h.min() >= 0


def test_encoder28_defaults_and_errors():
    enc = build_encoder28(**ENCODER28_DEFAULTS)
    assert enc.output_shape == (None, ENCODER28_DEFAULTS["embedding_dim"])
    with pytest.raises(ValueError):
        build_encoder28(pooling="max")
    with pytest.raises(ValueError):
        build_encoder28(depth=1)
