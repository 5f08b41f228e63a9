"""The features of every pyramid level: computed exactly, or approximated from the octave above.

Dollar, Appel, Belongie and Perona, "Fast Feature Pyramids for Object Detection"
(PAMI 2014): the orientation channels of an image resampled by a factor ``f``
are close to the channels of the image itself resampled by ``f``, up to a
power law ``f**-lambda`` in their mean, so the channels need computing only
once per octave. Here the channels are the HOG's cell histograms (before the
normalisation of blocks); with ``mode="fast"``:

- a level is **exact** when it is the first one or at least :data:`EXACT_STEP`
  (half an octave, a factor sqrt(2)) below the last exact level (its image is
  resized, padded, and its histograms computed from the pixels, as with
  ``mode="exact"``);
- every other level's histograms are the histograms of the exact level above
  it (ratio ``f`` in [1, sqrt(2))) resampled to the level's cell grid
  (:func:`resample_cells`: bilinear, centres mapped exactly through image
  coordinates, replicated at the border), times ``f**-lambda``
  (:data:`LAMBDA`);
- then each level's histograms are normalised as usual (FHOG's four block
  norms, or Dalal-Triggs' blocks): the normalisation is per level, exact.

So the expensive per-pixel part (gradients, orientation votes) runs on the
exact levels only: at ``scale_step=1.1`` one level in four, a third of the
pixels of the whole pyramid. Dollar et al. compute one level per octave; here
that cost 0.013-0.017 AP50 on pennfudan and cmu_mit_faces against exact
pyramids, and half an octave none measurable (``benchmarks/pyramid.py``), for
5% (caltech101_subset) to 20% (faces, upsampled 2x) more predict time. The levels have exactly the grid shapes of
``mode="exact"``, so windows, boxes and templates are the same in both modes.
Haar-like features are not approximated: a model with them still resizes the
image at every level for its integral images.

The error of the approximation is measured in ``benchmarks/pyramid.py`` (per
level, against exact features) and bounded in ``tests/test_feature_pyramid.py``.
numpy and OpenCV only (the prediction path).
"""

import time

import cv2
import numpy as np

from .features.fhog import fhog_features, fhog_histograms
from .features.hog import hog_blocks, hog_cells
from .pyramid import resize_level

__all__ = ["Level", "PYRAMID_MODES", "EXACT_STEP", "LAMBDA", "exact_levels", "cell_histograms", "normalise_cells",
           "resample_cells", "feature_levels"]

#: ``"fast"``: histograms computed once per octave and resampled in between; ``"exact"``: every level from its pixels.
PYRAMID_MODES = ("fast", "exact")

#: Power-law exponent of the histograms' scaling (Dollar et al.'s lambda), per HOG variant: the histograms of an
#: image downsampled by ``f`` are on average ``f**-lambda`` times the resampled histograms of the image. Measured
#: on the shared data sets by ``benchmarks/pyramid.py``: about -0.3 for both variants (FHOG's histograms are sums
#: over a cell, Dalal-Triggs' means). It is not applied (0): FHOG's and Dalal-Triggs' block normalisation divides
#: any common scale of a neighbourhood's histograms out, up to their regularisers (1e-4 on uint8 gradients).
LAMBDA = {"felzenszwalb": 0.0, "dalal-triggs": 0.0}

#: A level is computed from its pixels when its scale is at most the last exact level's divided by this.
EXACT_STEP = 2 ** 0.5


class Level:
    """One pyramid level's features: the HOG grid (or None) and the integral images in Haar units (or None)."""

    __slots__ = ("grid", "ii", "ii2")

    def __init__(self, grid, ii, ii2):
        self.grid, self.ii, self.ii2 = grid, ii, ii2


def exact_levels(scales, mode="fast"):
    """Index of the exact level each level's histograms come from (its own index when it is exact).

    ``scales`` decrease. With ``mode="fast"`` level 0 is exact, and so is every level
    whose scale is at most the last exact level's divided by :data:`EXACT_STEP`; with
    ``"exact"`` every level is.
    """
    if mode not in PYRAMID_MODES:
        raise ValueError(f"mode must be one of {PYRAMID_MODES}, got {mode!r}")
    source, last = [], None
    for i, s in enumerate(scales):
        if mode == "exact" or last is None or scales[last] / s >= EXACT_STEP * (1 - 1e-9):
            last = i
        source.append(last)
    return source


def cell_histograms(image, fp):
    """The cell histograms of ``image`` that the HOG of ``fp`` normalises, float32 (rows, cols, bins).

    FHOG: :func:`~classic_loc.features.fhog.fhog_histograms` (18 bins, sums);
    Dalal-Triggs: :func:`~classic_loc.features.hog.hog_cells` (means per pixel).
    """
    if fp.variant == "felzenszwalb":
        return fhog_histograms(image, fp.cell_size).astype(np.float32)
    return hog_cells(image, fp.cell_size, fp.n_bins, signed=fp.signed, interpolate=fp.interpolate)


def normalise_cells(hist, fp):
    """The HOG grid of cell histograms (see :func:`cell_histograms`), as ``fp.grid(image)`` gives it."""
    if fp.variant == "felzenszwalb":
        return fhog_features(hist)
    return hog_blocks(hist, fp.block_size, fp.block_norm)


def resample_cells(hist, shape, factor, cell_size, pad_px, gain=1.0):
    """Histograms of an exact level resampled onto the cell grid of a smaller level.

    Parameters
    ----------
    hist : (R, C, B) float32
        Cell histograms of the exact level, padded by ``pad_px`` pixels per side
        (cell ``j`` centred at level pixel ``(j + 0.5) * cell_size - pad_px``).
    shape : (rows, cols)
        Cells of the target level (padded by ``pad_px`` of its own pixels).
    factor : (fy, fx)
        Exact-level pixels per target-level pixel, per axis (>= 1).
    cell_size : int
    pad_px : int
    gain : float
        Multiplies the result (the power-law correction).

    Returns
    -------
    (rows, cols, B) float32
        Cell ``i`` of the target takes the exact level's histograms at the point its
        centre maps to (bilinear; beyond the exact grid, its border cells).
    """
    rows, cols = shape
    if rows <= 0 or cols <= 0 or hist.shape[0] == 0 or hist.shape[1] == 0:
        return np.zeros((max(rows, 0), max(cols, 0), hist.shape[2]), np.float32)
    fy, fx = factor
    c, p = float(cell_size), float(pad_px)
    # target cell i (centre (i + 0.5) c - p in target pixels) -> exact cell j = a i + b
    m = np.array([[fx, 0.0, ((0.5 * c - p) * fx + p) / c - 0.5],
                  [0.0, fy, ((0.5 * c - p) * fy + p) / c - 0.5]])
    src = np.ascontiguousarray(hist, dtype=np.float32)
    out = np.empty((rows, cols, src.shape[2]), np.float32)
    for k in range(0, src.shape[2], 512):  # OpenCV warps at most 512 channels at once
        part = cv2.warpAffine(src[:, :, k:k + 512], m, (cols, rows), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_REPLICATE)
        out[:, :, k:k + 512] = part.reshape(rows, cols, -1)
    if gain != 1.0:
        out *= np.float32(gain)
    return out


def _add(timings, key, t0):
    if timings is not None:
        timings[key] = timings.get(key, 0.0) + time.perf_counter() - t0
    return time.perf_counter()


def _padded_level(image, s, pad_px):
    level, sy, sx = resize_level(image, s)
    if pad_px:
        level = cv2.copyMakeBorder(level, pad_px, pad_px, pad_px, pad_px, cv2.BORDER_REPLICATE)
    return level, sy, sx


def feature_levels(image, fp, scales, pad, mode="fast", timings=None):
    """Yield ``(scale, sy, sx, level)`` for each of ``scales``, ``level`` a :class:`Level`.

    ``image`` is prepared (``fp.prepare``); each level is the image resized by the scale
    and padded by ``pad`` cells of replicated border (``sy``, ``sx`` the exact factors
    of the resize). ``mode``: see :data:`PYRAMID_MODES`. Seconds are added to
    ``timings["pyramid"]`` (resizing) and ``timings["features"]``.
    """
    source = exact_levels(scales, mode)
    cell = fp.cell_size
    pad_px = pad * cell
    rows, cols = image.shape[:2]
    exact = None  # (index, sy, sx, histograms) of the last exact level
    for i, s in enumerate(scales):
        t0 = time.perf_counter()
        hog = fp.variant is not None
        needs_image = source[i] == i or fp.haar or not hog
        if needs_image:
            level, sy, sx = _padded_level(image, s, pad_px)
        else:
            sy, sx = max(1, int(round(rows * s))) / rows, max(1, int(round(cols * s))) / cols
        t0 = _add(timings, "pyramid", t0)
        grid = None
        if hog and source[i] == i:
            hist = cell_histograms(level, fp)
            if mode == "fast":
                exact = (sy, sx, hist)
            grid = normalise_cells(hist, fp)
        elif hog:
            e_sy, e_sx, e_hist = exact
            n_r = (max(1, int(round(rows * s))) + 2 * pad_px) // cell
            n_c = (max(1, int(round(cols * s))) + 2 * pad_px) // cell
            f = (e_sy / sy, e_sx / sx)
            gain = (np.sqrt(f[0] * f[1])) ** -LAMBDA[fp.variant]
            grid = normalise_cells(resample_cells(e_hist, (n_r, n_c), f, cell, pad_px, gain), fp)
        ii = ii2 = None
        if fp.haar:
            ii, ii2 = fp.integral(level)
        _add(timings, "features", t0)
        yield s, sy, sx, Level(grid, ii, ii2)
