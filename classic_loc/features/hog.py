"""Histogram of Oriented Gradients computed once per image; windows are slices.

The HOG of a whole image (one pyramid level) is computed once as a *grid* of
normalised blocks, laid out exactly like ``skimage.feature.hog(...,
feature_vector=False)``::

    grid.shape == (n_blocks_rows, n_blocks_cols, block_rows, block_cols, n_bins)

Block ``(r, c)`` covers cells ``r : r + block_rows`` and ``c : c + block_cols``,
i.e. pixels starting at ``(r * cell_rows, c * cell_cols)``. A detection window
of ``wr x wc`` cells whose top-left cell is ``(r, c)`` (top-left pixel
``(r * cell_rows, c * cell_cols)``) is the slice::

    grid[r : r + wr - block_rows + 1, c : c + wc - block_cols + 1]

and its ``ravel()`` is the window's feature vector, of length
``D = (wr - block_rows + 1) * (wc - block_cols + 1) * block_rows * block_cols * n_bins``.
It equals ``skimage.feature.hog`` of the cropped window except in the blocks
that touch the window's border: there the full image supplies the gradient of
the window's first/last pixel rows and columns, whereas ``hog`` of the crop
sets them to 0 (see ``tests/test_features_hog.py``). To train on exactly
what the detector scores, take training windows as slices of the grid of the
whole training image rather than as ``hog_grid`` of tight crops.

All windows of a level are :func:`window_view` (no copy),
:func:`window_features` (a ``(n_pos_r, n_pos_c, D)`` copy) or are scored
directly, without materialising the windows, by :func:`score_windows`.

Only numpy and OpenCV are imported: this module is on the prediction path.

Compatibility with scikit-image
-------------------------------
With the defaults (``signed=False``, ``interpolate=False``) the result equals
``skimage.feature.hog`` (checked against 0.26) up to float32 rounding:

- gradients are the centred differences ``[-1, 0, 1]`` along rows and columns,
  0 on the first/last row (for the row gradient) and column (column gradient);
- a colour image ``(rows, cols, C)`` uses, per pixel, the gradient of the
  channel with the largest magnitude (the first such channel on ties), as
  ``hog(..., channel_axis=-1)``;
- orientation ``theta = rad2deg(arctan2(g_row, g_col)) % 180`` goes, without
  interpolation, to bin ``i`` when ``w * i <= theta < w * (i + 1)``,
  ``w = 180 / n_bins`` (the same float64 edges as skimage's ``_hoghistogram``);
- a cell's histogram is the sum of the gradient magnitudes per bin divided by
  the cell area; the image is cropped to whole cells (the gradient of the last
  kept row/column still uses the first cropped one);
- blocks are normalised with skimage's ``eps`` conventions.

uint8 images take the fast path: the bin and magnitude of each of the
``511 x 511`` possible integer gradients are tabulated once (from the very
float64 formulas above, so binning is bit-identical to skimage), and the cell
histograms are an ``np.bincount`` per band of cell rows (about 2 ms for
480 x 640 on one thread, skimage ~65 ms). Other dtypes get skimage's
gradients (in float32 for float16/float32 images, float64 otherwise), a
float32 orientation, and the float64 formula again for the few pixels within
1e-3 degrees of a bin edge, so binning is still skimage's (about 1.5x slower).
"""

import functools

import numpy as np
import cv2
from numpy.lib.stride_tricks import as_strided, sliding_window_view

__all__ = [
    "BLOCK_NORMS",
    "hog_cells",
    "hog_blocks",
    "hog_grid",
    "window_view",
    "window_features",
    "score_windows",
]

#: Block normalisation methods accepted by :func:`hog_blocks`.
BLOCK_NORMS = ("L1", "L1-sqrt", "L2", "L2-Hys")

_G_MAX = 255  # largest |[-1, 0, 1] gradient| of a uint8 image
_LUT_SIDE = 2 * _G_MAX + 1  # gradients -255 .. 255
_LUT_OFFSET = _G_MAX * _LUT_SIDE + _G_MAX  # index of the gradient (0, 0)


# --------------------------------------------------------------------------- #
# argument checking


def _pair(value, name):
    """Return ``(rows, cols)`` from an int or a pair of positive ints.

    Parameters
    ----------
    value : int or (int, int)
    name : str
        Argument name, for the error message.

    Returns
    -------
    (int, int)
    """
    values = (value, value) if np.ndim(value) == 0 else tuple(value)
    if len(values) != 2 or any(int(v) != v or v < 1 for v in values):
        raise ValueError(f"{name} must be a positive int or a pair of them, got {value!r}")
    return int(values[0]), int(values[1])


def _check_image(image):
    """Return ``image`` as an ndarray of shape ``(M, N)`` or ``(M, N, C)``."""
    image = np.asarray(image)
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] < 1):
        raise ValueError(f"expected an image of shape (rows, cols) or (rows, cols, channels), got {image.shape}")
    if image.dtype.kind not in "biuf":
        raise ValueError(f"expected a real-valued image, got dtype {image.dtype}")
    return image


def _float_dtype(dtype):
    """The float dtype skimage computes the gradients in for an image of ``dtype``."""
    return np.float32 if dtype in (np.float16, np.float32) else np.float64


# --------------------------------------------------------------------------- #
# orientations


def _orientation(g_row, g_col, period):
    """Gradient orientation in degrees, in ``[0, period)``, as skimage computes it.

    Parameters
    ----------
    g_row, g_col : (M, N) ndarray of float64
        Gradients along rows and columns.
    period : float
        180 (unsigned orientation) or 360 (signed).

    Returns
    -------
    theta : (M, N) ndarray of float64
    """
    return np.rad2deg(np.arctan2(g_row, g_col)) % period


def _hard_bins(theta, n_bins, period):
    """Orientation bin of each pixel, exactly as skimage's ``_hoghistogram``.

    Bin ``i`` holds ``w * i <= theta < w * (i + 1)`` with ``w = period / n_bins``
    and the edges computed in float64 like skimage does.

    Parameters
    ----------
    theta : (M, N) ndarray of float64
        Orientations in degrees, in ``[0, period)``.
    n_bins : int
    period : float

    Returns
    -------
    bins : (M, N) ndarray of intp
        In ``0 .. n_bins``; ``n_bins`` marks an orientation that falls in no
        bin (``w * n_bins`` can round below ``period``; skimage drops those).
    """
    width = period / n_bins
    edges = width * np.arange(n_bins + 2, dtype=np.float64)
    edges[-1] = np.inf
    bins = (theta / width).astype(np.intp)  # within 1 of the answer
    np.clip(bins, 0, n_bins, out=bins)
    bins -= theta < edges.take(bins)
    bins += theta >= edges.take(bins + 1)
    return bins


def _interp_bins(theta, n_bins, period):
    """Linear (Dalal-Triggs) vote of each orientation between its two nearest bins.

    Bin ``k`` is centred on ``w * (k + 0.5)``, ``w = period / n_bins``; the
    orientation is circular, so the last bin is next to the first.

    Parameters
    ----------
    theta : (M, N) ndarray of float32 or float64
        Orientations in degrees, in ``[0, period]``.
    n_bins : int
    period : float

    Returns
    -------
    lower, upper : (M, N) ndarray of intp
        The two bins, ``upper == (lower + 1) % n_bins``.
    frac : (M, N) ndarray, dtype of ``theta``
        Share of the vote going to ``upper``, in ``[0, 1]``.
    """
    t = theta * (n_bins / period) - 0.5
    t_floor = np.floor(t)
    frac = t - t_floor
    lower = t_floor.astype(np.intp) % n_bins
    upper = lower + 1
    upper[upper == n_bins] = 0
    return lower, upper, frac


# --------------------------------------------------------------------------- #
# gradients


def _channel_gradient(channel):
    """Centred-difference gradients with a zero border, as skimage's ``hog``.

    Parameters
    ----------
    channel : (M, N) ndarray of float

    Returns
    -------
    g_row, g_col : (M, N) ndarray, same dtype as ``channel``
    """
    g_row = np.empty(channel.shape, dtype=channel.dtype)
    g_row[:1] = 0
    g_row[-1:] = 0
    np.subtract(channel[2:], channel[:-2], out=g_row[1:-1])
    g_col = np.empty(channel.shape, dtype=channel.dtype)
    g_col[:, :1] = 0
    g_col[:, -1:] = 0
    np.subtract(channel[:, 2:], channel[:, :-2], out=g_col[:, 1:-1])
    return g_row, g_col


def _float_gradients(image):
    """Gradients of a (colour) image of any real dtype, as skimage's ``hog``.

    Parameters
    ----------
    image : (M, N) or (M, N, C) ndarray

    Returns
    -------
    g_row, g_col : (M, N) ndarray of float32 or float64
        In skimage's float dtype for ``image`` (float32 for float16/float32,
        float64 otherwise). For colour, per pixel the gradient of the channel
        of largest magnitude.
    """
    image = image.astype(_float_dtype(image.dtype), copy=False)
    if image.ndim == 2:
        g_row, g_col = _channel_gradient(image)
    else:
        g_row = g_col = best = None
        for ch in range(image.shape[2]):
            r, c = _channel_gradient(image[:, :, ch])
            mag = np.hypot(r, c)
            if best is None:
                g_row, g_col, best = r, c, mag
            else:  # strictly greater: the first channel wins ties, like argmax
                better = mag > best
                g_row, g_col = np.where(better, r, g_row), np.where(better, c, g_col)
                np.maximum(best, mag, out=best)
    return g_row, g_col


# Largest error (degrees) of the float32 orientation used to bin float images;
# the float32 arctan2 is within a few ulp (< 1e-4 degrees), so pixels farther
# than this from a bin edge are binned as the float64 formula bins them.
_EDGE_MARGIN = 1e-3


def _float_bins(g_row, g_col, n_bins, period, interpolate):
    """Magnitude and orientation bins of float gradients.

    The orientation is computed in float32 (fast); for hard binning, the
    pixels within ``_EDGE_MARGIN`` degrees of a bin edge are binned again from
    the float64 formula of skimage, so that the result is skimage's exactly.

    Parameters
    ----------
    g_row, g_col : (M, N) ndarray of float
    n_bins : int
    period : float
    interpolate : bool

    Returns
    -------
    magnitude : (M, N) ndarray of float32 (float64 if float32 overflows)
    bins : (M, N) ndarray of intp, or (lower, upper, frac) if ``interpolate``
        As :func:`_hard_bins` or :func:`_interp_bins`.
    """
    r32 = g_row.astype(np.float32, copy=False)
    c32 = g_col.astype(np.float32, copy=False)
    magnitude = np.sqrt(r32 * r32 + c32 * c32)
    if not np.isfinite(magnitude).all():  # huge gradients: float64 throughout
        r64, c64 = g_row.astype(np.float64), g_col.astype(np.float64)
        theta = _orientation(r64, c64, period)
        magnitude = np.hypot(r64, c64)
        if interpolate:
            return magnitude, _interp_bins(theta, n_bins, period)
        return magnitude, _hard_bins(theta, n_bins, period)
    theta = np.rad2deg(np.arctan2(r32, c32))  # in [-180, 180]
    theta += (theta < 0) * np.float32(period)  # "% period" without the slow np.remainder
    if interpolate:
        return magnitude, _interp_bins(theta, n_bins, period)
    if period == 180.0:
        # g_row == 0 (flat areas, horizontal gradients, common): theta is 0 or
        # 180 % 180 == 0 exactly, bin 0; no need for the exact pass
        needs_bin = g_row != 0
        theta *= needs_bin
    else:
        needs_bin = magnitude > 0  # no vote: its bin does not matter
    scaled = theta * np.float32(n_bins / period)
    bins = scaled.astype(np.intp)
    np.minimum(bins, n_bins - 1, out=bins)  # theta == period (rounding)
    scaled -= np.rint(scaled)
    near = np.abs(scaled) < np.float32(_EDGE_MARGIN * n_bins / period)
    near &= needs_bin
    if near.any():
        theta_near = _orientation(g_row[near].astype(np.float64), g_col[near].astype(np.float64), period)
        bins[near] = _hard_bins(theta_near, n_bins, period)
    return magnitude, bins


@functools.lru_cache(maxsize=None)
def _uint8_gradients():
    """Every gradient a uint8 image can have, as float64 arrays.

    Returns
    -------
    g_row, g_col : (511 * 511,) ndarray of float64
        Entry ``(g_row + 255) * 511 + (g_col + 255)`` holds ``(g_row, g_col)``.
    """
    values = np.arange(-_G_MAX, _G_MAX + 1, dtype=np.float64)
    g_row, g_col = np.meshgrid(values, values, indexing="ij")
    return np.ascontiguousarray(g_row.ravel()), np.ascontiguousarray(g_col.ravel())


def _readonly(*arrays):
    for a in arrays:
        a.setflags(write=False)
    return arrays if len(arrays) > 1 else arrays[0]


@functools.lru_cache(maxsize=None)
def _magnitude_lut():
    """Gradient magnitude of each uint8 gradient (see :func:`_uint8_gradients`).

    Returns
    -------
    mag64 : (511 * 511,) ndarray of float64
        ``np.hypot`` as skimage computes it (used to pick the colour channel).
    mag32 : (511 * 511,) ndarray of float32
    """
    mag = np.hypot(*_uint8_gradients())
    return _readonly(mag, mag.astype(np.float32))


@functools.lru_cache(maxsize=32)
def _bin_lut(n_bins, signed, interpolate):
    """Orientation bins of each uint8 gradient (see :func:`_uint8_gradients`).

    Returns
    -------
    interpolate=False: bins : (511 * 511,) ndarray of uint8 or intp
        As :func:`_hard_bins`.
    interpolate=True: (lower, upper, frac) : ndarrays of uint8/intp, uint8/intp, float32
        As :func:`_interp_bins`.
    """
    period = 360.0 if signed else 180.0
    theta = _orientation(*_uint8_gradients(), period)
    dtype = np.uint8 if n_bins < 255 else np.intp
    if not interpolate:
        return _readonly(_hard_bins(theta, n_bins, period).astype(dtype))
    lower, upper, frac = _interp_bins(theta, n_bins, period)
    return _readonly(lower.astype(dtype), upper.astype(dtype), frac.astype(np.float32))


def _channel_lut_index(channel):
    """LUT index ``(g_row + 255) * 511 + (g_col + 255)`` of each pixel.

    Parameters
    ----------
    channel : (M, N) ndarray of uint8

    Returns
    -------
    index : (M, N) ndarray of int32
    """
    g_row = np.empty(channel.shape, dtype=np.int16)
    g_row[:1] = 0
    g_row[-1:] = 0
    np.subtract(channel[2:], channel[:-2], out=g_row[1:-1], dtype=np.int16)
    g_col = np.empty(channel.shape, dtype=np.int16)
    g_col[:, :1] = 0
    g_col[:, -1:] = 0
    np.subtract(channel[:, 2:], channel[:, :-2], out=g_col[:, 1:-1], dtype=np.int16)
    index = np.multiply(g_row, _LUT_SIDE, dtype=np.int32)
    index += g_col
    index += _LUT_OFFSET
    return index


def _uint8_lut_index(image):
    """LUT index of each pixel's gradient (dominant channel for colour).

    Parameters
    ----------
    image : (M, N) or (M, N, C) ndarray of uint8

    Returns
    -------
    index : (M, N) ndarray of int32
    """
    if image.ndim == 2:
        return _channel_lut_index(image)
    mag64 = _magnitude_lut()[0]
    index = best = None
    for channel in cv2.split(image) if image.shape[2] <= 512 else np.moveaxis(image, 2, 0):
        idx = _channel_lut_index(channel)
        mag = mag64.take(idx)
        if best is None:
            index, best = idx, mag
        else:  # strictly greater: the first channel wins ties, like argmax
            better = mag > best
            index = np.where(better, idx, index)
            np.maximum(best, mag, out=best)
    return index


# --------------------------------------------------------------------------- #
# cells


def _cell_sums(bins, weights, cell_shape, n_bins):
    """Sum ``weights`` per cell and bin.

    Parameters
    ----------
    bins : (H, W) ndarray of int
        Bin of each pixel in ``0 .. n_bins`` (``n_bins``: dropped). ``H`` and
        ``W`` are multiples of the cell size.
    weights : (H, W) ndarray of float
    cell_shape : (int, int)
        ``(cell_rows, cell_cols)``.
    n_bins : int

    Returns
    -------
    sums : (H // cell_rows, W // cell_cols, n_bins) ndarray of float64
    """
    (rows, cols), (c_rows, c_cols) = bins.shape, cell_shape
    n_rows, n_cols = rows // c_rows, cols // c_cols
    stride = n_bins + 1  # one spare bin per cell takes the dropped pixels
    row_base = (np.arange(rows) // c_rows) * (n_cols * stride)
    col_base = (np.arange(cols) // c_cols) * stride
    index = np.add(bins, col_base, dtype=np.intp)
    index += row_base[:, None]
    sums = np.bincount(index.ravel(), weights=weights.ravel(), minlength=n_rows * n_cols * stride)
    return sums.reshape(n_rows, n_cols, stride)[:, :, :n_bins]


def hog_cells(image, cell_size=8, n_bins=9, *, signed=False, interpolate=False):
    """Gradient orientation histogram of every cell.

    Parameters
    ----------
    image : (M, N) or (M, N, C) ndarray
        Gray or colour image, uint8 (fast path) or any real dtype. For colour,
        each pixel uses the channel with the largest gradient magnitude.
    cell_size : int or (int, int), optional
        Cell size in pixels, ``(rows, cols)``. The image is cropped to
        ``M // cell_rows`` x ``N // cell_cols`` whole cells.
    n_bins : int, optional
        Number of orientation bins.
    signed : bool, optional
        Bins span 0-360 degrees instead of 0-180 (not in skimage).
    interpolate : bool, optional
        If False (default, as skimage), each pixel votes its whole magnitude
        for the bin holding its orientation. If True, the vote is split
        linearly between the two bins whose centres are nearest (Dalal and
        Triggs' orientation interpolation; bins are circular), which makes
        the histogram a continuous function of the orientation. There is no
        spatial interpolation between cells in either mode.

    Returns
    -------
    cells : (M // cell_rows, N // cell_cols, n_bins) ndarray of float32
        Sum of the gradient magnitudes per bin, divided by the cell area.
    """
    image = _check_image(image)
    c_rows, c_cols = _pair(cell_size, "cell_size")
    n_bins = int(n_bins)
    if n_bins < 1:
        raise ValueError(f"n_bins must be positive, got {n_bins}")
    n_rows, n_cols = image.shape[0] // c_rows, image.shape[1] // c_cols
    rows, cols = n_rows * c_rows, n_cols * c_cols
    if rows == 0 or cols == 0:
        return np.zeros((n_rows, n_cols, n_bins), dtype=np.float32)
    signed, interpolate = bool(signed), bool(interpolate)
    cells = np.empty((n_rows, n_cols, n_bins), dtype=np.float32)
    # Bands of cell rows keep the per-pixel temporaries small: they stay in
    # cache and are recycled by malloc instead of being mapped afresh (page
    # faults cost as much as the computation on a 480 x 640 image).
    band = max(1, _BAND_PIXELS // (cols * c_rows))
    for r0 in range(0, n_rows, band):
        r1 = min(r0 + band, n_rows)
        top, bottom = r0 * c_rows, r1 * c_rows
        # one pixel of context around the band (for its border gradients) where the image has it
        first, last = max(top - 1, 0), min(bottom + 1, image.shape[0])
        part = image[first:last, :min(cols + 1, image.shape[1])]
        cells[r0:r1] = _band_cells(part, top - first, (c_rows, c_cols), (r1 - r0, n_cols), n_bins,
                                   signed, interpolate)
    return cells


# Pixels per band of hog_cells (see there).
_BAND_PIXELS = 65536


def _band_cells(part, skip, cell_shape, n_cells, n_bins, signed, interpolate):
    """Cell histograms of a band of cell rows.

    Parameters
    ----------
    part : (rows, cols[, C]) ndarray
        The band, with a pixel of context on each side where the image has
        one: its first/last row and column are the image's border (whose
        gradient is 0) or context (whose gradient is not used).
    skip : int
        Rows of context above the band (0 or 1).
    cell_shape : (int, int)
    n_cells : (int, int)
        ``(n_cells_rows, n_cells_cols)`` of the band.
    n_bins : int
    signed, interpolate : bool
        See :func:`hog_cells`.

    Returns
    -------
    cells : (n_cells_rows, n_cells_cols, n_bins) ndarray of float64
        Sum of the gradient magnitudes per bin, divided by the cell area.
    """
    rows, cols = n_cells[0] * cell_shape[0], n_cells[1] * cell_shape[1]
    if part.dtype == np.uint8:
        index = _uint8_lut_index(part)[skip:skip + rows, :cols]
        magnitude = _magnitude_lut()[1].take(index)
        if interpolate:
            lower, upper, frac = (lut.take(index) for lut in _bin_lut(n_bins, signed, True))
        else:
            bins = _bin_lut(n_bins, signed, False).take(index)
    else:
        g_row, g_col = _float_gradients(part)
        crop = np.s_[skip:skip + rows, :cols]
        magnitude, bins = _float_bins(g_row[crop], g_col[crop], n_bins, 360.0 if signed else 180.0, interpolate)
        if interpolate:
            lower, upper, frac = bins

    if interpolate:
        upper_vote = magnitude * frac
        sums = _cell_sums(upper, upper_vote, cell_shape, n_bins)
        sums += _cell_sums(lower, magnitude - upper_vote, cell_shape, n_bins)
    else:
        sums = _cell_sums(bins, magnitude, cell_shape, n_bins)
    sums *= 1.0 / (cell_shape[0] * cell_shape[1])
    return sums


# --------------------------------------------------------------------------- #
# blocks


def _block_sums(values, block_shape):
    """Sum of ``values`` over every block of cells.

    Parameters
    ----------
    values : (n_cells_rows, n_cells_cols) ndarray
    block_shape : (int, int)

    Returns
    -------
    (n_cells_rows - block_rows + 1, n_cells_cols - block_cols + 1) ndarray
    """
    return sliding_window_view(values, block_shape).sum(axis=(2, 3))


def hog_blocks(cells, block_size=2, block_norm="L2-Hys", eps=1e-5):
    """Normalise every (overlapping) block of cells, vectorised.

    Parameters
    ----------
    cells : (n_cells_rows, n_cells_cols, n_bins) ndarray
        Output of :func:`hog_cells`.
    block_size : int or (int, int), optional
        Block size in cells, ``(block_rows, block_cols)``.
    block_norm : {'L1', 'L1-sqrt', 'L2', 'L2-Hys'}, optional
        With ``v`` a block's values, as skimage's ``_hog_normalize_block``:
        ``L1``: ``v / (sum|v| + eps)``; ``L1-sqrt``: the square root of that;
        ``L2``: ``v / sqrt(sum v**2 + eps**2)``; ``L2-Hys``: ``L2``, then
        clipped at 0.2, then ``L2`` again.
    eps : float, optional
        Regulariser, on the scale of :func:`hog_cells` (per-pixel magnitudes).

    Returns
    -------
    blocks : (n_blocks_rows, n_blocks_cols, block_rows, block_cols, n_bins) ndarray of float32
        ``n_blocks_rows = max(n_cells_rows - block_rows + 1, 0)`` (same for
        columns): an image with fewer cells than a block gives an empty grid.
    """
    cells = np.asarray(cells)
    if cells.ndim != 3:
        raise ValueError(f"expected cells of shape (rows, cols, n_bins), got {cells.shape}")
    if block_norm not in BLOCK_NORMS:
        raise ValueError(f"block_norm must be one of {BLOCK_NORMS}, got {block_norm!r}")
    b_rows, b_cols = _pair(block_size, "block_size")
    n_rows, n_cols, n_bins = cells.shape
    nb_rows, nb_cols = max(n_rows - b_rows + 1, 0), max(n_cols - b_cols + 1, 0)
    if nb_rows == 0 or nb_cols == 0:
        return np.zeros((nb_rows, nb_cols, b_rows, b_cols, n_bins), dtype=np.float32)

    # (nb_rows, nb_cols, n_bins, b_rows, b_cols) view -> contiguous skimage layout
    blocks = sliding_window_view(cells, (b_rows, b_cols), axis=(0, 1))
    blocks = np.array(blocks.transpose(0, 1, 3, 4, 2), dtype=np.float32, order="C")  # always a copy
    cells64 = cells.astype(np.float64, copy=False)
    if block_norm in ("L1", "L1-sqrt"):
        scale = 1.0 / (_block_sums(np.abs(cells64).sum(axis=2), (b_rows, b_cols)) + eps)
    else:
        scale = 1.0 / np.sqrt(_block_sums((cells64 * cells64).sum(axis=2), (b_rows, b_cols)) + eps**2)
    blocks *= scale.astype(np.float32)[:, :, None, None, None]
    if block_norm == "L1-sqrt":
        np.sqrt(blocks, out=blocks)
    elif block_norm == "L2-Hys":
        np.minimum(blocks, 0.2, out=blocks)
        flat = blocks.reshape(nb_rows, nb_cols, -1)
        energy = np.einsum("ijk,ijk->ij", flat, flat, dtype=np.float64)
        blocks *= (1.0 / np.sqrt(energy + eps**2)).astype(np.float32)[:, :, None, None, None]
    return blocks


def hog_grid(image, cell_size=8, block_size=2, n_bins=9, block_norm="L2-Hys", *,
             signed=False, interpolate=False, eps=1e-5):
    """HOG of a whole image as a grid of normalised blocks.

    Same layout and values (up to float32 rounding) as
    ``skimage.feature.hog(image, orientations=n_bins,
    pixels_per_cell=cell_size, cells_per_block=block_size,
    block_norm=block_norm, feature_vector=False)`` (with ``channel_axis=-1``
    for a colour image), when ``signed`` and ``interpolate`` are False.

    Parameters
    ----------
    image : (M, N) or (M, N, C) ndarray
        See :func:`hog_cells`.
    cell_size : int or (int, int), optional
        Cell size in pixels.
    block_size : int or (int, int), optional
        Block size in cells.
    n_bins : int, optional
        Number of orientation bins.
    block_norm : {'L1', 'L1-sqrt', 'L2', 'L2-Hys'}, optional
        See :func:`hog_blocks`.
    signed, interpolate : bool, optional
        See :func:`hog_cells`.
    eps : float, optional
        See :func:`hog_blocks`.

    Returns
    -------
    grid : (n_blocks_rows, n_blocks_cols, block_rows, block_cols, n_bins) ndarray of float32
        ``n_blocks_rows = max(M // cell_rows - block_rows + 1, 0)``, same for
        columns. A window of ``wr x wc`` cells at cell ``(r, c)`` is
        ``grid[r:r + wr - block_rows + 1, c:c + wc - block_cols + 1]``.
    """
    cells = hog_cells(image, cell_size, n_bins, signed=signed, interpolate=interpolate)
    return hog_blocks(cells, block_size, block_norm, eps)


# --------------------------------------------------------------------------- #
# windows


def _window_geometry(grid, window_cells):
    """Check ``grid`` and return the window's and the positions' sizes.

    Parameters
    ----------
    grid : (n_blocks_rows, n_blocks_cols, block_rows, block_cols, n_bins) ndarray
    window_cells : int or (int, int)
        Window size in cells, ``(rows, cols)``.

    Returns
    -------
    grid : ndarray
    window_blocks : (int, int)
        Blocks per window, ``(rows, cols)``.
    positions : (int, int)
        Number of window positions, ``(rows, cols)``, possibly 0.
    """
    grid = np.asarray(grid)
    if grid.ndim != 5:
        raise ValueError(f"expected a HOG grid of 5 dimensions (see hog_grid), got shape {grid.shape}")
    w_rows, w_cols = _pair(window_cells, "window_cells")
    nb_rows, nb_cols, b_rows, b_cols, _ = grid.shape
    wb_rows, wb_cols = w_rows - b_rows + 1, w_cols - b_cols + 1
    if wb_rows < 1 or wb_cols < 1:
        raise ValueError(f"a window of {(w_rows, w_cols)} cells is smaller than a block of {(b_rows, b_cols)}")
    positions = max(nb_rows - wb_rows + 1, 0), max(nb_cols - wb_cols + 1, 0)
    return grid, (wb_rows, wb_cols), positions


def window_view(grid, window_cells):
    """Every window of a level as a read-only strided view (no copy).

    Parameters
    ----------
    grid : (n_blocks_rows, n_blocks_cols, block_rows, block_cols, n_bins) ndarray
        Output of :func:`hog_grid`.
    window_cells : int or (int, int)
        Window size in cells, ``(rows, cols)``.

    Returns
    -------
    windows : (n_pos_rows, n_pos_cols, wb_rows, wb_cols, block_rows, block_cols, n_bins) ndarray
        ``windows[r, c]`` is ``grid[r:r + wb_rows, c:c + wb_cols]``, with
        ``wb_rows = window_rows - block_rows + 1`` blocks per window (same for
        columns) and ``n_pos_rows = max(n_blocks_rows - wb_rows + 1, 0)``
        positions. Empty (not an error) when the level is smaller than a window.
    """
    grid, (wb_rows, wb_cols), (n_pos_rows, n_pos_cols) = _window_geometry(grid, window_cells)
    if n_pos_rows == 0 or n_pos_cols == 0:
        return np.zeros((n_pos_rows, n_pos_cols, wb_rows, wb_cols) + grid.shape[2:], dtype=grid.dtype)
    view = sliding_window_view(grid, (wb_rows, wb_cols), axis=(0, 1))
    return view.transpose(0, 1, 5, 6, 2, 3, 4)


def window_features(grid, window_cells):
    """Feature vector of every window of a level (a copy).

    Memory: ``n_pos_rows * n_pos_cols * D * grid.itemsize`` bytes, about
    ``D`` times the grid's size; e.g. a 480 x 640 level, 8-pixel cells, 2 x 2
    blocks and a 64 x 128 window (``D = 3780``) give 45 x 73 windows and 50 MB
    in float32. To score windows, use :func:`score_windows`, which never
    materialises them; to look at a few, use :func:`window_view`.

    Parameters
    ----------
    grid : (n_blocks_rows, n_blocks_cols, block_rows, block_cols, n_bins) ndarray
        Output of :func:`hog_grid`.
    window_cells : int or (int, int)
        Window size in cells, ``(rows, cols)``.

    Returns
    -------
    features : (n_pos_rows, n_pos_cols, D) ndarray, dtype of ``grid``
        ``features[r, c] == grid[r:r + wb_rows, c:c + wb_cols].ravel()``
        (see :func:`window_view`), ``D = wb_rows * wb_cols * block_rows *
        block_cols * n_bins``.
    """
    windows = window_view(grid, window_cells)
    return windows.reshape(windows.shape[:2] + (int(np.prod(windows.shape[2:])),))


# score_windows: most memory used at once for the per-block responses, resp.
# for a band of copied windows (a few MB keeps the band in cache), and the
# number of models from which copying windows beats the per-block responses
# (measured single-threaded: 480 x 640 level, 64 x 128 window, K = 1..64).
_RESPONSE_BYTES = 16 * 2**20
_BAND_BYTES = 4 * 2**20
_MIN_MODELS_FOR_WINDOWS = 8


def _score_by_responses(grid, window_blocks, weights, positions):
    """Scores as the sum over block offsets of shifted per-block responses.

    Parameters
    ----------
    grid : (n_blocks_rows, n_blocks_cols, block_rows, block_cols, n_bins) ndarray
    window_blocks : (int, int)
        ``(wb_rows, wb_cols)``, blocks per window.
    weights : (D, K) ndarray, float dtype of the result
    positions : (int, int)
        ``(n_pos_rows, n_pos_cols)``, both positive.

    Returns
    -------
    scores : (n_pos_rows, n_pos_cols, K) ndarray
    """
    (wb_rows, wb_cols), (n_pos_rows, n_pos_cols) = window_blocks, positions
    nb_rows, nb_cols = grid.shape[:2]
    block_dim, n_models = int(np.prod(grid.shape[2:])), weights.shape[1]
    # (wb_rows, wb_cols * K, block_dim): row j * K + k = model k at offset (i, j)
    per_offset = weights.reshape(wb_rows, wb_cols, block_dim, n_models).transpose(0, 1, 3, 2)
    per_offset = per_offset.reshape(wb_rows, wb_cols * n_models, block_dim)
    blocks_t = grid.reshape(-1, block_dim).astype(weights.dtype, copy=False).T  # (block_dim, n_blocks)
    scores = np.zeros((n_models, n_pos_rows, n_pos_cols), dtype=weights.dtype)
    row_bytes = wb_cols * n_models * nb_rows * nb_cols * weights.dtype.itemsize
    step = max(1, min(wb_rows, _RESPONSE_BYTES // row_bytes))
    for i0 in range(0, wb_rows, step):
        i1 = min(i0 + step, wb_rows)
        # response[i, j, k] = every block's response to model k's weights at offset (i0 + i, j)
        response = per_offset[i0:i1].reshape(-1, block_dim) @ blocks_t
        response = response.reshape(i1 - i0, wb_cols, n_models, nb_rows, nb_cols)
        # window (r, c) needs response[i - i0, j, k, r + i, c + j] for every offset: a strided view
        # whose last two axes walk those diagonals, summed in one reduction (no Python loop over offsets)
        s_i, s_j, s_k, s_r, s_c = response.strides
        diagonals = as_strided(response[0, 0, :, i0:], shape=(n_models, n_pos_rows, n_pos_cols, i1 - i0, wb_cols),
                               strides=(s_k, s_r, s_c, s_i + s_r, s_j + s_c), writeable=False)
        scores += diagonals.sum(axis=(3, 4))
    return np.ascontiguousarray(scores.transpose(1, 2, 0))


def _score_by_windows(grid, window_cells, weights):
    """Scores as window features @ weights, copying a band of window rows at a time.

    Parameters
    ----------
    grid : (n_blocks_rows, n_blocks_cols, block_rows, block_cols, n_bins) ndarray
    window_cells : (int, int)
    weights : (D, K) ndarray, float dtype of the result

    Returns
    -------
    scores : (n_pos_rows, n_pos_cols, K) ndarray
    """
    windows = window_view(grid, window_cells)
    n_pos_rows, n_pos_cols = windows.shape[:2]
    dim, n_models = weights.shape
    scores = np.empty((n_pos_rows, n_pos_cols, n_models), dtype=weights.dtype)
    band = max(1, _BAND_BYTES // (n_pos_cols * dim * weights.dtype.itemsize))
    for r0 in range(0, n_pos_rows, band):
        features = windows[r0:r0 + band].reshape(-1, dim).astype(weights.dtype, copy=False)
        scores[r0:r0 + band] = (features @ weights).reshape(-1, n_pos_cols, n_models)
    return scores


def score_windows(grid, window_cells, weights, bias=0.0):
    """Linear scores of every window of a level, without materialising all windows.

    ``scores[r, c] == window_features(grid, window_cells)[r, c] @ weights + bias``.

    Two exact methods, chosen by the number of models ``K`` (the faster one
    in single-threaded measurements on a 480 x 640 level, 64 x 128 window):

    - ``K < 8``: per-block responses. The weights are cut per block offset
      ``(i, j)`` of the window; the response of every block of the grid to
      every offset's weights is one matrix product ``(wb_rows * wb_cols * K,
      block_dim) @ (block_dim, n_blocks)`` (at most 16 MB at a time) and a
      window's score is the sum over the offsets of the response of block
      ``(r + i, c + j)`` to offset ``(i, j)``. No window is copied. About
      2 ms for K = 4, 5x faster than ``window_features(...) @ weights``.
    - ``K >= 8``: the windows are copied a band of window rows at a time (4 MB)
      and multiplied by the weights; the band stays in cache, which makes it
      1.5-3x faster than copying all windows (50 MB in the example of
      :func:`window_features`) and bounds the memory.

    Parameters
    ----------
    grid : (n_blocks_rows, n_blocks_cols, block_rows, block_cols, n_bins) ndarray
        Output of :func:`hog_grid`.
    window_cells : int or (int, int)
        Window size in cells, ``(rows, cols)``.
    weights : (D,) or (D, K) array_like
        One linear model per column, ``D`` as in :func:`window_features`.
    bias : float or (K,) array_like, optional

    Returns
    -------
    scores : (n_pos_rows, n_pos_cols) or (n_pos_rows, n_pos_cols, K) ndarray
        In the grid's float dtype (float32 for :func:`hog_grid`; the weights
        are cast to it), as many dimensions as ``weights`` plus one. Empty
        when the level is smaller than a window.
    """
    grid, window_blocks, positions = _window_geometry(grid, window_cells)
    dtype = grid.dtype if grid.dtype.kind == "f" else np.dtype(np.float64)
    weights = np.asarray(weights, dtype=dtype)
    dim = window_blocks[0] * window_blocks[1] * int(np.prod(grid.shape[2:]))
    if weights.ndim not in (1, 2) or weights.shape[0] != dim:
        raise ValueError(f"weights must have shape ({dim},) or ({dim}, K) for this grid and window, "
                         f"got {weights.shape}")
    single = weights.ndim == 1
    weights = weights.reshape(dim, -1)
    if positions[0] == 0 or positions[1] == 0:
        scores = np.zeros(positions + (weights.shape[1],), dtype=dtype)
    elif weights.shape[1] < _MIN_MODELS_FOR_WINDOWS:
        scores = _score_by_responses(grid, window_blocks, weights, positions)
    else:
        scores = _score_by_windows(grid, window_cells, weights)
    scores += np.asarray(bias, dtype=dtype)
    return scores[:, :, 0] if single else scores
