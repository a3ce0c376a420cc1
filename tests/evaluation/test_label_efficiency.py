"""Unit tests for course_lib.evaluation.label_efficiency: label-efficiency curves and their results."""

import numpy as np
import pytest

from course_lib.evaluation import label_efficiency
from course_lib.evaluation.label_efficiency import LabelEfficiencyResult, label_efficiency_curve
from course_lib.evaluation.probes import linear_probe_predict


# --- label_efficiency_curve -----------------------------------------------------------------------

class Recorder:
    """A fit_predict that records the labels it receives and predicts with a linear probe."""

    def __init__(self):
        self.calls = []

    def __call__(self, x_labeled, y_labeled, x_test):
        self.calls.append((np.array(x_labeled), np.array(y_labeled)))
        return linear_probe_predict(x_labeled, y_labeled, x_test)


def test_label_efficiency_curve_draws_exactly_b_per_class(blob_split):
    x, y, x_test, y_test = blob_split(seed=5)
    recorder = Recorder()
    result = label_efficiency_curve(recorder, x, y, x_test, y_test, budgets=(1, 3, None), n_draws=4,
                                    seed=0, method="probe")
    # 4 draws for each finite budget, one for "all"
    assert len(recorder.calls) == 4 + 4 + 1
    for x_l, y_l in recorder.calls[:4]:
        np.testing.assert_array_equal(np.bincount(y_l, minlength=4), [1, 1, 1, 1])
    for x_l, y_l in recorder.calls[4:8]:
        np.testing.assert_array_equal(np.bincount(y_l, minlength=4), [3, 3, 3, 3])
    x_all, y_all = recorder.calls[8]
    assert len(y_all) == len(y)
    np.testing.assert_array_equal(np.sort(y_all), np.sort(y))
    # the inputs travel with their labels
    lookup = {row.tobytes(): label for row, label in zip(x, y)}
    for x_l, y_l in recorder.calls:
        assert all(lookup[row.tobytes()] == label for row, label in zip(x_l, y_l))
    # draws differ from one another (seed + draw)
    assert not np.array_equal(recorder.calls[4][0], recorder.calls[5][0])

    assert result.method == "probe"
    assert result.budgets == [1, 3, None]
    assert [len(a) for a in result.accuracies] == [4, 4, 1]
    assert result.mean(None) >= 0.95
    assert result.std(None) == 0.0
    assert result.mean(3) == pytest.approx(np.mean(result.accuracies[1]))
    assert result.std(3) == pytest.approx(np.std(result.accuracies[1]))


def test_label_efficiency_curve_is_seeded(blob_split):
    x, y, x_test, y_test = blob_split(seed=5)
    a, b = Recorder(), Recorder()
    label_efficiency_curve(a, x, y, x_test, y_test, budgets=(2,), n_draws=2, seed=11)
    label_efficiency_curve(b, x, y, x_test, y_test, budgets=(2,), n_draws=2, seed=11)
    for (xa, _), (xb, _) in zip(a.calls, b.calls):
        np.testing.assert_array_equal(xa, xb)


def test_label_efficiency_result_metrics_and_table():
    result = LabelEfficiencyResult("logreg", budgets=[1, 10, None],
                                   accuracies=[[0.5, 0.7], [0.9, 0.9], [0.95]])
    assert result.mean(1) == pytest.approx(0.6)
    assert result.std(1) == pytest.approx(0.1)
    assert result.as_metrics("acc") == {"acc_1": 0.6, "acc_1_std": 0.1, "acc_10": 0.9, "acc_10_std": 0.0,
                                        "acc_all": 0.95, "acc_all_std": 0.0}
    table = result.table()
    lines = table.splitlines()
    assert lines[0] == "logreg"
    assert "labels/class" in lines[1]
    assert len(lines) == 2 + 3
    assert "0.600 ± 0.100" in lines[2] and lines[2].rstrip().endswith("2")
    assert lines[4].split()[0] == "all" and "0.950" in lines[4]


def test_label_efficiency_curve_errors(blobs):
    x, y = blobs(n_per_class=3, seed=0)

    def good(x_l, y_l, x_t):
        return np.zeros(len(x_t), dtype=int)

    with pytest.raises(ValueError, match="n_draws"):
        label_efficiency_curve(good, x, y, x, y, n_draws=0)
    with pytest.raises(ValueError, match="class"):
        label_efficiency_curve(good, x, y, x, y, budgets=(5,))  # only 3 per class
    with pytest.raises(ValueError, match="shape"):
        label_efficiency_curve(lambda a, b, c: np.zeros(2), x, y, x, y, budgets=(1,))
    with pytest.raises(ValueError, match="1-D"):
        label_efficiency_curve(good, x, y.reshape(-1, 1), x, y, budgets=(1,))


def test_module_reexports_sampler():
    # the curve uses the course's one sampler
    from course_lib.data import labeled_subset

    assert label_efficiency.labeled_subset is labeled_subset
