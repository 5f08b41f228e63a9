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

Speed: uint8 images take a lookup-table path (the bin and magnitude of each
of the 511 x 511 possible integer gradients, as in ``hog.py``) and the
bilinear votes are 4 ``np.bincount`` per band of cell rows, on
``target_cell * 18 + bin`` (no loop over pixels). Single-threaded, 480 x 640,
8-pixel cells: about 4 ms gray uint8 (``hog_grid``: 2 ms), 10 ms colour uint8,
20 ms for float images (computed in float64).
"""

import functools

import numpy as np

from .hog import (
    _LUT_OFFSET,
    _check_image,
    _magnitude_lut,
    _pair,
    _readonly,
    _uint8_gradients,
    _uint8_lut_index,
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
def _band_layout(n_rows, n_cols, cell_shape):
    """Vote targets and weights of the pixels of a band of cell rows.

    The votes of a band go to its cells and the ring of cells around them:
    ``(n_rows + 2) x (n_cols + 2)`` target cells, cell ``(i, j)`` of the band
    being target ``(i + 1, j + 1)``. Everything is periodic from band to band
    (bands start on cell boundaries), so it is computed once per image; a
    shorter last band uses the first rows.

    Parameters
    ----------
    n_rows, n_cols : int
        Cells of a (full) band.
    cell_shape : (int, int)

    Returns
    -------
    base : (n_rows * cell_rows, n_cols * cell_cols) ndarray of intp
        ``18 x`` the flat target index of each pixel's own cell.
    row_step : (n_rows * cell_rows, 1) ndarray of intp
        Index offset from the own cell to the row neighbour it also votes for.
    col_step : (n_cols * cell_cols,) ndarray of intp
        Same for the column neighbour.
    weights : (4, 1, cell_rows, n_cols * cell_cols) ndarray of float64
        Vote shares for the own cell, its column neighbour, its row
        neighbour, the diagonal neighbour (summing to 1 per pixel), the same
        for every cell row: they broadcast against the band's pixels seen as
        ``(n_rows, cell_rows, n_cols * cell_cols)``.
    """
    (c_rows, c_cols) = cell_shape
    r_step, r_own, r_other = _tent_weights(c_rows)
    r_step = np.tile(r_step, n_rows)
    c_step, c_own, c_other = (np.tile(w, n_cols) for w in _tent_weights(c_cols))
    row_stride = (n_cols + 2) * _N_SIGNED
    own_row = (np.arange(n_rows * c_rows) // c_rows + 1) * row_stride
    own_col = (np.arange(n_cols * c_cols) // c_cols + 1) * _N_SIGNED
    base = own_row[:, None] + own_col
    weights = np.empty((4, 1, c_rows, n_cols * c_cols), dtype=np.float64)
    for k, (w_row, w_col) in enumerate([(r_own, c_own), (r_own, c_other), (r_other, c_own), (r_other, c_other)]):
        np.multiply.outer(w_row, w_col, out=weights[k, 0])
    return _readonly(base, (r_step * row_stride)[:, None], c_step * _N_SIGNED, weights)  # cached: shared


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
    magnitude : (rows, cols) ndarray of float64
        0 on the image border.
    bins : (rows, cols) ndarray of uint8
        See :func:`_snap_bins`.
    """
    if part.dtype == np.uint8:
        index = _uint8_lut_index(part)[skip:skip + rows, :cols]
        # the image's 1-pixel border votes nothing: give it the zero gradient
        index[:, 0] = _LUT_OFFSET
        if border[0]:
            index[0] = _LUT_OFFSET
        if border[1]:
            index[-1] = _LUT_OFFSET
        if border[2]:
            index[:, -1] = _LUT_OFFSET
        return _magnitude_lut()[0].take(index), _fhog_bin_lut().take(index)
    dy, dx = _float_gradients(part)
    dy, dx = dy[skip:skip + rows, :cols], dx[skip:skip + rows, :cols]
    magnitude = np.sqrt(dy * dy + dx * dx)
    magnitude[:, 0] = 0
    if border[0]:
        magnitude[0] = 0
    if border[1]:
        magnitude[-1] = 0
    if border[2]:
        magnitude[:, -1] = 0
    return magnitude, _snap_bins(dy, dx)


def _fhog_histograms(image, cell_shape):
    """18-bin histograms of bilinearly-voted gradient magnitudes of every cell.

    Per band of cell rows, each pixel's magnitude goes to 4 cells (its own,
    its row and column neighbours nearest to it, the diagonal one) with 4
    ``np.bincount`` on ``target_cell * 18 + bin``.

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
    base, row_step, col_step, weights = _band_layout(band, n_cols, cell_shape)
    # padded[i + 1, j + 1] is cell (i, j); the votes for the outer ring are dropped
    padded = np.zeros((n_rows + 2, n_cols + 2, _N_SIGNED), dtype=np.float64)
    for r0 in range(0, n_rows, band):
        r1 = min(r0 + band, n_rows)
        top, bottom = r0 * c_rows, r1 * c_rows
        rows = bottom - top
        first, last = max(top - 1, 0), min(bottom + 1, height)
        part = image[first:last, :min(cols + 1, width)]
        border = (top == 0, bottom == height, cols == width)
        magnitude, bins = _band_gradients(part, top - first, border, rows, cols)
        length = (r1 - r0 + 2) * (n_cols + 2) * _N_SIGNED
        own = np.add(base[:rows], bins, dtype=np.intp)
        by_row = own + row_step[:rows]
        targets = (own, own + col_step, by_row, by_row + col_step)
        votes = padded[r0:r1 + 2].reshape(-1)  # a view: padded is contiguous
        magnitude = magnitude.reshape(r1 - r0, c_rows, cols)
        for target, weight in zip(targets, weights):
            votes += np.bincount(target.ravel(), (magnitude * weight).ravel(), length)
    return padded[1:-1, 1:-1]


# --------------------------------------------------------------------------- #
# features


def _fhog_features(hist, truncation):
    """The 31 normalised, truncated features of every cell.

    Parameters
    ----------
    hist : (n_rows, n_cols, 18) ndarray of float64
    truncation : float

    Returns
    -------
    features : (n_rows, n_cols, 31) ndarray of float32
        See the module docstring.
    """
    n_rows, n_cols = hist.shape[:2]
    n_values = _N_SIGNED + _N_UNSIGNED
    # float32 from here: the values are within ~1e-7 (relative) of float64's
    values = np.empty((n_rows, n_cols, n_values), dtype=np.float32)
    values[:, :, :_N_SIGNED] = hist
    unsigned = values[:, :, _N_SIGNED:]
    np.add(values[:, :, :_N_UNSIGNED], values[:, :, _N_UNSIGNED:_N_SIGNED], out=unsigned)
    energy = np.zeros((n_rows + 2, n_cols + 2), dtype=np.float64)
    energy[1:-1, 1:-1] = np.einsum("ijk,ijk->ij", unsigned, unsigned)
    # blocks[p, q]: 2 x 2 block of cells (p - 1 .. p, q - 1 .. q)
    blocks = energy[:-1, :-1] + energy[1:, :-1] + energy[:-1, 1:] + energy[1:, 1:]
    inv = (1.0 / np.sqrt(blocks + _EPS)).astype(np.float32)
    # the reference's n1 .. n4: below-right, above-right, below-left, above-left, as (4, n_rows, n_cols, 1)
    norms = np.stack([inv[1:, 1:], inv[:-1, 1:], inv[1:, :-1], inv[:-1, :-1]])[..., None]
    truncated = values[None] * norms  # (4, n_rows, n_cols, 27): all four normalisations in one pass
    np.minimum(truncated, np.float32(truncation), out=truncated)
    features = np.empty((n_rows, n_cols, FHOG_FEATURES), dtype=np.float32)
    np.multiply(truncated.sum(axis=0), np.float32(0.5), out=features[:, :, :n_values])
    # texture: 0.2357 * sum over the 18 contrast-sensitive bins, per normalisation
    np.multiply(truncated[..., :_N_SIGNED].sum(axis=3).transpose(1, 2, 0), np.float32(_TEXTURE),
                out=features[:, :, n_values:])
    return features


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
