"""Unit tests for course_lib.plotting: every function returns a Figure with the expected axes and artists."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from course_lib import plotting  # noqa: E402
from course_lib.evaluation.label_efficiency import LabelEfficiencyResult  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def images_drawn(fig):
    return [ax for ax in fig.axes if ax.images]


# --- image_grid -----------------------------------------------------------------------------------

def test_image_grid_grayscale_with_channel():
    images = np.random.default_rng(0).random((12, 8, 8, 1)).astype(np.float32)
    fig = plotting.image_grid(images, labels=list(range(12)), n_cols=5, title="digits")
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 15  # 3 rows x 5 columns
    drawn = images_drawn(fig)
    assert len(drawn) == 12
    assert [ax.get_title() for ax in drawn] == [str(i) for i in range(12)]
    first = drawn[0].images[0]
    assert first.get_array().shape == (8, 8)
    np.testing.assert_allclose(first.get_array(), images[0, ..., 0])
    assert first.get_clim() == (0.0, 1.0)
    assert first.get_cmap().name == "gray_r"
    assert fig._suptitle is not None and fig._suptitle.get_text() == "digits"
    assert all(not ax.axison for ax in fig.axes)


def test_image_grid_fewer_images_than_columns_and_rgb():
    fig = plotting.image_grid(np.zeros((3, 5, 5)), n_cols=10)
    assert len(fig.axes) == 3 and len(images_drawn(fig)) == 3
    fig = plotting.image_grid(np.zeros((4, 5, 5, 3)), n_cols=2, vmin=None, vmax=None)
    assert len(fig.axes) == 4
    assert images_drawn(fig)[0].images[0].get_array().shape == (5, 5, 3)


@pytest.mark.parametrize("shape", [(8, 8), (0, 8, 8), (2, 8, 8, 2, 1), (64,)])
def test_image_grid_bad_shapes(shape):
    with pytest.raises(ValueError, match="shape"):
        plotting.image_grid(np.zeros(shape))


def test_image_grid_label_count_mismatch():
    with pytest.raises(ValueError, match="labels"):
        plotting.image_grid(np.zeros((3, 4, 4)), labels=[1, 2])


# --- embedding_scatter ----------------------------------------------------------------------------

def test_embedding_scatter_with_labels_and_names():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(60, 2))
    labels = np.repeat([0, 1, 2], 20)
    fig = plotting.embedding_scatter(points, labels, title="t-SNE", class_names=["zero", "one", "two"])
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    assert len(ax.collections) == 3
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["zero", "one", "two"]
    assert sum(len(c.get_offsets()) for c in ax.collections) == 60
    assert ax.get_title() == "t-SNE"


def test_embedding_scatter_without_labels_into_given_axes():
    fig, (left, right) = plt.subplots(1, 2)
    returned = plotting.embedding_scatter(np.zeros((5, 2)), ax=right)
    assert returned is fig
    assert len(right.collections) == 1 and len(left.collections) == 0
    assert right.get_legend() is None


def test_embedding_scatter_bad_shapes():
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        plotting.embedding_scatter(np.zeros((5, 3)))
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        plotting.embedding_scatter(np.zeros(10))
    with pytest.raises(ValueError, match="labels"):
        plotting.embedding_scatter(np.zeros((5, 2)), labels=np.zeros(4, dtype=int))


# --- training_curves ------------------------------------------------------------------------------

def test_training_curves_from_dict():
    history = {"loss": [1.0, 0.5, 0.25], "val_loss": [1.1, 0.6, 0.4], "accuracy": [0.5, 0.7, 0.9]}
    fig = plotting.training_curves(history, title="fit")
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2
    loss_ax, acc_ax = fig.axes
    assert loss_ax.get_title() == "loss" and acc_ax.get_title() == "accuracy"
    assert len(loss_ax.lines) == 2 and len(acc_ax.lines) == 1
    np.testing.assert_array_equal(loss_ax.lines[0].get_xdata(), [1, 2, 3])
    np.testing.assert_array_equal(loss_ax.lines[1].get_ydata(), [1.1, 0.6, 0.4])


def test_training_curves_from_history_object_and_keys():
    class History:  # the shape of keras.callbacks.History
        history = {"loss": [3.0, 2.0], "kl": [0.1, 0.2]}

    fig = plotting.training_curves(History(), keys=["kl"])
    assert len(fig.axes) == 1 and fig.axes[0].get_title() == "kl"


def test_training_curves_errors():
    with pytest.raises(ValueError, match="empty"):
        plotting.training_curves({})
    with pytest.raises(ValueError, match="unknown history keys"):
        plotting.training_curves({"loss": [1.0]}, keys=["accuracy"])


# --- label_efficiency_plot ------------------------------------------------------------------------

def test_label_efficiency_plot():
    results = [LabelEfficiencyResult("logreg", [1, 5, 10, None], [[0.3, 0.4], [0.6, 0.7], [0.8, 0.8], [0.9]]),
               LabelEfficiencyResult("simclr", [1, 5, 10], [[0.5], [0.8], [0.85]])]
    fig = plotting.label_efficiency_plot(results)
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    assert len(ax.lines) == 2
    np.testing.assert_allclose(ax.lines[0].get_xdata(), [1, 5, 10, 20])  # "all" at twice the largest budget
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [0.35, 0.65, 0.8, 0.9])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "5", "10", "all"]
    assert ax.get_xscale() == "log"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["logreg", "simclr"]
    assert len(ax.collections) == 2  # one std band per method


def test_label_efficiency_plot_all_at_and_given_axes():
    fig, ax = plt.subplots()
    result = LabelEfficiencyResult("m", [2, None], [[0.5], [0.7]])
    assert plotting.label_efficiency_plot([result], ax=ax, all_at=100) is fig
    np.testing.assert_allclose(ax.lines[0].get_xdata(), [2, 100])
