"""Pictures: real PNG files, written atomically, with the content each one promises."""

import numpy
import pytest

from fastnet.plots import (
    confusion_figure,
    curves_figure,
    errors_figure,
    filters_figure,
    most_confident_errors,
    png_bytes,
    save_png,
)
from fastnet.plots.figure import as_images


def read_png(path):
    import matplotlib.image

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return matplotlib.image.imread(path)


def leftovers(folder):
    return [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


def texts(fig):
    return [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text"))]


def test_confusion_heatmap_shows_every_nonzero_count(tmp_path):
    matrix = numpy.array([[50, 2, 0], [1, 40, 7], [0, 0, 60]])
    fig = confusion_figure(matrix, ["cat", "dog", "bird"])
    shown = texts(fig)
    for count in ("50", "2", "1", "40", "7", "60"):
        assert count in shown
    assert "0" not in shown  # empty cells stay blank
    assert any("160 images, accuracy 0.9375, 10 errors" in t for t in shown)
    path = save_png(fig, tmp_path / "confusion.png")
    assert read_png(path).shape[:2] == (600, 720)
    assert leftovers(tmp_path) == []


def test_most_confident_errors_orders_by_the_wrong_class_probability():
    probs = numpy.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.4, 0.6], [0.05, 0.95]])
    labels = numpy.array([0, 0, 1, 1, 0])
    # wrong: 1 (p=0.8), 2 (p=0.7), 4 (p=0.95)
    numpy.testing.assert_array_equal(most_confident_errors(probs, labels), [4, 1, 2])
    numpy.testing.assert_array_equal(most_confident_errors(probs, labels, count=2), [4, 1])
    assert most_confident_errors(probs, probs.argmax(axis=1)).size == 0


@pytest.mark.parametrize("count", [25, 7, 1])
def test_errors_figure_title_sits_above_the_first_row_and_inside_the_picture(count):
    """The figure's title once overlapped the first row's titles (25 images)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    rng = numpy.random.default_rng(0)
    labels = numpy.arange(count) % 10
    fig = errors_figure(
        rng.random((count, 784)), labels, (labels + 1) % 10, rng.random(count), title="simple-conv on fashion-mnist"
    )
    canvas = FigureCanvasAgg(fig)
    canvas.draw()  # the layout the PNG gets
    renderer = canvas.get_renderer()
    title = fig._suptitle.get_window_extent(renderer)
    first_row = [ax.title.get_window_extent(renderer) for ax in fig.axes[: min(count, 5)]]
    assert all(title.y0 > box.y1 for box in first_row), (title, first_row)
    assert 0 <= title.x0 and title.x1 <= fig.bbox.x1 and title.y1 <= fig.bbox.y1


def test_errors_grid_titles_each_image_with_true_and_predicted(tmp_path):
    images = numpy.random.default_rng(0).random((7, 784)).astype(numpy.float32)
    fig = errors_figure(
        images, [1, 2, 3, 4, 5, 6, 7], [7, 7, 7, 7, 7, 7, 1], [0.9] * 7, class_names=[f"c{i}" for i in range(10)]
    )
    shown = texts(fig)
    assert "true c1\npredicted c7 (90%)" in shown and "true c7\npredicted c1 (90%)" in shown
    assert sum(1 for ax in fig.axes if ax.images) == 7
    read_png(save_png(fig, tmp_path / "errors.png"))
    empty = errors_figure(numpy.zeros((0, 784)), [], [], [])
    assert "no errors" in texts(empty)


def test_filters_before_and_after_side_by_side(tmp_path):
    rng = numpy.random.default_rng(0)
    before, after = rng.standard_normal((2, 30, 1, 5, 5))
    fig = filters_figure(before, after)
    drawn = [ax.images[0].get_array() for ax in fig.axes if ax.images]
    assert len(drawn) == 60
    numpy.testing.assert_array_equal(drawn[0], before[0, 0])
    numpy.testing.assert_array_equal(drawn[30], after[0, 0])
    assert {"before training", "after training"} <= set(texts(fig))
    read_png(save_png(fig, tmp_path / "filters.png"))


CLASSIC = {
    "epoch": [1, 2, 3],
    "train_loss": [0.5, 0.3, 0.2],
    "train_acc": [0.8, 0.9, 0.95],
    "test_loss": [0.55, 0.35, 0.3],
    "test_acc": [0.78, 0.88, 0.9],
    "step_loss": [[100, 1.0], [200, 0.6], [300, 0.3]],
}


def labels_of(ax):
    return ax.get_legend_handles_labels()[1]


def test_classic_history_gives_loss_and_accuracy_panels():
    fig = curves_figure(CLASSIC)
    assert [ax.get_title() for ax in fig.axes] == ["loss", "accuracy"]
    assert labels_of(fig.axes[0]) == ["train (minibatches)", "train", "test"]


def test_validation_and_learning_rate_panels(tmp_path):
    columns = {
        **CLASSIC,
        "val_loss": [0.52, 0.33, 0.34],
        "val_acc": [0.79, 0.91, 0.9],
        "lr": [0.1, 0.05, 0.01],
        "step_lr": [[i, 0.1 - i * 3e-4] for i in range(1, 301)],
    }
    fig = curves_figure(columns, title="run")
    loss, acc, lr = fig.axes
    assert lr.get_title() == "learning rate"
    assert labels_of(acc) == ["train", "val", "test", "best val (epoch 2)"]
    line = dict(zip(labels_of(lr), lr.get_lines(), strict=True))["per update"]
    numpy.testing.assert_allclose(line.get_xdata()[[0, -1]], [0.01, 3.0])
    read_png(save_png(fig, tmp_path / "curves.png"))


def test_missing_values_are_skipped_not_plotted_as_gaps():
    columns = {
        **CLASSIC,
        "test_loss": [None, None, None],
        "test_acc": [None, None, None],
        "val_acc": [None, 0.9, 0.92],
        "val_loss": [None, 0.3, 0.2],
    }
    fig = curves_figure(columns)
    assert labels_of(fig.axes[1]) == ["train", "val", "best val (epoch 3)"]
    val = dict(zip(labels_of(fig.axes[1]), fig.axes[1].get_lines(), strict=True))["val"]
    assert list(val.get_xdata()) == [2, 3]


def test_the_marked_epoch_is_the_one_selection_keeps_when_accuracies_tie():
    # Epochs 2 and 3 tie on validation accuracy; epoch 3 has the lower validation loss, so
    # best.npz and the final report name epoch 3, and so must the picture.
    columns = {**CLASSIC, "val_acc": [0.9, 0.95, 0.95], "val_loss": [0.3, 0.2, 0.1]}
    fig = curves_figure(columns)
    assert labels_of(fig.axes[1])[-1] == "best val (epoch 3)"


def test_png_bytes_and_image_shapes():
    fig = filters_figure(numpy.ones((2, 1, 3, 3)), numpy.zeros((2, 1, 3, 3)))
    assert png_bytes(fig)[:4] == b"\x89PNG"
    assert as_images(numpy.zeros((2, 784))).shape == (2, 28, 28)
    assert as_images(numpy.zeros((2, 1, 28, 28))).shape == (2, 28, 28)
    assert as_images(numpy.zeros((2, 3, 8, 8))).shape == (2, 8, 8, 3)
    with pytest.raises(ValueError, match="square"):
        as_images(numpy.zeros((2, 10)))


def test_eval_pictures_of_a_run_folder(tmp_path):
    from fastnet.plots import softmax, write_curves, write_eval_pictures, write_filters

    rng = numpy.random.default_rng(1)
    labels = rng.integers(0, 10, 200)
    scores = rng.standard_normal((200, 10)) * 3
    matrix = numpy.zeros((10, 10), int)
    numpy.add.at(matrix, (labels, scores.argmax(axis=1)), 1)
    written = write_eval_pictures(tmp_path / "run", matrix, rng.random((200, 1, 28, 28)), labels, scores)
    assert [p.name for p in written] == ["confusion.png", "errors.png"]
    for path in written:
        read_png(path)
    trained = numpy.eye(5)[None, None].repeat(4, axis=0)
    written.append(write_filters(tmp_path / "run" / "filters.png", numpy.ones((4, 1, 5, 5)), trained))
    written.append(write_curves(tmp_path / "run" / "curves.png", CLASSIC))
    names = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert names == ["confusion.png", "curves.png", "errors.png", "filters.png"]
    probabilities = softmax(numpy.array([[1000.0, 0.0], [0.0, 0.0]]))
    numpy.testing.assert_allclose(probabilities, [[1.0, 0.0], [0.5, 0.5]])
