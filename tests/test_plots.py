"""The image grids of `chainrule train`: every tile where the mosaic says, every label on it."""
import numpy as np
import pytest
from PIL import Image

from demos import plots


def test_tile_images_places_each_image_with_gaps_and_title_bands():
    images = np.arange(5 * 6, dtype=float).reshape(5, 6) + 1.0     # 5 images of 2×3
    mosaic, tops = plots.tile_images(images, (2, 3), cols=2, gap=1, band=2)
    # 3 rows of (band 2 + 2 pixels), 2 gaps; 2 columns of 3 pixels, 1 gap
    assert mosaic.shape == (3 * 4 + 2, 2 * 3 + 1)
    assert tops == [(2, 0), (2, 4), (7, 0), (7, 4), (12, 0)]
    filled = np.zeros(mosaic.shape, bool)
    for image, (top, left) in zip(images, tops):
        np.testing.assert_array_equal(mosaic[top:top + 2, left:left + 3], image.reshape(2, 3))
        filled[top:top + 2, left:left + 3] = True
    assert np.isnan(mosaic[~filled]).all()       # gaps, bands and the empty sixth tile


def test_tile_images_of_no_images_is_an_empty_row():
    mosaic, tops = plots.tile_images([], (4, 4), cols=3, gap=1)
    assert tops == [] and mosaic.shape == (4, 14) and np.isnan(mosaic).all()


@pytest.fixture
def captured(monkeypatch):
    """The figures the plot functions save, instead of files."""
    figures = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, path: figures.append(fig) or path)
    return figures


def _images(fig):
    (ax,) = fig.axes
    (image,) = ax.get_images()
    return ax, np.ma.filled(image.get_array().astype(float), np.nan)


def test_misclassified_labels_each_wrong_image_over_its_own_tile(captured):
    rng = np.random.default_rng(0)
    images = rng.random((40, 64))
    true = rng.integers(0, 3, 40)
    predicted = np.where(np.arange(40) % 3 == 0, (true + 1) % 3, true)   # every third wrong
    names = ["zero", "one", "two"]
    plots.misclassified(images, true, predicted, names, (8, 8), "unused.png", limit=6)
    (fig,) = captured
    ax, mosaic = _images(fig)
    wrong = np.flatnonzero(true != predicted)[:6]
    labels = ax.texts
    assert [t.get_text() for t in labels] == [
        f"pred {names[predicted[i]]}\ntrue {names[true[i]]}" for i in wrong]
    assert fig._suptitle.get_text() == "Misclassified test images (6 shown of 14)"
    for i, label in zip(wrong, labels):
        x, y = label.get_position()      # data coordinates: centre of the tile, just above it
        left, top = int(round(x - 3.5)), int(np.ceil(y))
        np.testing.assert_array_equal(mosaic[top:top + 8, left:left + 8],
                                      images[i].reshape(8, 8))


def test_misclassified_with_none_wrong_says_so(captured):
    plots.misclassified(np.zeros((3, 4)), [0, 1, 1], [0, 1, 1], ["a", "b"], (2, 2), "x.png")
    (fig,) = captured
    ax, _ = _images(fig)
    assert "every test image was classified correctly" in ax.texts[0].get_text()
    assert "0 shown of 0" in fig._suptitle.get_text()


def test_first_layer_weights_shows_each_column_on_one_scale(captured):
    W = np.random.default_rng(1).standard_normal((12, 7))            # 7 units of 3×4
    plots.first_layer_weights(W, (3, 4), "unused.png")
    (fig,) = captured
    ax, mosaic = _images(fig)
    (image,) = ax.get_images()
    assert image.norm.vmin == pytest.approx(0.5 * W.min())
    assert image.norm.vmax == pytest.approx(0.5 * W.max())
    tiles = mosaic[~np.isnan(mosaic)]
    assert tiles.size == W.size and np.isin(W.ravel(), tiles).all()
    assert "7 of 7 hidden units" in fig._suptitle.get_text()


def test_the_grids_are_written_as_pngs_of_the_expected_size(tmp_path):
    rng = np.random.default_rng(2)
    W = rng.standard_normal((784, 100)).astype(np.float32)
    path = plots.first_layer_weights(W, (28, 28), tmp_path / "weights.png")
    width, height = Image.open(path).size
    # ten 1-inch tiles a row at 100 dpi, 0.1 in between and around: about 11 in square
    assert 1050 <= width <= 1150 and 1080 <= height <= 1200


@pytest.mark.parametrize("shape", [(1, 10), (10, 1), (1, 784)])
def test_flat_images_make_a_figure_of_ordinary_size(captured, shape):
    # a non-square input is drawn as a [1, n] strip: its longer side sets the tile's size
    n = shape[0] * shape[1]
    rng = np.random.default_rng(3)
    plots.misclassified(rng.random((7, n)), np.zeros(7, int), np.ones(7, int), ["a", "b"], shape,
                        "unused.png")
    plots.first_layer_weights(rng.standard_normal((n, 12)), shape, "unused.png")
    for fig in captured:
        width, height = fig.get_size_inches()
        assert width <= 12 and height <= 16
