"""Unit tests for course_lib.models.encoders: encoders and projection heads."""

import numpy as np
import pytest

from course_lib.backends import to_numpy
from course_lib.models import encoders


@pytest.mark.parametrize("shape", [(8, 8, 1), (28, 28, 1)])
@pytest.mark.parametrize("kind", ["conv", "mlp"])
def test_encoder_output_shapes(shape, kind):
    encoder = encoders.build_encoder(shape, kind=kind, width=8, embedding_dim=24)
    out = to_numpy(encoder(np.zeros((3, *shape), "float32")))
    assert out.shape == (3, 24) and out.dtype == np.float32
    assert encoders.build_projection_head(24, 16, 7)(out).shape == (3, 7)
    with pytest.raises(ValueError):
        encoders.build_encoder(shape, kind="resnet")
