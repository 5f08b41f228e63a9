"""Haar-like features (Viola and Jones) for every window of an image at once, from its integral image.

A feature is five integers ``(type, y, x, h, w)`` in units of the image it is
computed on: a unit rectangle of ``h`` rows and ``w`` columns at row ``y`` and
column ``x`` of the window, repeated ``HAAR_REPEATS[type]`` times along
(rows, columns). The five types, their rectangle order and their signs are
those of :func:`skimage.feature.haar_like_feature`:

========  ============  ===========  ===============================
type      name          repeats      value
========  ============  ===========  ===============================
0         ``type-2-x``  (1, 2)       right - left
1         ``type-2-y``  (2, 1)       bottom - top
2         ``type-3-x``  (1, 3)       middle - left - right
3         ``type-3-y``  (3, 1)       middle - top - bottom
4         ``type-4``    (2, 2)       top-right + bottom-left - top-left - bottom-right
========  ============  ===========  ===============================

Each rectangle sum is four lookups into the integral image ``ii`` of shape
``(rows + 1, cols + 1)``, ``ii[y, x] = image[:y, :x].sum()``:
``sum(image[y0:y1, x0:x1]) = ii[y1, x1] - ii[y0, x1] - ii[y1, x0] + ii[y0, x0]``.
A feature is thus a signed sum of values of ``ii`` at points of the window's
lattice (its ``(h + 1) * (w + 1)`` corners), the same for every window, so
all windows of an image are evaluated together: the lattice of every window is
a strided view of ``ii`` (:func:`lattice_view`), and the features of all
windows are one matrix product with the features' corner coefficients
(:func:`corner_matrix`). A window's feature vector for the linear SVM is the
rectified pair of each feature (:func:`rectify`), which :class:`HaarModel`
scores for all windows of a level at once.

Variance normalisation (Viola and Jones, section 5.6): each window's pixels
are taken as ``(x - mean) / std`` over the window, the mean and the variance
coming from the integral image and the squared integral image (four lookups
each). A feature's value is further divided by its rectangles' total area, so
values are mean differences of normalised intensity, comparable across feature
sizes (:func:`haar_features`).

numpy and OpenCV only (``cv2.integral2``); this is a prediction-path module.
"""

import cv2
import numpy as np
from numpy.lib.stride_tricks import as_strided

__all__ = ["HAAR_TYPES", "HAAR_REPEATS", "haar_feature_coords", "check_haar_coords", "corner_matrix", "feature_areas",
           "integral_images", "unit_image", "lattice_view", "window_moments", "haar_features", "rectify", "HaarModel"]

HAAR_TYPES = ("type-2-x", "type-2-y", "type-3-x", "type-3-y", "type-4")
HAAR_REPEATS = ((1, 2), (2, 1), (1, 3), (3, 1), (2, 2))
# sign of sub-rectangle (i, j) (i along rows, j along columns) per type; see the table above
_SIGNS = (
    {(0, 0): -1, (0, 1): 1},
    {(0, 0): -1, (1, 0): 1},
    {(0, 0): -1, (0, 1): 1, (0, 2): -1},
    {(0, 0): -1, (1, 0): 1, (2, 0): -1},
    {(0, 0): -1, (0, 1): 1, (1, 0): 1, (1, 1): -1},
)
_BAND_BYTES = 4 * 2**20  # HaarModel.scores copies the lattices of this many bytes of windows at a time
MIN_STD = 1.0  # floor of a window's standard deviation (intensities 0-255): flat windows stay finite


def haar_feature_coords(height, width, types=None):
    """Every Haar-like feature of a ``height`` x ``width`` window, as rows ``(type, y, x, h, w)``.

    Parameters
    ----------
    height, width : int
        Window size in units.
    types : sequence of int or str, optional
        Feature types (indices into :data:`HAAR_TYPES` or their names); all five by default.

    Returns
    -------
    coords : (F, 5) int32 ndarray
        For a 24 x 24 window, F = 162,336 (as :func:`skimage.feature.haar_like_feature_coord`).

    Examples
    --------
    >>> haar_feature_coords(2, 2, ["type-4"]).tolist()
    [[4, 0, 0, 1, 1]]
    >>> len(haar_feature_coords(24, 24))
    162336
    """
    types = range(len(HAAR_TYPES)) if types is None else [HAAR_TYPES.index(t) if isinstance(t, str) else int(t)
                                                           for t in types]
    out = []
    for t in types:
        my, mx = HAAR_REPEATS[t]
        for h in range(1, height // my + 1):
            for w in range(1, width // mx + 1):
                ys, xs = np.meshgrid(np.arange(height - my * h + 1), np.arange(width - mx * w + 1), indexing="ij")
                n = ys.size
                out.append(np.stack([np.full(n, t), ys.ravel(), xs.ravel(), np.full(n, h), np.full(n, w)], axis=1))
    return np.concatenate(out).astype(np.int32) if out else np.zeros((0, 5), np.int32)


def check_haar_coords(coords, height, width):
    """``coords`` as an (F, 5) int64 array, or ValueError if any feature is malformed or leaves the window."""
    coords = np.asarray(coords)
    if coords.ndim != 2 or coords.shape[1] != 5:
        raise ValueError(f"Haar feature coordinates must be (F, 5) rows (type, y, x, h, w), got shape {coords.shape}")
    if len(coords):
        t = coords[:, 0]
        if t.min() < 0 or t.max() >= len(HAAR_TYPES) or coords[:, 1:3].min() < 0 or coords[:, 3:5].min() < 1:
            raise ValueError("Haar feature coordinates out of range (type 0-4, y, x >= 0, h, w >= 1)")
        rep = np.asarray(HAAR_REPEATS)[t]
        if (coords[:, 1] + rep[:, 0] * coords[:, 3]).max() > height or (coords[:, 2] + rep[:, 1] * coords[:, 4]).max() > width:
            raise ValueError(f"a Haar feature extends past its {height} x {width} window")
    return coords.astype(np.int64)


def _rectangles(coords):
    """(feature index, sign, y0, x0, y1, x1) of every rectangle of every feature (exclusive ends)."""
    idx, sign, y0, x0, y1, x1 = [], [], [], [], [], []
    for t, signs in enumerate(_SIGNS):
        sel = np.flatnonzero(coords[:, 0] == t)
        if sel.size == 0:
            continue
        _, y, x, h, w = coords[sel].T
        for (i, j), s in signs.items():
            idx.append(sel)
            sign.append(np.full(sel.size, s))
            y0.append(y + i * h)
            x0.append(x + j * w)
            y1.append(y + (i + 1) * h)
            x1.append(x + (j + 1) * w)
    cat = (lambda parts: np.concatenate(parts) if parts else np.zeros(0, np.int64))  # noqa: E731
    return tuple(cat(p) for p in (idx, sign, y0, x0, y1, x1))


def corner_matrix(coords, height, width):
    """Corner coefficients of each feature on a window's lattice: ``features = lattice @ M``.

    Parameters
    ----------
    coords : (F, 5) int ndarray
        Features of a ``height`` x ``width`` window (see :func:`haar_feature_coords`).
    height, width : int
        Window size in units.

    Returns
    -------
    M : ((height + 1) * (width + 1), F) float64 ndarray
        Row ``a * (width + 1) + b`` holds the coefficient of the integral image
        value at lattice point ``(a, b)`` (window-relative) in each feature.
    """
    coords = check_haar_coords(coords, height, width)
    f, s, y0, x0, y1, x1 = _rectangles(coords)
    M = np.zeros(((height + 1) * (width + 1), len(coords)))
    stride = width + 1
    for rows, cols, sign in ((y1, x1, 1), (y0, x1, -1), (y1, x0, -1), (y0, x0, 1)):
        np.add.at(M, (rows * stride + cols, f), sign * s)
    return M


def feature_areas(coords):
    """Per feature: (total area of its rectangles, signed area = sum of sign * area), both (F,) float64.

    The signed area is what a constant image contributes per unit of intensity:
    0 for every type but the three-rectangle ones (``-h * w``).
    """
    coords = np.asarray(coords, dtype=np.int64)
    n_rect = np.array([len(s) for s in _SIGNS])[coords[:, 0]]
    net = np.array([sum(s.values()) for s in _SIGNS])[coords[:, 0]]
    unit = (coords[:, 3] * coords[:, 4]).astype(np.float64)
    return unit * n_rect, unit * net


def integral_images(image):
    """Integral image and squared integral image, both (rows + 1, cols + 1) float64, first row and column 0.

    ``ii[y, x] = image[:y, :x].sum()`` and ``ii2[y, x] = (image[:y, :x] ** 2).sum()``.
    """
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"Haar features need a 2-D (gray) image, got shape {image.shape}")
    if image.dtype not in (np.uint8, np.float32, np.float64):
        image = image.astype(np.float64)
    ii, ii2 = cv2.integral2(image, sdepth=cv2.CV_64F, sqdepth=cv2.CV_64F)
    return ii, ii2


def unit_image(image, unit):
    """The image in Haar units: the mean of each ``unit`` x ``unit`` block, (rows // unit, cols // unit) float32.

    Rectangle sums on it are the pixel sums of unit-aligned rectangles divided
    by ``unit ** 2``; a partial block at the bottom or right is dropped.
    """
    image = np.asarray(image)
    if unit == 1:
        return image.astype(np.float32)
    rows, cols = image.shape[0] // unit, image.shape[1] // unit
    if rows == 0 or cols == 0:
        return np.zeros((rows, cols), np.float32)
    part = np.ascontiguousarray(image[:rows * unit, :cols * unit], dtype=np.float32)
    return cv2.resize(part, (cols, rows), interpolation=cv2.INTER_AREA)  # integer factor: exact block means


def _n_positions(ii, window, step):
    return (max((ii.shape[0] - 1 - window[0]) // step + 1, 0), max((ii.shape[1] - 1 - window[1]) // step + 1, 0))


def lattice_view(ii, window, step):
    """Every window's lattice of integral-image values, as a read-only strided view (no copy).

    Parameters
    ----------
    ii : (rows + 1, cols + 1) ndarray
        Integral image.
    window : (int, int)
        Window size ``(height, width)`` in units.
    step : int
        Units between neighbouring window positions.

    Returns
    -------
    view : (n_rows, n_cols, height + 1, width + 1) ndarray
        ``view[r, c, a, b] == ii[r * step + a, c * step + b]``;
        ``n_rows = (rows - height) // step + 1`` (0 when the image is smaller than a window).
    """
    n = _n_positions(ii, window, step)
    s0, s1 = ii.strides
    return as_strided(ii, shape=n + (window[0] + 1, window[1] + 1), strides=(step * s0, step * s1, s0, s1),
                      writeable=False)


def _corners(ii, window, step, n):
    """Window sums from four strided slices of ``ii``: (n_rows, n_cols)."""
    h, w = window
    ys, xs = slice(0, (n[0] - 1) * step + 1, step), slice(0, (n[1] - 1) * step + 1, step)
    ye, xe = slice(h, h + (n[0] - 1) * step + 1, step), slice(w, w + (n[1] - 1) * step + 1, step)
    return ii[ye, xe] - ii[ys, xe] - ii[ye, xs] + ii[ys, xs]


def window_moments(ii, ii2, window, step):
    """Mean and standard deviation of every window, each (n_rows, n_cols) float64.

    Four lookups into each integral image per window, as array slices. The
    standard deviation is floored at :data:`MIN_STD`.
    """
    n = _n_positions(ii, window, step)
    if n[0] == 0 or n[1] == 0:
        return np.zeros(n), np.full(n, MIN_STD)
    area = float(window[0] * window[1])
    mean = _corners(ii, window, step, n) / area
    var = _corners(ii2, window, step, n) / area - mean * mean
    return mean, np.maximum(np.sqrt(np.maximum(var, 0.0)), MIN_STD)


def haar_features(ii, ii2, coords, window, step, rows=None, cols=None, normalize=True):
    """Haar-like feature values of windows.

    Parameters
    ----------
    ii, ii2 : (rows + 1, cols + 1) ndarray
        Integral and squared integral image (:func:`integral_images`); ``ii2`` is
        only read when ``normalize``.
    coords : (F, 5) int ndarray
        The features, in units of the window (see :func:`haar_feature_coords`).
    window : (int, int)
        Window size in units; ``step``: units between window positions.
    rows, cols : (n,) int ndarrays, optional
        Window positions (indices into :func:`lattice_view`'s first two axes);
        default every window, in row-major order.
    normalize : bool
        Variance-normalise each window and divide each feature by its total area
        (see the module docstring); False gives the raw sums (as scikit-image).

    Returns
    -------
    features : (n, F) float64 ndarray
    """
    if normalize:
        return HaarModel(coords, window).features(ii, ii2, step, rows, cols)
    view = lattice_view(ii, window, step)
    r, c = _positions(view, rows, cols)
    return view[r, c].reshape(len(r), -1) @ corner_matrix(coords, *window)


def _positions(view, rows, cols):
    """``(rows, cols)`` as index arrays, or every window of ``view`` in row-major order when None."""
    if rows is None:
        return np.divmod(np.arange(view.shape[0] * view.shape[1]), max(view.shape[1], 1))
    return np.asarray(rows, dtype=np.intp), np.asarray(cols, dtype=np.intp)


def rectify(features):
    """Half-wave rectified pairs ``[max(f, 0), max(-f, 0)]``: (n, F) -> (n, 2F), positive parts first.

    A linear model over the pairs weighs a feature's two polarities apart (a
    dark-over-light edge and a light-over-dark one), as signed HOG bins do; over
    raw feature values it could only be a linear filter of the normalised image.
    """
    return np.concatenate([np.maximum(features, 0), np.maximum(-features, 0)], axis=1)


class HaarModel:
    """A set of Haar features of one window shape, ready for all windows of a level, and a linear model over them.

    The corner matrix is built once; :meth:`features` gives windows' normalised
    features, :meth:`scores` a linear model's scores over the rectified features
    (:func:`rectify`) of every window.

    Parameters
    ----------
    coords : (F, 5) int ndarray
        The features, in units of a ``window`` (height, width).
    window : (int, int)
    weights : (2F,) ndarray, optional
        Weights of the rectified features: positive parts, then negative parts (needed by :meth:`scores`).
    """

    def __init__(self, coords, window, weights=None):
        total, signed = feature_areas(coords)
        self.window = tuple(window)
        self.matrix = corner_matrix(coords, *window) / total  # (L, F): lattice -> area-normalised sums
        self.signed = signed / total
        if weights is not None:
            w = np.asarray(weights, dtype=np.float64).reshape(2, -1)
            self.w_pos, self.w_neg = w[0], w[1]

    def features(self, ii, ii2, step, rows=None, cols=None):
        """Normalised features (n, F) of the windows at ``(rows, cols)``, default all (see :func:`haar_features`)."""
        view = lattice_view(ii, self.window, step)
        rows, cols = _positions(view, rows, cols)
        mean, std = window_moments(ii, ii2, self.window, step)
        g = view[rows, cols].reshape(len(rows), -1) @ self.matrix
        g -= mean[rows, cols][:, None] * self.signed
        return g / std[rows, cols][:, None]

    def scores(self, ii, ii2, step):
        """Scores of every window, (n_rows, n_cols) float64: ``rectify(haar_features(...)) @ weights``.

        One matrix product over all windows' lattices (:func:`lattice_view`), then
        the variance normalisation and the rectified weights.
        """
        view = lattice_view(ii, self.window, step)
        n = view.shape[:2]
        if n[0] == 0 or n[1] == 0:
            return np.zeros(n)
        mean, std = window_moments(ii, ii2, self.window, step)
        out = np.empty(n)
        lattice = view.shape[2] * view.shape[3]
        band = max(1, _BAND_BYTES // (n[1] * max(lattice, self.matrix.shape[1]) * 8))  # bounded memory
        for r0 in range(0, n[0], band):
            rows = view[r0:r0 + band]
            g = rows.reshape(rows.shape[0] * n[1], lattice) @ self.matrix
            g -= mean[r0:r0 + band].reshape(-1, 1) * self.signed  # = std * feature value
            out[r0:r0 + band] = (np.maximum(g, 0) @ self.w_pos - np.minimum(g, 0) @ self.w_neg).reshape(-1, n[1])
        return out / std
