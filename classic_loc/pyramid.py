"""Image pyramids, and the mapping of window positions back to image coordinates.

A level is the image resized by a scale ``s <= upsample`` (``s = upsample / step**k``);
a window of ``(h, w)`` pixels at that level covers ``(h / s, w / s)`` image pixels.
Window positions are counted in cells of the feature grid: the window whose
top-left cell is ``(r, c)`` starts at level pixel ``(c * cell, r * cell)``.
numpy and OpenCV only.

Limits
------
One image's pyramid may have at most :data:`MAX_LEVELS` levels, its largest level at
most :data:`MAX_LEVEL_PIXELS` pixels, and all its levels together at most
:data:`MAX_WINDOWS` window positions (summed over the templates scanned at each
level). A setting that exceeds one of them for an image (``scale_step`` close to 1,
a large ``upsample`` on a large image) raises a :class:`~classic_loc.errors.DataError`
naming the image size and the settings, before any level is made. At the default
settings a 1920x1080 image has 30 levels and 0.16 million windows per template.
"""

import math

import cv2
import numpy as np

from .errors import DataError

__all__ = ["auto_upsample", "MAX_AUTO_UPSAMPLE", "level_scales", "resize_level", "window_boxes", "scale_range", "reachable_scales", "check_pyramid",
           "MAX_LEVELS", "MAX_LEVEL_PIXELS", "MAX_WINDOWS"]

#: Pyramid levels per image at most.
MAX_LEVELS = 1000
#: Pixels of the largest pyramid level at most (an ``upsample`` of 2 on a 4096 x 4096 image is 67 million).
MAX_LEVEL_PIXELS = 2**27
#: Window positions per image at most (all levels and templates; a 1080p image has 0.16 million per template at the defaults).
MAX_WINDOWS = 20_000_000


#: ``upsample="auto"`` upsamples at most this much (twice the size, as dlib's detectors are usually run); boxes
#: smaller still are framed by a smaller window (see :func:`classic_loc.training.samples.choose_window`).
MAX_AUTO_UPSAMPLE = 2.0


def auto_upsample(boxes_per_class, window_area, cell_size, min_cells=2, limit=MAX_AUTO_UPSAMPLE, window=None):
    """The first pyramid level's scale at which every class's window of ``window_area`` cells fits its small boxes.

    A window can only frame objects at least as large as its object part at the largest
    pyramid scale. Per class, the object part has the boxes' median aspect ratio and
    ``window_area`` cells (as :func:`~classic_loc.training.samples.choose_window` makes it);
    the scale needed is the one at which the 10% smallest boxes (height and width, as
    there) are as large as that part. The largest need over the classes decides, from 1
    (no upsampling) to ``limit``.

    Parameters
    ----------
    boxes_per_class : list of (N_k, 4) arrays, xyxy
    window_area, cell_size, min_cells : int
    window : (rows, cols), optional
        The object part of every class's window in cells, when the window is given
        (``window_cells`` less the context) rather than chosen from ``window_area``.

    Returns
    -------
    float in [1, limit]

    Examples
    --------
    Half the faces 28 px wide, half 60 px; a window of 48 cells of 8 px (6.9 x 6.9 cells,
    55.4 px) fits the smallest ones at about twice their size:

    >>> import numpy as np
    >>> boxes = np.array([[0, 0, 28, 28]] * 5 + [[0, 0, 60, 60]] * 5)
    >>> round(auto_upsample([boxes], 48, 8), 3)
    1.979
    >>> auto_upsample([boxes * 4], 48, 8)  # 112 px and more: no upsampling
    1.0
    """
    need = 1.0
    for b in boxes_per_class:
        b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
        w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
        ok = (w > 0) & (h > 0)
        if not ok.any():
            continue
        w, h = w[ok], h[ok]
        if window is not None:
            rows, cols = window
        else:
            aspect = float(np.exp(np.median(np.log(w / h))))
            rows = max(min_cells, math.sqrt(window_area / aspect))
            cols = max(min_cells, rows * aspect)
        need = max(need, rows * cell_size / np.percentile(h, 10), cols * cell_size / np.percentile(w, 10))
    return float(min(limit, need))


def _too_large(image_shape, problem, fix):
    rows, cols = image_shape[:2]
    return DataError("Localizer", f"a {rows}x{cols} image", problem, fix, kind="pyramid too large")


def level_scales(image_shape, min_window, scale_step=1.2, upsample=1.0, scale_min=0.0, scale_max=math.inf):
    """Scales of the pyramid levels of an image, largest first.

    Parameters
    ----------
    image_shape : (rows, cols, ...)
    min_window : (rows, cols)
        The smallest window (in pixels) scanned; no level smaller than it is made.
    scale_step : float > 1
        Ratio between consecutive levels.
    upsample : float
        Scale of the first level (1: the image itself, 2: twice its size).
    scale_min, scale_max : float
        Only scales in ``[scale_min, scale_max]`` are returned.

    Returns
    -------
    list of float
    """
    if not (scale_step > 1 and upsample > 0 and min(min_window) > 0):
        raise ValueError(f"level_scales needs scale_step > 1, upsample > 0 and a window of positive size, got "
                         f"{scale_step}, {upsample}, {min_window}")
    rows, cols = image_shape[:2]
    smallest = max(min_window[0] / rows, min_window[1] / cols, scale_min)  # a level must hold one window
    top = min(upsample, scale_max * (1 + 1e-9))
    if top >= smallest * (1 - 1e-9):  # levels upsample / step**k for k in [k0, k1]: count them before making them
        k0 = max(0, math.ceil(math.log(upsample / (scale_max * (1 + 1e-9))) / math.log(scale_step) - 1e-9)) \
            if math.isfinite(scale_max) else 0
        k1 = math.floor(math.log(upsample / (smallest * (1 - 1e-9))) / math.log(scale_step) + 1e-9)
        if k1 - k0 + 1 > MAX_LEVELS:
            raise _too_large(image_shape, f"scale_step={scale_step} and upsample={upsample} make {k1 - k0 + 1} "
                             f"pyramid levels, more than the limit of {MAX_LEVELS} (classic_loc.pyramid.MAX_LEVELS)",
                             "use a larger scale_step or a smaller upsample")
    scales = []
    s = upsample
    while s >= smallest * (1 - 1e-9):
        if s <= scale_max * (1 + 1e-9):
            scales.append(s)
        s /= scale_step
    return scales


def reachable_scales(scale_range, scale_step, upsample):
    """True when some level scale ``upsample / scale_step**k`` (k >= 0) lies in ``scale_range`` (lo, hi).

    A template whose range holds no level is never run, whatever the image:
    its class cannot be detected with these settings.
    """
    lo, hi = scale_range
    if upsample < lo * (1 - 1e-9):
        return False
    if upsample <= hi * (1 + 1e-9):
        return True
    k = math.ceil(math.log(upsample / (hi * (1 + 1e-9))) / math.log(scale_step) - 1e-9)
    return upsample / scale_step ** k >= lo * (1 - 1e-9)


def check_pyramid(image_shape, scales, cell_size, pad, windows, scale_step, upsample):
    """Raise DataError when the pyramid of ``scales`` is over :data:`MAX_LEVEL_PIXELS` or :data:`MAX_WINDOWS`.

    ``windows`` lists ``(window_cells, scale_range)`` per template; each level is
    padded by ``pad`` cells per side (see :func:`classic_loc.scan.pyramid_levels`).
    Returns the number of window positions.
    """
    rows, cols = image_shape[:2]
    if not scales:
        return 0
    setting = f"scale_step={scale_step}, upsample={upsample}"
    top = max(1, round(rows * scales[0])) * max(1, round(cols * scales[0]))
    if top > MAX_LEVEL_PIXELS:
        raise _too_large(image_shape, f"with {setting} its largest pyramid level has {top:,} pixels, more than "
                         f"the limit of {MAX_LEVEL_PIXELS:,} (classic_loc.pyramid.MAX_LEVEL_PIXELS)",
                         "use a smaller upsample, or shrink the image")
    total = 0
    for s in scales:
        n_r = max(1, round(rows * s)) // cell_size + 2 * pad
        n_c = max(1, round(cols * s)) // cell_size + 2 * pad
        for wc, (lo, hi) in windows:
            if lo * (1 - 1e-9) <= s <= hi * (1 + 1e-9):
                total += max(0, n_r - wc[0] + 1) * max(0, n_c - wc[1] + 1)
    if total > MAX_WINDOWS:
        raise _too_large(image_shape, f"with {setting} its pyramid has {total:,} windows, more than the limit of "
                         f"{MAX_WINDOWS:,} (classic_loc.pyramid.MAX_WINDOWS)",
                         "use a larger scale_step or a smaller upsample, or shrink the image")
    return total


def scale_range(window, min_size, max_size):
    """Scales at which a window of ``window`` (rows, cols) pixels covers objects of ``min_size..max_size``.

    Object size is the longer side of the box in image pixels.
    """
    longer = max(window)
    lo = longer / max_size if max_size else 0.0
    hi = longer / min_size if min_size else math.inf
    return lo, hi


def resize_level(image, scale):
    """Resize ``image`` by ``scale``; returns ``(level, sy, sx)`` with the exact per-axis factors."""
    rows, cols = image.shape[:2]
    new_rows, new_cols = max(1, int(round(rows * scale))), max(1, int(round(cols * scale)))
    if (new_rows, new_cols) == (rows, cols):
        return image, 1.0, 1.0
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    level = cv2.resize(image, (new_cols, new_rows), interpolation=interp)
    return level, new_rows / rows, new_cols / cols


def window_boxes(r, c, window_cells, cell_size, sy, sx, margin=0):
    """Image-coordinate boxes of windows at cell positions ``(r, c)`` of a level.

    With ``margin`` > 0 the box is the window's inner region, ``margin`` cells
    in from each side: where the template expects the object, the margin
    being its context.

    Parameters
    ----------
    r, c : array-like of int, shape (N,)
        Top-left cell of each window.
    window_cells : (rows, cols)
        Window size in cells.
    cell_size : int
    sy, sx : float
        The level's scale factors (level pixels per image pixel).

    Returns
    -------
    ndarray of shape (N, 4), xyxy in image pixels.
    """
    r = np.asarray(r, dtype=np.float64)
    c = np.asarray(c, dtype=np.float64)
    x1, y1 = (c + margin) * cell_size / sx, (r + margin) * cell_size / sy
    w, h = (window_cells[1] - 2 * margin) * cell_size / sx, (window_cells[0] - 2 * margin) * cell_size / sy
    return np.stack([x1, y1, x1 + w, y1 + h], axis=1)
