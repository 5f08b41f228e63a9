"""Tests of classic_loc.features.fhog against a plain-Python transliteration of features.cc.

Tolerance: ``atol=1e-5`` (``rtol=0``). The features lie in [0, 0.85]; the
reference computes everything in float64, we vote in float64 (bincount; the
votes are summed in another order, ~1e-15 relative; the bilinear weights come
from a different but equivalent formula, ~1e-16) and normalise, truncate and
sum in float32 (relative ~1e-7, i.e. < 1e-7 absolute on these values).
Orientation bins are identical (same float64 dot products and comparisons),
so there is no rare large difference. Observed: 6.4e-8 at most.
"""

import math
import time

import cv2
import numpy as np
import pytest

from classic_loc.features import hog as hog_module
from classic_loc.features.fhog import FHOG_FEATURES, fhog_grid

ATOL = 1e-5

# --------------------------------------------------------------------------- #
# the reference: voc-release features.cc, transliterated loop by loop

UU = [1.0000, 0.9397, 0.7660, 0.500, 0.1736, -0.1736, -0.5000, -0.7660, -0.9397]
VV = [0.0000, 0.3420, 0.6428, 0.8660, 0.9848, 0.9848, 0.8660, 0.6428, 0.3420]
EPS = 0.0001


def _round(x):
    """C's round(): halves away from zero (Python's round() goes to even)."""
    return int(math.floor(x + 0.5))


def features_cc(image, sbin):
    """features.cc (voc-release 4, 31 features) in plain Python.

    ``image`` is (rows, cols) or (rows, cols, C), taken as float64 (the
    reference takes a 3-channel double image of 0-255 values; a gray image is
    the same as 3 equal channels). MATLAB's column-major ``im[x * dims0 + y]``
    is ``im[y][x]`` here. Returns a (out0, out1, 31) array, ``[y][x][f]``.
    ``sbin`` may be a pair ``(rows, cols)`` (our only change: ``sbin`` on the
    row axis ``y`` is ``sbin[0]``, on the column axis ``x`` ``sbin[1]``).
    """
    sbin_y, sbin_x = (sbin, sbin) if np.ndim(sbin) == 0 else sbin
    im = np.asarray(image, dtype=np.float64)
    if im.ndim == 2:
        im = im[:, :, None]
    dims0, dims1, n_ch = im.shape
    im = im.tolist()
    blocks = [_round(dims0 / sbin_y), _round(dims1 / sbin_x)]
    hist = [[[0.0] * 18 for _ in range(blocks[1])] for _ in range(blocks[0])]  # [y][x][o]
    norm = [[0.0] * blocks[1] for _ in range(blocks[0])]
    out = [max(blocks[0] - 2, 0), max(blocks[1] - 2, 0), 31]
    visible = [blocks[0] * sbin_y, blocks[1] * sbin_x]

    for x in range(1, visible[1] - 1):
        for y in range(1, visible[0] - 1):
            sx, sy = min(x, dims1 - 2), min(y, dims0 - 2)
            v = dx = dy = None
            for ch in range(n_ch):
                dy2 = im[sy + 1][sx][ch] - im[sy - 1][sx][ch]
                dx2 = im[sy][sx + 1][ch] - im[sy][sx - 1][ch]
                v2 = dx2 * dx2 + dy2 * dy2
                if v is None or v2 > v:
                    v, dx, dy = v2, dx2, dy2

            # snap to one of 18 orientations
            best_dot = 0.0
            best_o = 0
            for o in range(9):
                dot = UU[o] * dx + VV[o] * dy
                if dot > best_dot:
                    best_dot = dot
                    best_o = o
                elif -dot > best_dot:
                    best_dot = -dot
                    best_o = o + 9

            # add to 4 histograms around pixel using linear interpolation
            xp = (x + 0.5) / sbin_x - 0.5
            yp = (y + 0.5) / sbin_y - 0.5
            ixp = math.floor(xp)
            iyp = math.floor(yp)
            vx0 = xp - ixp
            vy0 = yp - iyp
            vx1 = 1.0 - vx0
            vy1 = 1.0 - vy0
            v = math.sqrt(v)
            if ixp >= 0 and iyp >= 0:
                hist[iyp][ixp][best_o] += vx1 * vy1 * v
            if ixp + 1 < blocks[1] and iyp >= 0:
                hist[iyp][ixp + 1][best_o] += vx0 * vy1 * v
            if ixp >= 0 and iyp + 1 < blocks[0]:
                hist[iyp + 1][ixp][best_o] += vx1 * vy0 * v
            if ixp + 1 < blocks[1] and iyp + 1 < blocks[0]:
                hist[iyp + 1][ixp + 1][best_o] += vx0 * vy0 * v

    # energy in each block by summing over orientations
    for o in range(9):
        for y in range(blocks[0]):
            for x in range(blocks[1]):
                s = hist[y][x][o] + hist[y][x][o + 9]
                norm[y][x] += s * s

    def block(y, x):  # p = norm + x * blocks[0] + y; *p + *(p+1) + *(p+blocks[0]) + *(p+blocks[0]+1)
        return norm[y][x] + norm[y + 1][x] + norm[y][x + 1] + norm[y + 1][x + 1]

    feat = np.zeros(out, dtype=np.float64)
    for x in range(out[1]):
        for y in range(out[0]):
            n1 = 1.0 / math.sqrt(block(y + 1, x + 1) + EPS)
            n2 = 1.0 / math.sqrt(block(y, x + 1) + EPS)
            n3 = 1.0 / math.sqrt(block(y + 1, x) + EPS)
            n4 = 1.0 / math.sqrt(block(y, x) + EPS)
            t1 = t2 = t3 = t4 = 0.0
            src = hist[y + 1][x + 1]
            f = 0
            # contrast-sensitive features
            for o in range(18):
                h1 = min(src[o] * n1, 0.2)
                h2 = min(src[o] * n2, 0.2)
                h3 = min(src[o] * n3, 0.2)
                h4 = min(src[o] * n4, 0.2)
                feat[y, x, f] = 0.5 * (h1 + h2 + h3 + h4)
                t1 += h1
                t2 += h2
                t3 += h3
                t4 += h4
                f += 1
            # contrast-insensitive features
            for o in range(9):
                total = src[o] + src[o + 9]
                h1 = min(total * n1, 0.2)
                h2 = min(total * n2, 0.2)
                h3 = min(total * n3, 0.2)
                h4 = min(total * n4, 0.2)
                feat[y, x, f] = 0.5 * (h1 + h2 + h3 + h4)
                f += 1
            # texture features
            feat[y, x, f:f + 4] = [0.2357 * t1, 0.2357 * t2, 0.2357 * t3, 0.2357 * t4]
    return feat


# --------------------------------------------------------------------------- #
# helpers

RNG = np.random.default_rng(0)
GRAY = RNG.integers(0, 256, (40, 56), dtype=np.uint8)
# smoother content too (so the 0.2 truncation does not hit every value)
SMOOTH = cv2.GaussianBlur(RNG.integers(0, 256, (40, 56), dtype=np.uint8), (0, 0), 2.0)
RGB = RNG.integers(0, 256, (40, 56, 3), dtype=np.uint8)
# few grey levels: many exact ties between channels and directions (dx == 0, dy == 0)
LEVELS = (RNG.integers(0, 3, (40, 56)) * 40).astype(np.uint8)


def _cells(image, cell):
    grid = fhog_grid(image, cell)
    assert grid.dtype == np.float32 and grid.ndim == 5 and grid.shape[2:] == (1, 1, FHOG_FEATURES)
    return grid[:, :, 0, 0]


# --------------------------------------------------------------------------- #
# equality with the reference


@pytest.mark.parametrize("cell", [8, 4, 5, 3, 6])
@pytest.mark.parametrize("name", ["gray", "smooth", "rgb", "levels", "rgb levels", "gray float64",
                                  "rgb float32", "float noise"])
def test_matches_reference_whole_cells(name, cell):
    """On an image of whole cells, our inner cells are the reference's output exactly."""
    image = {
        "gray": GRAY,
        "smooth": SMOOTH,
        "rgb": RGB,
        "levels": LEVELS,
        "rgb levels": np.stack([LEVELS, LEVELS[::-1], LEVELS[:, ::-1]], axis=2),
        "gray float64": GRAY.astype(np.float64),
        "rgb float32": RGB.astype(np.float32),
        "float noise": RNG.random((40, 56, 3)) * 255,
    }[name]
    rows, cols = image.shape[0] // cell * cell, image.shape[1] // cell * cell
    image = image[:rows, :cols]
    ours = _cells(image, cell)
    assert ours.shape[:2] == (rows // cell, cols // cell)
    ref = features_cc(image, cell)
    assert ref.shape == (rows // cell - 2, cols // cell - 2, 31)
    np.testing.assert_allclose(ours[1:-1, 1:-1], ref, rtol=0, atol=ATOL)


@pytest.mark.parametrize("shape, cell", [((43, 61), 8), ((45, 59), 8), ((41, 58), 4), ((44, 52), 6),
                                         ((40, 56), 7), ((34, 29), 5)])
@pytest.mark.parametrize("color", [False, True])
def test_partial_cells(shape, cell, color):
    """Sizes not divisible by the cell size: shape, cropping, and where the reference differs."""
    image = RNG.integers(0, 256, shape + ((3,) if color else ()), dtype=np.uint8)
    ours = _cells(image, cell)
    n_rows, n_cols = shape[0] // cell, shape[1] // cell
    assert ours.shape == (n_rows, n_cols, 31)
    # cropped to whole cells, the gradient of the last kept row/column using the next one
    crop = image[:n_rows * cell + 1, :n_cols * cell + 1]
    np.testing.assert_array_equal(_cells(crop, cell), ours)
    # the reference rounds the cell count (partial last cell when rounding up) and
    # drops the last visible pixel row/column: all but our last inner cell agree
    ref = features_cc(image, cell)
    assert ref.shape == (_round(shape[0] / cell) - 2, _round(shape[1] / cell) - 2, 31)
    np.testing.assert_allclose(ours[1:-2, 1:-2], ref[:n_rows - 3, :n_cols - 3], rtol=0, atol=ATOL)
    # ... and so do they with the reference on our whole cells
    ref_crop = features_cc(image[:n_rows * cell, :n_cols * cell], cell)
    np.testing.assert_allclose(ours[1:-2, 1:-2], ref_crop[:-1, :-1], rtol=0, atol=ATOL)


@pytest.mark.parametrize("cell", [(4, 6), (8, 5), (3, 7)])
def test_rectangular_cells(cell):
    """A (rows, cols) cell size, against the reference with per-axis cell sizes."""
    for image in (SMOOTH, RGB):
        image = image[:image.shape[0] // cell[0] * cell[0], :image.shape[1] // cell[1] * cell[1]]
        ours = _cells(image, cell)
        assert ours.shape[:2] == (image.shape[0] // cell[0], image.shape[1] // cell[1])
        np.testing.assert_allclose(ours[1:-1, 1:-1], features_cc(image, cell), rtol=0, atol=ATOL)


# --------------------------------------------------------------------------- #
# dtypes, degenerate images


def test_uint8_equals_float():
    for image in (GRAY, RGB, LEVELS):
        expected = _cells(image, 8)
        for dtype in (np.float64, np.float32, np.int32, np.uint16):
            np.testing.assert_allclose(_cells(image.astype(dtype), 8), expected, rtol=0, atol=ATOL)


def test_bool_image():
    image = GRAY > 128
    np.testing.assert_allclose(_cells(image, 8), _cells(image.astype(np.uint8), 8), rtol=0, atol=ATOL)


@pytest.mark.parametrize("shape, cell, expected", [
    ((5, 5), 8, (0, 0)), ((7, 100), 8, (0, 12)), ((100, 3), 4, (25, 0)), ((0, 0), 8, (0, 0)),
    ((3, 3, 3), 8, (0, 0)), ((8, 8), 8, (1, 1)), ((9, 17), 8, (1, 2)), ((1, 1), 1, (1, 1)),
    ((2, 3), 1, (2, 3)),
])
def test_small_images(shape, cell, expected):
    image = RNG.integers(0, 256, shape, dtype=np.uint8)
    grid = fhog_grid(image, cell)
    assert grid.shape == expected + (1, 1, 31)
    assert grid.dtype == np.float32
    assert np.isfinite(grid).all()
    # float path too
    np.testing.assert_allclose(fhog_grid(image.astype(np.float64), cell), grid, rtol=0, atol=ATOL)


@pytest.mark.parametrize("value", [0, 1, 137, 255])
def test_constant_image_is_zero(value):
    for shape in ((40, 56), (43, 61, 3)):
        image = np.full(shape, value, dtype=np.uint8)
        assert not _cells(image, 8).any()
        assert not _cells(image.astype(np.float64), 4).any()


def test_bad_arguments():
    with pytest.raises(ValueError):
        fhog_grid(GRAY, 0)
    with pytest.raises(ValueError):
        fhog_grid(GRAY, 8, truncation=0)
    with pytest.raises(ValueError):
        fhog_grid(np.zeros((4, 4, 4, 4)), 2)
    with pytest.raises(ValueError):
        fhog_grid(GRAY.astype(complex), 8)


def test_features_are_bounded():
    """Each feature is a sum of 4 truncated values (0.5 * 4 * 0.2) or 18 (0.2357 * 18 * 0.2)."""
    cells = _cells(RNG.integers(0, 256, (120, 160), dtype=np.uint8), 8)
    assert cells.min() >= 0
    assert cells[..., :27].max() <= 0.4 + 1e-6
    assert cells[..., 27:].max() <= 0.2357 * 18 * 0.2 + 1e-6


def test_truncation():
    loose = fhog_grid(SMOOTH, 4, truncation=10.0)[:, :, 0, 0]
    strict = fhog_grid(SMOOTH, 4, truncation=0.05)[:, :, 0, 0]
    assert strict[..., :27].max() <= 0.5 * 4 * 0.05 + 1e-6
    assert loose[..., :27].max() > 0.4


# --------------------------------------------------------------------------- #
# symmetry

# Flipping the image left-right negates dx and keeps dy, so the gradient of
# angle a (from +columns towards +rows) becomes 180 - a: the reference's
# directions (uu, vv)[o] of 20 * o degrees map to 20 * (9 - o), i.e. for
# o >= 1 to direction 9 - o with the same dot (uu[9 - o] == -uu[o] and
# vv[9 - o] == vv[o] exactly in the table, so the float dots are bit-identical),
# and for o == 0 to direction 0 with the opposite sign. Bin o (positive dot)
# -> 9 - o, bin o + 9 (negative) -> 18 - o, bin 0 <-> 9: b -> (9 - b) mod 18.
# Insensitive bins: o -> (9 - o) mod 9. Texture: the block norms n1 (below-right)
# <-> n3 (below-left) and n2 (above-right) <-> n4 (above-left). Cell j -> n_cols - 1 - j.
# Exact only without exact ties between two directions' |dot| (the reference
# takes the first direction, which a mirror reverses): dx == 0 ties directions
# 4 and 5 (80 and 100 degrees), so the images are random floats.
MIRROR = np.array([(9 - b) % 18 for b in range(18)] + [18 + (9 - o) % 9 for o in range(9)] + [29, 30, 27, 28])


def test_mirror_permutation_is_an_involution():
    assert sorted(MIRROR) == list(range(31))
    np.testing.assert_array_equal(MIRROR[MIRROR], np.arange(31))


@pytest.mark.parametrize("cell", [8, 5, 4])
@pytest.mark.parametrize("channels", [0, 3])
def test_mirror_symmetry(cell, channels):
    shape = (8 * cell, 11 * cell) + ((channels,) if channels else ())
    image = cv2.GaussianBlur(RNG.random(shape) * 255, (0, 0), 1.0) + RNG.random(shape)
    ours = _cells(image, cell)
    flipped = _cells(image[:, ::-1], cell)
    np.testing.assert_allclose(flipped[:, ::-1][..., MIRROR], ours, rtol=0, atol=ATOL)
    # vertical flip: dy negated, dx kept: angle a -> -a; direction o >= 1 -> 9 - o
    # with the opposite sign, direction 0 unchanged: b -> (18 - b) mod 18;
    # texture n1 (below-right) <-> n2 (above-right), n3 <-> n4
    vflip = np.array([(18 - b) % 18 for b in range(18)] + [18 + (9 - o) % 9 for o in range(9)] + [28, 27, 30, 29])
    np.testing.assert_allclose(_cells(image[::-1], cell)[::-1][..., vflip], ours, rtol=0, atol=ATOL)


# --------------------------------------------------------------------------- #
# use with the scan, speed


def test_windows_are_slices():
    """block size 1: a window of wc cells is wc grid positions; hog.window_view applies."""
    grid = fhog_grid(GRAY, 4)
    windows = hog_module.window_view(grid, (3, 5))
    assert windows.shape == (10 - 3 + 1, 14 - 5 + 1, 3, 5, 1, 1, 31)
    np.testing.assert_array_equal(windows[2, 4], grid[2:5, 4:9])
    weights = RNG.standard_normal(3 * 5 * 31)
    scores = hog_module.score_windows(grid, (3, 5), weights, 0.5)
    np.testing.assert_allclose(scores[2, 4], grid[2:5, 4:9].ravel() @ weights.astype(np.float32) + 0.5,
                               rtol=1e-5, atol=1e-4)


def test_speed_480x640():
    """Single thread, 480 x 640 uint8 gray: well under 15 ms (median)."""
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        image = RNG.integers(0, 256, (480, 640), dtype=np.uint8)
        image = cv2.GaussianBlur(image, (0, 0), 1.5)
        fhog_grid(image)  # LUTs
        times = []
        for _ in range(15):
            t0 = time.perf_counter()
            fhog_grid(image)
            times.append(time.perf_counter() - t0)
    finally:
        cv2.setNumThreads(threads)
    median = float(np.median(times))
    print(f"fhog_grid 480x640 uint8: median {median * 1e3:.2f} ms")
    assert median < 0.030  # generous for loaded CI machines; the target is < 15 ms
