"""FHOG: the HOG variant of Felzenszwalb et al. (the DPM's and dlib's features).

Felzenszwalb, Girshick, McAllester and Ramanan, "Object Detection with
Discriminatively Trained Part Based Models", PAMI 2010, section 6; the
reference implementation is ``features.cc`` of voc-release (4 and later; the
32nd "truncation" feature of release 5 is not computed) and dlib's
``fhog.h``. Each cell gets 31 features::

    grid = fhog_grid(image, cell_size)
    grid.shape == (n_cells_rows, n_cells_cols, 1, 1, 31)

the layout of :func:`~classic_loc.features.hog.hog_grid` with 1 x 1 "blocks":
a window of ``wr x wc`` cells at cell ``(r, c)`` is ``grid[r:r + wr, c:c + wc]``
(block_size 1, so :func:`~classic_loc.features.hog.window_view` and
:func:`~classic_loc.features.hog.score_windows` apply unchanged).

Features of a cell, in order (``h`` its 18-bin histogram, ``N1..N4`` the
inverse norms of the four 2 x 2 blocks of cells holding it, ``T = 0.2``)::

    [0:18]   0.5 * sum_k min(h[b] * Nk, T)                 contrast-sensitive
    [18:27]  0.5 * sum_k min((h[b] + h[b + 9]) * Nk, T)    contrast-insensitive
    [27:31]  0.2357 * sum_b min(h[b] * Nk, T), k = 1..4    texture

with ``Nk = 1 / sqrt(E(block k) + 1e-4)``, ``E(block)`` the sum over its four
cells of ``sum_{b<9} (h[b] + h[b + 9])**2``; block 1 is the cell and its
right, lower and lower-right neighbours (the block below-right of the cell),
block 2 above-right, block 3 below-left, block 4 above-left (the reference's
``n1 .. n4``). The regulariser ``1e-4`` is on the scale of the image values:
uint8 images (0-255), as the reference; a float image in [0, 1] should be
multiplied by 255 to give the same features.

Histograms (as the reference)
-----------------------------
- gradients ``dx`` (along columns) and ``dy`` (along rows) are centred
  differences; for a colour image, per pixel the channel with the largest
  ``dx**2 + dy**2`` (the first channel on ties);
- orientation: the gradient is snapped to the nearest of 18 directions
  ``20 * b`` degrees (measured from +columns towards +rows, i.e. clockwise on
  screen): among the 9 unit vectors ``(uu[o], vv[o])`` (4-decimal cos/sin of
  ``20 * o`` degrees) the one with the largest ``|uu[o] * dx + vv[o] * dy|``
  (the first on ties), bin ``o`` if that dot is positive, ``o + 9`` if not;
- the magnitude ``sqrt(dx**2 + dy**2)`` is split bilinearly among the 4
  cells whose centres are nearest: pixel ``y`` (its centre at ``y + 0.5``)
  gives the cell centred at ``(i + 0.5) * cell_size`` the weight
  ``max(0, 1 - |y + 0.5 - (i + 0.5) * cell_size| / cell_size)``, the same
  along columns;
- the pixels on the image's 1-pixel border contribute nothing.

The tie rule makes the features not exactly mirror-symmetric: a gradient
with ``dx == 0`` (common in uint8 images) is as close to 80 as to 100 degrees
and goes to bin 4, also in the mirrored image. Without ties, flipping the
image left-right permutes the bins ``b -> (9 - b) % 18`` (see the tests).

Geometry (where this differs from the reference)
------------------------------------------------
Output cell ``(i, j)`` is the cell of pixels ``[i * c_rows, (i + 1) *
c_rows) x [j * c_cols, (j + 1) * c_cols)`` (its centre is the peak of its
bilinear footprint, which spans half a cell more on each side): **the
pixel origin of cell (0, 0) is (0, 0)**, as for ``hog_grid``, and an
``M x N`` image gives ``(M // c_rows, N // c_cols)`` cells (the image is
cropped to whole cells; the gradient of the last kept row/column still uses
the first cropped one). Pixels outside the kept cells contribute nothing,
and the cells' neighbours outside the grid are taken as empty (zero
histogram and energy) for the bilinear votes and the block norms.

The reference instead uses ``B = round(M / c)`` cells (a partial last cell
when rounding up, filled from gradients clamped to the image), ignores the
last visible pixel row/column ``B * c - 1`` even inside the image, and drops
the outer ring of cells: its output has ``B - 2`` cells, its cell ``(i, j)``
being our cell ``(i + 1, j + 1)`` (pixel origin ``(c, c)``). So:

- when ``M`` and ``N`` are multiples of the cell size,
  ``fhog_grid(im)[1:-1, 1:-1, 0, 0]`` equals the reference exactly (up to
  float32 rounding);
- otherwise our cells ``1 .. M // c - 3`` still equal the reference's cells
  ``0 .. M // c - 4`` (same for columns): only our last inner cell
  ``M // c - 2`` may differ (its lower block norm sees the pixels the
  reference adds or drops);
- our outer ring is extra: those cells lack the votes of the pixels within
  half a cell of the image border and have zero-energy neighbours.

Speed: for uint8 images OpenCV computes the gradients (``cv2.Sobel`` with a
``[-1, 0, 1]`` kernel, in float32: whole numbers, exact) and reads each
pixel's bin from a table of the 511 x 511 possible integer gradients
(``cv2.remap``, nearest neighbour); the bilinear votes are separable: 2
``np.bincount`` per band of cell rows along the columns, then one matrix
product along the rows (no loop over pixels). The 31 features are computed
plane by plane. Single-threaded, 480 x 640, 8-pixel cells: about 5 ms gray
uint8 for the histograms, 10 ms colour uint8, 20 ms for float images
(computed in float64).
"""

import functools

import cv2
import numpy as np

from .hog import (
    _G_MAX,
    _LUT_SIDE,
    _check_image,
    _pair,
    _readonly,
    _uint8_gradients,
)

__all__ = ["FHOG_FEATURES", "fhog_grid", "fhog_histograms", "fhog_features"]

#: Number of features per cell (18 contrast-sensitive, 9 insensitive, 4 texture).
FHOG_FEATURES = 31

# Pixels per band of cell rows (the per-pixel temporaries, ~10 of 8 bytes per
# pixel, stay in cache; 32768 measured ~1.5x faster than 65536 on 480 x 640).
_FHOG_BAND_PIXELS = 32768

_N_SIGNED = 18  # contrast-sensitive orientation bins
_N_UNSIGNED = 9
_EPS = 0.0001  # the reference's regulariser of the block energies
_TEXTURE = 0.2357  # the reference's texture feature factor (~ 1 / sqrt(18))

# the reference's unit vectors: (cos, sin) of 0, 20, ..., 160 degrees to 4 decimals
_UU = np.array([1.0000, 0.9397, 0.7660, 0.500, 0.1736, -0.1736, -0.5000, -0.7660, -0.9397])
_VV = np.array([0.0000, 0.3420, 0.6428, 0.8660, 0.9848, 0.9848, 0.8660, 0.6428, 0.3420])


# --------------------------------------------------------------------------- #
# orientations and gradients


def _snap_bins(dy, dx):
    """The reference's 18-direction orientation bin of each gradient.

    Parameters
    ----------
    dy, dx : ndarray of float64
        Gradients along rows and columns, same shape.

    Returns
    -------
    bins : ndarray of uint8, shape of ``dx``
        ``o`` or ``o + 9`` for the direction ``o`` of largest ``|uu[o] * dx +
        vv[o] * dy|`` (the first on ties), by the sign of the dot; 0 for a zero
        gradient. The reference's loop, vectorised over the pixels.
    """
    best_dot = np.zeros(dx.shape, dtype=np.float64)
    best = np.zeros(dx.shape, dtype=np.uint8)
    for o in range(_N_UNSIGNED):
        dot = _UU[o] * dx
        dot += _VV[o] * dy
        positive = dot > best_dot
        negative = -dot > best_dot  # exclusive with ``positive`` (best_dot >= 0)
        np.abs(dot, out=dot)
        np.maximum(best_dot, dot, out=best_dot)
        best[positive] = o
        best[negative] = o + _N_UNSIGNED
    return best


@functools.lru_cache(maxsize=None)
def _fhog_bin_lut():
    """Orientation bin of each uint8 gradient (see ``hog._uint8_gradients``).

    Returns
    -------
    bins : (511 * 511,) ndarray of uint8
        As :func:`_snap_bins`.
    """
    g_row, g_col = _uint8_gradients()
    return _readonly(_snap_bins(g_row, g_col))


def _float_gradients(part):
    """Centred-difference gradients of the strongest channel, in float64.

    Parameters
    ----------
    part : (M, N) or (M, N, C) ndarray
        Any real dtype. Gradients of the first/last row and column are 0.

    Returns
    -------
    dy, dx : (M, N) ndarray of float64
        Along rows and columns; for colour, the channel of largest
        ``dx**2 + dy**2`` (strictly: the first channel wins ties).
    """
    part = part.astype(np.float64, copy=False)
    channels = [part] if part.ndim == 2 else [part[:, :, k] for k in range(part.shape[2])]
    dy = dx = best = None
    for channel in channels:
        gy = np.zeros(channel.shape, dtype=np.float64)
        gx = np.zeros(channel.shape, dtype=np.float64)
        np.subtract(channel[2:], channel[:-2], out=gy[1:-1])
        np.subtract(channel[:, 2:], channel[:, :-2], out=gx[:, 1:-1])
        v = gy * gy + gx * gx
        if best is None:
            dy, dx, best = gy, gx, v
        else:
            better = v > best
            dy, dx = np.where(better, gy, dy), np.where(better, gx, dx)
            np.maximum(best, v, out=best)
    return dy, dx


# --------------------------------------------------------------------------- #
# histograms


@functools.lru_cache(maxsize=64)
def _tent_weights(cell):
    """Bilinear weights of the pixels of a cell along one axis.

    Parameters
    ----------
    cell : int
        Cell size in pixels along the axis.

    Returns
    -------
    step : (cell,) ndarray of intp
        -1 if the pixel's other cell is the previous one, +1 if the next one.
    own, other : (cell,) ndarray of float64
        Weight of the pixel's own cell and of that other cell, summing to 1
        (``other`` is 0 for the centre pixel of an odd cell). Pixel ``k`` of
        cell ``i`` has the reference's ``floor(yp) = i - 1`` if ``2k + 1 <
        cell`` (and ``vy0 = own``), else ``i`` (and ``vy0 = other``).
    """
    k = np.arange(cell)
    offset = np.abs(2 * k + 1 - cell) / (2.0 * cell)  # |pixel centre - cell centre| / cell
    step = np.where(2 * k + 1 >= cell, 1, -1).astype(np.intp)
    return _readonly(step, 1.0 - offset, offset)


@functools.lru_cache(maxsize=128)
def _band_layout(rows, n_cols, c_cols):
    """Where the pixels of a band of cell rows vote along the columns, and with which weights.

    Parameters
    ----------
    rows : int
        Pixel rows of a (full) band; a shorter band uses the first rows.
    n_cols, c_cols : int
        Cells per row and their width in pixels.

    Returns
    -------
    own : (rows, n_cols * c_cols) ndarray of intp
        Index of each pixel's own cell in the band's ``(rows, n_cols + 2, 18)`` votes, times
        18 (its bin is added): cell ``j`` of pixel row ``y`` is ``(y, j + 1)`` (a ring of one
        cell either side).
    step : (n_cols * c_cols,) ndarray of intp
        Offset from the own cell's index to the neighbour the pixel also votes for (``-18`` or ``+18``).
    w_own, w_other : (n_cols * c_cols,) ndarray of float64
        The pixel's shares of its vote for the two cells (:func:`_tent_weights`).
    w_own32, w_other32 : the same as float32 (for float32 magnitudes: a float32 product)
    """
    step, w_own, w_other = (np.tile(w, n_cols) for w in _tent_weights(c_cols))
    own_col = (np.arange(n_cols * c_cols) // c_cols + 1) * _N_SIGNED
    own = (np.arange(rows) * ((n_cols + 2) * _N_SIGNED))[:, None] + own_col
    return _readonly(own, step * _N_SIGNED, w_own, w_other, w_own.astype(np.float32), w_other.astype(np.float32))


@functools.lru_cache(maxsize=64)
def _row_weights(c_rows):
    """How the pixel rows of a cell share their votes between the cell and the cells above and below.

    Returns
    -------
    (3, c_rows) ndarray of float64
        Rows: the share for the pixel row's own cell, for the cell above (pixels in the
        upper half), for the cell below (the lower half); see :func:`_tent_weights`.
    """
    step, w_own, w_other = _tent_weights(c_rows)
    return _readonly(np.stack([w_own, np.where(step < 0, w_other, 0.0), np.where(step > 0, w_other, 0.0)]))


@functools.lru_cache(maxsize=None)
def _fhog_bin_table():
    """:func:`_fhog_bin_lut` as a (511, 511) image: entry ``[g_row + 255, g_col + 255]``, read by ``cv2.remap``."""
    return _readonly(np.ascontiguousarray(_fhog_bin_lut().reshape(_LUT_SIDE, _LUT_SIDE)))


def _uint8_band_gradients(part):
    """Gradient magnitudes and orientation bins of a uint8 band, with OpenCV.

    Parameters
    ----------
    part : (M, N) or (M, N, C) ndarray of uint8

    Returns
    -------
    magnitude : (M, N) ndarray of float32
        ``sqrt(g_row**2 + g_col**2)`` of the centred differences, for colour of the
        channel where it is largest (the first on ties, compared exactly on the squares). The first and last row and
        column are not meaningful (OpenCV's replicated border): the caller drops them.
    bins : (M, N) ndarray of uint8
        See :func:`_snap_bins`: the gradients are whole numbers (exact in float32), so
        the nearest-neighbour ``remap`` reads :func:`_fhog_bin_table` at exactly
        ``(g_row, g_col)``.
    """
    channels = [part] if part.ndim == 2 else cv2.split(part)
    g_col = g_row = squared = None
    for channel in channels:
        dx = cv2.Sobel(channel, cv2.CV_32F, 1, 0, ksize=1, borderType=cv2.BORDER_REPLICATE)
        dy = cv2.Sobel(channel, cv2.CV_32F, 0, 1, ksize=1, borderType=cv2.BORDER_REPLICATE)
        sq = dx * dx
        sq += dy * dy  # whole numbers up to 2 * 255**2: exact in float32
        if squared is None:
            g_col, g_row, squared = dx, dy, sq
        else:  # strictly greater: the first channel wins ties
            better = sq > squared  # (np.where: a masked copyto is ~20x slower on such random masks)
            g_col, g_row, squared = np.where(better, dx, g_col), np.where(better, dy, g_row), np.maximum(sq, squared)
    magnitude = np.sqrt(squared, out=squared)  # numpy's sqrt is correctly rounded (cv2.magnitude's is not)
    g_col += np.float32(_G_MAX)
    g_row += np.float32(_G_MAX)
    return magnitude, cv2.remap(_fhog_bin_table(), g_col, g_row, cv2.INTER_NEAREST)


def _band_gradients(part, skip, border, rows, cols):
    """Gradient magnitude and orientation bin of the pixels of a band.

    Parameters
    ----------
    part : (rows + context, cols[ + 1][, C]) ndarray
        The band with one pixel of context above/below/right where the image
        has it (as ``hog.hog_cells``).
    skip : int
        Rows of context above the band (0 or 1).
    border : (bool, bool, bool)
        Whether the band's first row, last row and last column are on the
        image border (then they, like column 0, vote nothing).
    rows, cols : int
        Pixels of the band.

    Returns
    -------
    magnitude : (rows, cols) ndarray of float32 (uint8 images) or float64
        0 on the image border.
    bins : (rows, cols) ndarray of uint8
        See :func:`_snap_bins`.
    """
    if part.dtype == np.uint8:
        magnitude, bins = (a[skip:skip + rows, :cols] for a in _uint8_band_gradients(part))
    else:
        dy, dx = _float_gradients(part)
        dy, dx = dy[skip:skip + rows, :cols], dx[skip:skip + rows, :cols]
        magnitude = np.sqrt(dy * dy + dx * dx)
        bins = _snap_bins(dy, dx)
    # the image's 1-pixel border votes nothing
    magnitude[:, 0] = 0
    if border[0]:
        magnitude[0] = 0
    if border[1]:
        magnitude[-1] = 0
    if border[2]:
        magnitude[:, -1] = 0
    return magnitude, bins


def _fhog_histograms(image, cell_shape):
    """18-bin histograms of bilinearly-voted gradient magnitudes of every cell.

    The bilinear vote is separable, and done in two steps per band of cell rows:

    1. along the columns, each pixel's magnitude goes to its own cell and the
       column neighbour nearest to it: 2 ``np.bincount`` on ``(pixel row,
       cell column, bin)``, giving per pixel row a row of cell histograms;
    2. along the rows, those rows of histograms go to their own cell row and
       the one above or below, weighted by the pixel row's place in its cell:
       one matrix product per band (``(3, c_rows)`` weights).

    Parameters
    ----------
    image : (M, N) or (M, N, C) ndarray
    cell_shape : (int, int)

    Returns
    -------
    hist : (M // c_rows, N // c_cols, 18) ndarray of float64
        Not divided by the cell area (as the reference).
    """
    c_rows, c_cols = cell_shape
    height, width = image.shape[:2]
    n_rows, n_cols = height // c_rows, width // c_cols
    cols = n_cols * c_cols
    band = min(n_rows, max(1, _FHOG_BAND_PIXELS // (cols * c_rows)))
    own_base, col_step, w_own, w_other, w_own32, w_other32 = _band_layout(band * c_rows, n_cols, c_cols)
    row_weights = _row_weights(c_rows)
    width_bins = (n_cols + 2) * _N_SIGNED  # one row of the padded cell grid
    # padded[i + 1, j + 1] is cell (i, j); the votes for the outer ring are dropped
    padded = np.zeros((n_rows + 2, width_bins), dtype=np.float64)
    for r0 in range(0, n_rows, band):
        r1 = min(r0 + band, n_rows)
        top, bottom = r0 * c_rows, r1 * c_rows
        rows = bottom - top
        first, last = max(top - 1, 0), min(bottom + 1, height)
        part = image[first:last, :min(cols + 1, width)]
        border = (top == 0, bottom == height, cols == width)
        magnitude, bins = _band_gradients(part, top - first, border, rows, cols)
        # the weighted magnitudes in the magnitudes' type (float32 for uint8 images: half the bytes)
        shares = (w_own32, w_other32) if magnitude.dtype == np.float32 else (w_own, w_other)
        own = np.add(own_base[:rows], bins, dtype=np.intp)
        length = rows * width_bins
        by_column = np.bincount(own.ravel(), (magnitude * shares[0]).ravel(), length)
        own += col_step
        by_column += np.bincount(own.ravel(), (magnitude * shares[1]).ravel(), length)
        # (cell rows, 3, width_bins): each cell row's votes for itself, the row above, the row below
        votes = np.matmul(row_weights, by_column.reshape(r1 - r0, c_rows, width_bins))
        padded[r0 + 1:r1 + 1] += votes[:, 0]
        padded[r0:r1] += votes[:, 1]
        padded[r0 + 2:r1 + 2] += votes[:, 2]
    return padded.reshape(n_rows + 2, n_cols + 2, _N_SIGNED)[1:-1, 1:-1]


# --------------------------------------------------------------------------- #
# features


def _fhog_features(hist, truncation):
    """The 31 normalised, truncated features of every cell.

    Computed plane by plane (a feature's values over all cells contiguous), so
    every step is one numpy operation over long contiguous runs; the result is
    transposed to the cell-major layout at the end. About 2x faster than the
    same steps on the cell-major layout, whose inner runs are 9 to 27 values.

    Parameters
    ----------
    hist : (n_rows, n_cols, 18) ndarray of float32 or float64
    truncation : float

    Returns
    -------
    features : (n_rows, n_cols, 31) ndarray of float32
        See the module docstring.
    """
    n_rows, n_cols = hist.shape[:2]
    n_values = _N_SIGNED + _N_UNSIGNED
    # float32 from here: the values are within ~2e-7 (absolute) of float64's
    values = np.empty((n_values, n_rows, n_cols), dtype=np.float32)
    values[:_N_SIGNED] = hist.transpose(2, 0, 1)
    unsigned = values[_N_SIGNED:]
    np.add(values[:_N_UNSIGNED], values[_N_UNSIGNED:_N_SIGNED], out=unsigned)
    energy = np.zeros((n_rows + 2, n_cols + 2), dtype=np.float32)
    flat = unsigned.reshape(_N_UNSIGNED, -1)
    energy[1:-1, 1:-1] = np.einsum("ki,ki->i", flat, flat).reshape(n_rows, n_cols)
    # blocks[p, q]: 2 x 2 block of cells (p - 1 .. p, q - 1 .. q)
    blocks = energy[:-1, :-1] + energy[1:, :-1] + energy[:-1, 1:] + energy[1:, 1:]
    blocks += np.float32(_EPS)
    inv = np.sqrt(blocks)
    np.divide(np.float32(1.0), inv, out=inv)
    # the reference's n1 .. n4: below-right, above-right, below-left, above-left, as (4, 1, n_rows, n_cols)
    norms = np.stack([inv[1:, 1:], inv[:-1, 1:], inv[1:, :-1], inv[:-1, :-1]])[:, None]
    truncated = values[None] * norms  # (4, 27, n_rows, n_cols): all four normalisations in one pass
    np.minimum(truncated, np.float32(truncation), out=truncated)
    planes = np.empty((FHOG_FEATURES, n_rows, n_cols), dtype=np.float32)
    np.sum(truncated, axis=0, out=planes[:n_values])
    planes[:n_values] *= np.float32(0.5)
    # texture: 0.2357 * sum over the 18 contrast-sensitive bins, per normalisation
    np.sum(truncated[:, :_N_SIGNED], axis=1, out=planes[n_values:])
    planes[n_values:] *= np.float32(_TEXTURE)
    return np.ascontiguousarray(planes.transpose(1, 2, 0))


def fhog_histograms(image, cell_size=8):
    """The 18-bin cell histograms FHOG normalises: the first half of :func:`fhog_grid`.

    Parameters
    ----------
    image : (M, N) or (M, N, C) ndarray
        As :func:`fhog_grid`.
    cell_size : int or (int, int), optional

    Returns
    -------
    hist : (M // cell_rows, N // cell_cols, 18) ndarray of float64
        Bilinearly voted gradient magnitudes per orientation bin (not divided by
        the cell area). ``fhog_features(fhog_histograms(im, c))`` is ``fhog_grid(im, c)``.
    """
    image = _check_image(image)
    cell_shape = _pair(cell_size, "cell_size")
    n_rows, n_cols = image.shape[0] // cell_shape[0], image.shape[1] // cell_shape[1]
    if n_rows == 0 or n_cols == 0:
        return np.zeros((n_rows, n_cols, _N_SIGNED), dtype=np.float64)
    return _fhog_histograms(image, cell_shape)


def fhog_features(hist, truncation=0.2):
    """The 31 features per cell of 18-bin cell histograms: the second half of :func:`fhog_grid`.

    Parameters
    ----------
    hist : (n_rows, n_cols, 18) ndarray
        :func:`fhog_histograms`, or histograms resampled from another scale
        (:mod:`classic_loc.feature_pyramid`).
    truncation : float, optional

    Returns
    -------
    grid : (n_rows, n_cols, 1, 1, 31) ndarray of float32
    """
    hist = np.asarray(hist)
    if hist.ndim != 3 or hist.shape[2] != _N_SIGNED:
        raise ValueError(f"expected histograms of shape (rows, cols, 18), got {hist.shape}")
    truncation = float(truncation)
    if not truncation > 0:
        raise ValueError(f"truncation must be positive, got {truncation}")
    if hist.shape[0] == 0 or hist.shape[1] == 0:
        return np.zeros(hist.shape[:2] + (1, 1, FHOG_FEATURES), dtype=np.float32)
    return _fhog_features(hist, truncation)[:, :, None, None, :]


def fhog_grid(image, cell_size=8, *, truncation=0.2):
    """FHOG features of every cell of an image, as a 1 x 1 block grid.

    Parameters
    ----------
    image : (M, N) or (M, N, C) ndarray
        Gray or colour image, uint8 (fast path) or any real dtype (computed
        in float64; features depend on the value scale, see the module
        docstring). For colour, each pixel uses the channel with the largest
        gradient magnitude.
    cell_size : int or (int, int), optional
        Cell size in pixels, ``(rows, cols)``.
    truncation : float, optional
        Normalised histogram values are clipped at this (0.2 in the reference).

    Returns
    -------
    grid : (M // cell_rows, N // cell_cols, 1, 1, 31) ndarray of float32
        Cell ``(i, j)`` is centred on pixels ``[i * cell_rows, (i + 1) *
        cell_rows) x [j * cell_cols, (j + 1) * cell_cols)`` (origin (0, 0));
        the reference's output is ``grid[1:-1, 1:-1, 0, 0]`` (see the module
        docstring for the exact differences). Features: 18 contrast-sensitive,
        9 contrast-insensitive, 4 texture. Empty (not an error) when the image
        is smaller than a cell.
    """
    truncation = float(truncation)
    if not truncation > 0:
        raise ValueError(f"truncation must be positive, got {truncation}")
    return fhog_features(fhog_histograms(image, cell_size), truncation)
