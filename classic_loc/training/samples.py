"""Training windows: window shapes, positives, negatives, box-regression samples, reachability.

Window features come from the same :class:`~classic_loc.scan.HogParams` the
scan uses. A positive is the object's box warped onto the window with one cell
of image context around it, so that its border blocks see the same gradients
as in the scan, where the whole image supplies them.
"""

import math

import cv2
import numpy as np

from ..boxes import box_iou
from ..features.hog import window_view
from ..pyramid import level_scales, resize_level, window_boxes
from ..scan import box_deltas

__all__ = ["choose_window", "warp_features", "positive_features", "regression_samples", "random_negatives",
           "reachability"]


def choose_window(boxes, window_area, min_cells, context=0):
    """Window shape ``(rows, cols)`` in cells for boxes (N, 4).

    The object part has the boxes' median aspect ratio and about
    ``window_area`` cells; ``context`` cells are added on every side.
    """
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    aspect = float(np.exp(np.median(np.log(w / h))))  # width / height
    rows = max(min_cells, int(round(math.sqrt(window_area / aspect))))
    cols = max(min_cells, int(round(rows * aspect)))
    return rows + 2 * context, cols + 2 * context


def warp_features(gray, boxes, window_cells, hog, flip=False, context=0):
    """Feature vectors of object ``boxes`` (N, 4) of ``gray``, each warped onto the window.

    The box fills the window's inner region (``context`` cells in from each
    side). Returns (N, D) float32: the window's blocks of the HOG grid of a
    patch with one more cell of image around the window, so that the border
    blocks see the same gradients as in the scan.
    """
    rows, cols = window_cells
    cell = hog.cell_size
    m = 1  # image around the window, in cells
    out_w, out_h = (cols + 2 * m) * cell, (rows + 2 * m) * cell
    wb_r, wb_c = rows - hog.block_size + 1, cols - hog.block_size + 1
    feats = np.empty((len(boxes), hog.window_dim(window_cells)), np.float32)
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        sx, sy = (cols - 2 * context) * cell / (x2 - x1), (rows - 2 * context) * cell / (y2 - y1)
        # crop the region around the window (with replicated borders), then resize it onto the patch
        cx1, cy1 = x1 - (m + context) * cell / sx, y1 - (m + context) * cell / sy
        cx2, cy2 = x2 + (m + context) * cell / sx, y2 + (m + context) * cell / sy
        ix1, iy1, ix2, iy2 = int(math.floor(cx1)), int(math.floor(cy1)), int(math.ceil(cx2)), int(math.ceil(cy2))
        pad = max(0, -ix1, -iy1, ix2 - gray.shape[1], iy2 - gray.shape[0])
        src = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REPLICATE) if pad else gray
        crop = src[iy1 + pad:iy2 + pad, ix1 + pad:ix2 + pad]
        # area-average first when shrinking (as the pyramid does), then place the float region exactly
        ax, ay = out_w / (cx2 - cx1), out_h / (cy2 - cy1)
        fx = fy = 1.0
        if ax < 1 or ay < 1:
            small = (max(1, int(round(crop.shape[1] * min(ax, 1)))), max(1, int(round(crop.shape[0] * min(ay, 1)))))
            fx, fy = crop.shape[1] / small[0], crop.shape[0] / small[1]
            crop = cv2.resize(crop, small, interpolation=cv2.INTER_AREA)
        mat = np.array([[ax * fx, 0, (ix1 - cx1) * ax], [0, ay * fy, (iy1 - cy1) * ay]], np.float64)
        patch = cv2.warpAffine(crop, mat, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        if flip:
            patch = patch[:, ::-1]
        grid = hog.grid(np.ascontiguousarray(patch))
        feats[i] = grid[m:m + wb_r, m:m + wb_c].ravel()
    return feats


def _jitter(boxes, rng, amount):
    """Boxes shifted and scaled by up to ``amount`` of their size."""
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    d = rng.uniform(-amount, amount, (len(boxes), 4))
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2 + d[:, 0] * w, (boxes[:, 1] + boxes[:, 3]) / 2 + d[:, 1] * h
    w, h = w * np.exp(d[:, 2]), h * np.exp(d[:, 3])
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


def canonical_windows(boxes, window_cells, context=0):
    """For each box, the box of the window's inner aspect, same area and centre: what the scan can best place on it."""
    aspect = (window_cells[1] - 2 * context) / (window_cells[0] - 2 * context)
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    size = np.sqrt(w * h)
    pw, ph = size * math.sqrt(aspect), size / math.sqrt(aspect)
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    return np.stack([cx - pw / 2, cy - ph / 2, cx + pw / 2, cy + ph / 2], axis=1)


def positive_features(gray, boxes, window_cells, hog, rng, n_jitter=0, jitter=0.04, flip=True, context=0):
    """Positives of one image: each box's canonical window, ``n_jitter`` jittered copies, and mirror images.

    The window keeps the template's aspect ratio (the box is not squashed onto
    it), as the scan sees the object; the ridge regressor learns the rest.
    """
    boxes = canonical_windows(boxes, window_cells, context)
    sets = [boxes] + [_jitter(boxes, rng, jitter) for _ in range(n_jitter)]
    all_boxes = np.concatenate(sets)
    feats = [warp_features(gray, all_boxes, window_cells, hog, context=context)]
    if flip:
        feats.append(warp_features(gray, all_boxes, window_cells, hog, flip=True, context=context))
    return np.concatenate(feats)


def regression_samples(gray, boxes, window_cells, hog, rng, n_per_box=8, min_iou=0.5, context=0):
    """Windows near each box (IoU >= ``min_iou``, the window's aspect), their features and target offsets.

    Proposals have the template's aspect ratio, like scanned windows, and are
    scattered around the box by up to about a pyramid step in scale and a few
    cells in position.
    """
    feats, targets = [], []
    for box, canon in zip(boxes, canonical_windows(boxes, window_cells, context)):
        pw0, ph0 = canon[2] - canon[0], canon[3] - canon[1]
        s = np.exp(rng.uniform(-0.25, 0.25, 3 * n_per_box))
        pw, ph = pw0 * s, ph0 * s
        cx = (box[0] + box[2]) / 2 + rng.uniform(-0.2, 0.2, len(s)) * pw
        cy = (box[1] + box[3]) / 2 + rng.uniform(-0.2, 0.2, len(s)) * ph
        props = np.stack([cx - pw / 2, cy - ph / 2, cx + pw / 2, cy + ph / 2], axis=1)
        ok = box_iou(props, box[None])[:, 0] >= min_iou
        props = props[ok][:n_per_box]
        if len(props) == 0:
            continue
        feats.append(warp_features(gray, props, window_cells, hog, context=context))
        targets.append(box_deltas(props, np.repeat(box[None], len(props), axis=0)))
    if not feats:
        return np.zeros((0, hog.window_dim(window_cells)), np.float32), np.zeros((0, 4))
    return np.concatenate(feats), np.concatenate(targets)


def random_negatives(gray, avoid, window_cells, hog, rng, n, scale_step, upsample, scale_range, neg_iou, context=0):
    """Up to ``n`` random scan windows of the pyramid whose IoU with every box in ``avoid`` is < ``neg_iou``."""
    cell = hog.cell_size
    window_px = (window_cells[0] * cell, window_cells[1] * cell)
    scales = level_scales(gray.shape, window_px, scale_step, upsample, *scale_range)
    if not scales or n <= 0:
        return np.zeros((0, hog.window_dim(window_cells)), np.float32)
    picks = rng.choice(len(scales), size=min(len(scales), max(1, n // 4)), replace=False)
    per_level = int(math.ceil(n / len(picks)))
    out = []
    for li in picks:
        level, sy, sx = resize_level(gray, scales[li])
        grid = hog.grid(level)
        view = window_view(grid, window_cells)
        if view.shape[0] == 0 or view.shape[1] == 0:
            continue
        r = rng.integers(0, view.shape[0], 4 * per_level)
        c = rng.integers(0, view.shape[1], 4 * per_level)
        boxes = window_boxes(r, c, window_cells, cell, sy, sx, context)
        ok = np.ones(len(r), bool) if len(avoid) == 0 else box_iou(boxes, avoid).max(axis=1) < neg_iou
        r, c = r[ok][:per_level], c[ok][:per_level]
        if len(r):
            out.append(np.ascontiguousarray(view[r, c].reshape(len(r), -1)))
    return np.concatenate(out)[:n] if out else np.zeros((0, hog.window_dim(window_cells)), np.float32)


def reachability(image_shape, boxes, window_cells, hog, scale_step, upsample, scale_range, context=0):
    """Best IoU any scan window of the template can reach with each box (N,), from the grid geometry alone."""
    cell = hog.cell_size
    rows, cols = image_shape[:2]
    window_px = (window_cells[0] * cell, window_cells[1] * cell)
    best = np.zeros(len(boxes))
    for s in level_scales(image_shape, window_px, scale_step, upsample, *scale_range):
        nr, nc = int(round(rows * s)), int(round(cols * s))
        sy, sx = nr / rows, nc / cols
        n_pos_r = nr // cell - window_cells[0] + 1
        n_pos_c = nc // cell - window_cells[1] + 1
        if n_pos_r <= 0 or n_pos_c <= 0:
            continue
        # the nearest window positions to each box's top-left corner (2 x 2 candidates per box)
        r0 = np.floor(boxes[:, 1] * sy / cell) - context
        c0 = np.floor(boxes[:, 0] * sx / cell) - context
        for dr in (0, 1):
            for dc in (0, 1):
                r = np.clip(r0 + dr, 0, n_pos_r - 1)
                c = np.clip(c0 + dc, 0, n_pos_c - 1)
                win = window_boxes(r, c, window_cells, cell, sy, sx, context)
                iou = _paired_iou(win, boxes)
                best = np.maximum(best, iou)
    return best


def _paired_iou(a, b):
    lt = np.maximum(a[:, :2], b[:, :2])
    rb = np.minimum(a[:, 2:], b[:, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[:, 0] * wh[:, 1]
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    return inter / (area(a) + area(b) - inter)


def gray_image(dataset, i, hog):
    """Image ``i`` of ``dataset`` as the features see it (gray, or RGB for colour HOG)."""
    return hog.prepare(dataset.image(i))
