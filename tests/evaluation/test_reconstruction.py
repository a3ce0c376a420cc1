"""Unit tests for course_lib.evaluation.reconstruction: reconstruction error, PSNR and anomaly AUROC."""

import numpy as np
import pytest

from course_lib.evaluation import reconstruction


# --- reconstruction metrics ---------------------------------------------------------------------------------

def test_reconstruction_error_and_psnr_known_values():
    x = np.zeros((2, 2, 2, 1))
    x_hat = x.copy()
    x_hat[0] = 0.1           # MSE 0.01 -> PSNR 20 dB
    x_hat[1, 0, 0, 0] = 0.2  # MSE 0.04 / 4 = 0.01 -> 20 dB
    np.testing.assert_allclose(reconstruction.reconstruction_error(x, x_hat), [0.01, 0.01])
    np.testing.assert_allclose(reconstruction.reconstruction_error(x, x_hat, "mae"), [0.1, 0.05])
    np.testing.assert_allclose(reconstruction.psnr(x, x_hat), [20.0, 20.0])
    np.testing.assert_allclose(reconstruction.psnr(x * 255, x_hat * 255, data_range=255), [20.0, 20.0])
    assert np.isinf(reconstruction.psnr(x, x)).all()


def test_psnr_matches_tensorflow():
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(0)
    a, b = rng.random((5, 8, 8, 1)), rng.random((5, 8, 8, 1))
    np.testing.assert_allclose(reconstruction.psnr(a, b), tf.image.psnr(a, b, max_val=1.0).numpy(), rtol=1e-5)


def test_metric_input_validation():
    with pytest.raises(ValueError, match="same shape"):
        reconstruction.psnr(np.zeros((2, 4)), np.zeros((2, 5)))
    with pytest.raises(ValueError, match="data_range"):
        reconstruction.psnr(np.zeros((2, 4)), np.zeros((2, 4)), data_range=0)
    with pytest.raises(ValueError, match="kind"):
        reconstruction.reconstruction_error(np.zeros((2, 4)), np.zeros((2, 4)), kind="l3")
    with pytest.raises(ValueError, match="both"):
        reconstruction.anomaly_auroc([0.1, 0.2], [1, 1])
    with pytest.raises(ValueError, match="NaN"):
        reconstruction.anomaly_auroc([0.1, np.nan], [0, 1])


def test_anomaly_auroc_matches_pairwise_definition():
    rng = np.random.default_rng(0)
    labels = rng.random(200) < 0.2
    scores = np.round(rng.normal(size=200) + labels, 1)
    pos, neg = scores[labels], scores[~labels]
    diff = pos[:, None] - neg[None, :]
    expected = ((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size
    assert reconstruction.anomaly_auroc(scores, labels) == pytest.approx(expected)
    assert reconstruction.anomaly_auroc([0.1, 0.2, 0.9], [0, 0, 1]) == 1.0
