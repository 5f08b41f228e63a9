"""Tests of classic_loc.features.hog: equality with skimage.feature.hog, windows, scoring.

Tolerance against skimage: ``atol=1e-5`` (``rtol=0``) on the normalised
features, which lie in [0, 1]. Binning is exact (same float64 orientation
formula and bin edges), so the only differences are rounding: skimage sums
each cell's magnitudes in a C ``float`` (float32, up to 8 x 8 = 64 additions,
relative error < 64 * 2**-24 ~ 4e-6) and we sum in float64 and store float32;
observed differences are ~1e-6 at most.
"""

import math

import numpy as np
import pytest

skimage_data = pytest.importorskip("skimage.data")
from skimage.feature import hog as sk_hog  # noqa: E402

from classic_loc.features import (  # noqa: E402
    BLOCK_NORMS,
    hog_blocks,
    hog_cells,
    hog_grid,
    score_windows,
    window_features,
    window_view,
)
from classic_loc.features import hog as hog_module  # noqa: E402

ATOL = 1e-5


def _pair(v):
    return (v, v) if np.ndim(v) == 0 else tuple(v)


def _skimage(image, cell, block, norm, n_bins=9):
    return sk_hog(image, orientations=n_bins, pixels_per_cell=_pair(cell), cells_per_block=_pair(block),
                  block_norm=norm, feature_vector=False, channel_axis=-1 if image.ndim == 3 else None)


def _assert_matches_skimage(image, cell, block, norm, n_bins=9):
    ours = hog_grid(image, cell, block, n_bins, norm)
    ref = _skimage(image, cell, block, norm, n_bins)
    assert ours.dtype == np.float32
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=0, atol=ATOL)


def _random_images():
    rng = np.random.default_rng(0)
    return {
        "uint8 101x83": rng.integers(0, 256, (101, 83), dtype=np.uint8),
        "float64 77x90": rng.random((77, 90)),
        "float32 64x70": rng.random((64, 70)).astype(np.float32),
        # few grey levels: many gradients exactly on bin edges (0, 45, 90 degrees)
        "uint8 levels": (rng.integers(0, 3, (60, 66)) * 20).astype(np.uint8),
        "float levels": (rng.integers(0, 3, (60, 66)) * 20).astype(np.uint8) / 255.0,
    }


CELL_BLOCK = [(8, 2), (6, 3), (5, 1), (4, 2), ((4, 6), (2, 3))]


# --------------------------------------------------------------------------- #
# equality with skimage


@pytest.mark.parametrize("norm", BLOCK_NORMS)
@pytest.mark.parametrize("cell, block", CELL_BLOCK)
@pytest.mark.parametrize("name", list(_random_images()))
def test_random_images_match_skimage(name, cell, block, norm):
    _assert_matches_skimage(_random_images()[name], cell, block, norm)


@pytest.mark.parametrize("n_bins", [4, 6, 7, 8, 12, 39])
@pytest.mark.parametrize("name", ["uint8 101x83", "uint8 levels", "float levels", "float32 64x70"])
def test_bin_counts_match_skimage(name, n_bins):
    # 4/6/8/12 bins have edges at 45 or 90 degrees, hit exactly by integer
    # gradients; for 39 bins, 180 / 39 * 39 rounds below 180
    _assert_matches_skimage(_random_images()[name], 8, 2, "L1", n_bins)


@pytest.mark.parametrize("norm", BLOCK_NORMS)
@pytest.mark.parametrize("cell, block", [(8, 2), (8, 3), (16, 2), (7, 2)])
def test_camera_matches_skimage(cell, block, norm):
    _assert_matches_skimage(skimage_data.camera(), cell, block, norm)


def test_camera_float_matches_skimage():
    image = skimage_data.camera()
    _assert_matches_skimage(image / 255.0, 8, 2, "L2-Hys")
    _assert_matches_skimage(image.astype(np.float32) / 255, 8, 3, "L1")


@pytest.mark.parametrize("norm", BLOCK_NORMS)
@pytest.mark.parametrize("cell, block", [(8, 2), (6, 3)])
def test_astronaut_rgb_matches_skimage(cell, block, norm):
    # channel_axis=-1: per pixel, the gradient of the channel of largest magnitude
    _assert_matches_skimage(skimage_data.astronaut(), cell, block, norm)


def test_rgb_float_and_ties_match_skimage():
    rng = np.random.default_rng(1)
    _assert_matches_skimage(rng.random((50, 61, 3)), 5, 2, "L2-Hys")
    _assert_matches_skimage(rng.random((48, 40, 4)).astype(np.float32), 8, 2, "L2")
    # equal magnitudes, different directions: the first channel must win
    rows, cols = np.mgrid[:40, :48]
    tied = np.stack([rows * 5 % 256, cols * 5 % 256, (rows + cols) * 3 % 256], axis=2).astype(np.uint8)
    _assert_matches_skimage(tied, 8, 2, "L1")
    _assert_matches_skimage(tied[:, :, ::-1].copy(), 8, 2, "L1")
    _assert_matches_skimage(tied / 255.0, 8, 2, "L1")


@pytest.mark.parametrize("name", ["uint8 101x83", "float64 77x90", "float levels"])
def test_one_cell_row_per_band_matches_skimage(name, monkeypatch):
    # hog_cells works in bands of cell rows with a pixel of context: force one
    # cell row per band (the default has several per band on large images only)
    monkeypatch.setattr(hog_module, "_BAND_PIXELS", 1)
    _assert_matches_skimage(_random_images()[name], 8, 2, "L2-Hys")
    _assert_matches_skimage(_random_images()[name], (5, 7), (3, 2), "L1")
    _assert_matches_skimage(skimage_data.astronaut()[:100, :90], 6, 2, "L2")


def test_bands_do_not_change_interpolated_or_signed_cells(monkeypatch):
    image = skimage_data.camera()[:200, :150]
    expected = [hog_cells(image, 8, 9, signed=s, interpolate=i) for s in (False, True) for i in (False, True)]
    monkeypatch.setattr(hog_module, "_BAND_PIXELS", 1)
    banded = [hog_cells(image, 8, 9, signed=s, interpolate=i) for s in (False, True) for i in (False, True)]
    for a, b in zip(expected, banded):
        np.testing.assert_array_equal(a, b)


def test_hog_cells_and_blocks_compose():
    image = skimage_data.camera()[:100, :120]
    cells = hog_cells(image, 8, 9)
    assert cells.shape == (12, 15, 9) and cells.dtype == np.float32
    np.testing.assert_array_equal(hog_blocks(cells, 2, "L2-Hys"), hog_grid(image, 8, 2, 9, "L2-Hys"))
    assert np.all(cells >= 0)


# --------------------------------------------------------------------------- #
# windows are slices of the full-image grid


def test_window_slice_matches_skimage_of_crop_except_border_blocks():
    image = skimage_data.camera()
    grid = hog_grid(image, 8, 2, 9, "L2-Hys")
    r0, c0, height, width = 160, 200, 128, 64  # a 64 x 128 window at cell (20, 25)
    window = grid[r0 // 8:r0 // 8 + height // 8 - 1, c0 // 8:c0 // 8 + width // 8 - 1]
    ref = _skimage(image[r0:r0 + height, c0:c0 + width], 8, 2, "L2-Hys")
    assert window.shape == ref.shape == (15, 7, 2, 2, 9)
    # Blocks of interior cells only: identical. The blocks touching the window's
    # border differ, because in the full image the border pixels of the window
    # get their gradient from the pixels outside it, whereas skimage's hog of
    # the crop sets the gradient of the crop's first/last rows and columns to 0.
    np.testing.assert_allclose(window[1:-1, 1:-1], ref[1:-1, 1:-1], rtol=0, atol=ATOL)
    border = np.ones(ref.shape[:2], bool)
    border[1:-1, 1:-1] = False
    assert np.abs(window[border] - ref[border]).max() > 1e-3
    # the window's feature vector is the slice's ravel
    features = window_features(grid, (height // 8, width // 8))
    assert features.shape[-1] == 3780
    np.testing.assert_array_equal(features[r0 // 8, c0 // 8], window.ravel())


def test_window_at_image_corner_matches_skimage_exactly():
    # at the image's top-left corner the two border sides agree (gradient 0)
    image = skimage_data.camera()
    grid = hog_grid(image)
    ref = _skimage(image[:128, :64], 8, 2, "L2-Hys")
    np.testing.assert_allclose(grid[:15, :7][:-1, :-1], ref[:-1, :-1], rtol=0, atol=ATOL)


# --------------------------------------------------------------------------- #
# window features and scores against a naive loop


def _naive_scores(grid, window_cells, weights, bias):
    b_rows, b_cols = grid.shape[2:4]
    h, w = window_cells[0] - b_rows + 1, window_cells[1] - b_cols + 1
    n_r, n_c = grid.shape[0] - h + 1, grid.shape[1] - w + 1
    out = np.zeros((max(n_r, 0), max(n_c, 0)) + weights.shape[1:])
    for r in range(n_r):
        for c in range(n_c):
            out[r, c] = grid[r:r + h, c:c + w].ravel().astype(np.float64) @ weights + bias
    return out


@pytest.mark.parametrize("grid_shape, window_cells", [((9, 11, 2, 2, 9), (4, 5)),
                                                      ((10, 8, 2, 3, 5), (5, 4)),
                                                      ((7, 7, 1, 1, 9), (7, 3)),
                                                      ((6, 9, 3, 3, 9), (6, 6))])
@pytest.mark.parametrize("n_models", [None, 1, 3, 12])
@pytest.mark.parametrize("small_chunks", [False, True])
def test_score_windows_matches_naive_loop(grid_shape, window_cells, n_models, small_chunks, monkeypatch):
    if small_chunks:  # one window row per response chunk / per copied band
        monkeypatch.setattr(hog_module, "_RESPONSE_BYTES", 1)
        monkeypatch.setattr(hog_module, "_BAND_BYTES", 1)
    rng = np.random.default_rng(2)
    grid = rng.random(grid_shape).astype(np.float32)
    h, w = window_cells[0] - grid_shape[2] + 1, window_cells[1] - grid_shape[3] + 1
    dim = h * w * int(np.prod(grid_shape[2:]))
    weights = rng.standard_normal((dim,) if n_models is None else (dim, n_models))
    bias = 0.5 if n_models is None else rng.standard_normal(n_models)
    ref = _naive_scores(grid, window_cells, weights, bias)

    scores = score_windows(grid, window_cells, weights, bias)
    assert scores.shape == ref.shape and scores.dtype == np.float32
    np.testing.assert_allclose(scores, ref, rtol=1e-4, atol=1e-4)

    features = window_features(grid, window_cells)
    assert features.shape == ref.shape[:2] + (dim,)
    for r in range(features.shape[0]):
        for c in range(features.shape[1]):
            np.testing.assert_array_equal(features[r, c], grid[r:r + h, c:c + w].ravel())
    np.testing.assert_allclose(features.reshape(-1, dim) @ weights + bias, ref.reshape(-1, *ref.shape[2:]),
                               rtol=1e-4, atol=1e-4)


def test_window_view_is_a_view():
    grid = hog_grid(skimage_data.camera()[:200, :160])
    view = window_view(grid, (16, 8))
    assert view.shape == (24 - 15 + 1, 19 - 7 + 1, 15, 7, 2, 2, 9)
    assert np.shares_memory(view, grid)
    np.testing.assert_array_equal(view[3, 4], grid[3:18, 4:11])


def test_score_windows_on_real_grid_both_methods():
    grid = hog_grid(skimage_data.camera()[:256, :200])
    rng = np.random.default_rng(3)
    for n_models in (4, 9):  # per-block responses, then copied bands of windows
        weights = rng.standard_normal((3780, n_models)).astype(np.float32)
        ref = window_features(grid, (16, 8)).reshape(-1, 3780).astype(np.float64) @ weights
        scores = score_windows(grid, (16, 8), weights, -1.0)
        np.testing.assert_allclose(scores.reshape(-1, n_models), ref - 1.0, rtol=1e-4, atol=1e-4)


# --------------------------------------------------------------------------- #
# shapes


def test_sizes_not_divisible_by_the_cell_size():
    image = np.random.default_rng(4).integers(0, 256, (37, 53), dtype=np.uint8)
    assert hog_cells(image, 8).shape == (4, 6, 9)
    assert hog_cells(image, (5, 7), 6).shape == (7, 7, 6)
    grid = hog_grid(image, 8, 2)
    assert grid.shape == (3, 5, 2, 2, 9) == _skimage(image, 8, 2, "L2-Hys").shape
    assert hog_grid(image, (4, 8), (3, 2)).shape == (7, 5, 3, 2, 9)


def test_small_images_give_empty_results():
    tiny = np.full((7, 30), 100, np.uint8)  # less than one cell high
    assert hog_cells(tiny, 8).shape == (0, 3, 9)
    assert hog_grid(tiny, 8, 2).shape == (0, 2, 2, 2, 9)
    one_cell = np.zeros((12, 12), np.uint8)  # one cell, smaller than a block
    assert hog_grid(one_cell, 8, 2).shape == (0, 0, 2, 2, 9)
    assert hog_grid(np.zeros((0, 0), np.uint8)).shape == (0, 0, 2, 2, 9)

    # a level smaller than the window: no positions, not an error
    grid = hog_grid(np.zeros((100, 200), np.uint8))  # (11, 24) blocks
    assert window_view(grid, (16, 8)).shape == (0, 18, 15, 7, 2, 2, 9)
    assert window_features(grid, (16, 8)).shape == (0, 18, 3780)
    assert score_windows(grid, (16, 8), np.ones((3780, 4))).shape == (0, 18, 4)
    assert score_windows(grid, (16, 8), np.ones(3780)).shape == (0, 18)
    empty = hog_grid(tiny)
    assert score_windows(empty, (16, 8), np.ones((3780, 2))).shape == (0, 0, 2)
    assert window_features(empty, (16, 8)).shape == (0, 0, 3780)


def test_bad_arguments():
    grid = hog_grid(np.zeros((64, 64), np.uint8))
    with pytest.raises(ValueError, match="smaller than a block"):
        window_view(grid, (1, 4))
    with pytest.raises(ValueError, match="weights must have shape"):
        score_windows(grid, (4, 4), np.ones(10))
    with pytest.raises(ValueError, match="block_norm"):
        hog_grid(np.zeros((64, 64)), block_norm="L3")
    with pytest.raises(ValueError, match="cell_size"):
        hog_cells(np.zeros((64, 64)), cell_size=0)
    with pytest.raises(ValueError, match="image of shape"):
        hog_cells(np.zeros((4, 64, 64, 3)))


# --------------------------------------------------------------------------- #
# orientation interpolation and signed orientations, against a slow reference


def _reference_cells(image, cell, n_bins, signed, interpolate):
    """Per-pixel Python loop: skimage's gradients, then one vote (or two, interpolated)."""
    img = np.asarray(image, dtype=np.float64)
    g_row = np.zeros_like(img)
    g_row[1:-1] = img[2:] - img[:-2]
    g_col = np.zeros_like(img)
    g_col[:, 1:-1] = img[:, 2:] - img[:, :-2]
    period = 360.0 if signed else 180.0
    width = period / n_bins
    n_r, n_c = img.shape[0] // cell, img.shape[1] // cell
    cells = np.zeros((n_r, n_c, n_bins))
    for r in range(n_r * cell):
        for c in range(n_c * cell):
            magnitude = math.hypot(g_row[r, c], g_col[r, c])
            theta = math.degrees(math.atan2(g_row[r, c], g_col[r, c])) % period
            hist = cells[r // cell, c // cell]
            if interpolate:  # bin k is centred on (k + 0.5) * width, circularly
                t = theta / width - 0.5
                lower = math.floor(t)
                frac = t - lower
                hist[lower % n_bins] += magnitude * (1 - frac)
                hist[(lower + 1) % n_bins] += magnitude * frac
            else:
                hist[min(int(theta // width), n_bins - 1)] += magnitude
    return cells / (cell * cell)


@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("interpolate", [False, True])
@pytest.mark.parametrize("dtype", [np.uint8, np.float64, np.float32])
def test_cells_match_slow_reference(dtype, interpolate, signed):
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, (41, 50)).astype(dtype)
    if dtype != np.uint8:
        image = image / dtype(255) + rng.random(image.shape).astype(dtype) * dtype(1e-3)
    for n_bins in (9, 8):
        ours = hog_cells(image, 8, n_bins, signed=signed, interpolate=interpolate)
        ref = _reference_cells(image, 8, n_bins, signed, interpolate)
        assert ours.shape == ref.shape == (5, 6, n_bins)
        np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5 * ref.max())


def test_interpolation_keeps_the_mass_and_smooths():
    image = skimage_data.camera()[:96, :96]
    hard = hog_cells(image)
    soft = hog_cells(image, interpolate=True)
    np.testing.assert_allclose(soft.sum(axis=2), hard.sum(axis=2), rtol=1e-5)
    assert not np.allclose(soft, hard)
    grid = hog_grid(image, interpolate=True, block_norm="L2-Hys")
    assert grid.shape == (11, 11, 2, 2, 9) and np.isfinite(grid).all()
