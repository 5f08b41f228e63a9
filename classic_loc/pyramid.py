"""Image pyramids, and the mapping of window positions back to image coordinates.

A level is the image resized by a scale ``s <= upsample`` (``s = upsample / step**k``);
a window of ``(h, w)`` pixels at that level covers ``(h / s, w / s)`` image pixels.
Window positions are counted in cells of the feature grid: the window whose
top-left cell is ``(r, c)`` starts at level pixel ``(c * cell, r * cell)``.
numpy and OpenCV only.
"""

import math

import cv2
import numpy as np

__all__ = ["level_scales", "resize_level", "window_boxes", "scale_range"]


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
    if scale_step <= 1:
        raise ValueError(f"scale_step must be > 1, got {scale_step}")
    rows, cols = image_shape[:2]
    smallest = max(min_window[0] / rows, min_window[1] / cols, scale_min)  # a level must hold one window
    scales = []
    s = upsample
    while s >= smallest * (1 - 1e-9):
        if s <= scale_max * (1 + 1e-9):
            scales.append(s)
        s /= scale_step
    return scales


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
