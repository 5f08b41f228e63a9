"""Training windows, taken from the scan itself: window shapes, positives, negatives, regression samples.

Every training window is a window of the scan: the image's pyramid levels
and their features are made exactly as at prediction
(:func:`classic_loc.scan.pyramid_levels`), and windows are taken from them. So positives carry the same position and scale
quantisation the detector meets at test time (the scan never places a window
exactly on an object), and the box regressor learns from the very offsets it
will have to correct.
"""

import math

import numpy as np

from ..boxes import _paired_iou, box_iou
from ..pyramid import level_scales, window_boxes
from ..scan import box_deltas, level_features, n_positions, pyramid_levels, template_dim

__all__ = ["choose_window", "image_samples", "reachability", "training_image"]


def choose_window(boxes, window_area, min_cells, cell_size, context=0, upsample=1.0):
    """Window shape ``(rows, cols)`` in cells for boxes (N, 4).

    The object part has the boxes' median aspect ratio and about
    ``window_area`` cells, made smaller (down to ``min_cells``) where needed so
    that it fits the 10% smallest boxes at the pyramid's largest scale: without
    upsampling, a window larger than an object can never frame it.
    ``context`` cells are added on every side.
    """
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    aspect = float(np.exp(np.median(np.log(w / h))))  # width / height
    rows = math.sqrt(window_area / aspect)
    fit = min(1.0, np.percentile(h, 10) * upsample / (rows * cell_size),
              np.percentile(w, 10) * upsample / (rows * aspect * cell_size))
    rows *= fit
    rows_i = max(min_cells, int(round(rows)))
    cols_i = max(min_cells, int(round(rows * aspect)))
    return rows_i + 2 * context, cols_i + 2 * context


def training_image(dataset, i, fp):
    """Image ``i`` of ``dataset`` as the features see it (gray, or RGB for colour HOG)."""
    return fp.prepare(dataset.image(i))


def _windows_near(boxes, window_cells, cell, sy, sx, n_pos, context, radius=2):
    """Window positions around each box at one level (padded by ``context`` cells, see ``pyramid_grids``).

    Returns ``(box_index, r, c, window_object_boxes)`` for the ``(2 * radius + 1)**2``
    grid positions nearest each box's top-left corner that lie on the level.
    """
    if len(boxes) == 0:
        return np.zeros(0, int), np.zeros(0, int), np.zeros(0, int), np.zeros((0, 4))
    offs = np.arange(-radius, radius + 1)
    r0 = np.round(boxes[:, 1] * sy / cell).astype(int)  # the padding cancels the context margin
    c0 = np.round(boxes[:, 0] * sx / cell).astype(int)
    bi = np.repeat(np.arange(len(boxes)), len(offs) ** 2)
    r = (r0[:, None, None] + offs[None, :, None] + 0 * offs[None, None, :]).reshape(-1)
    c = (c0[:, None, None] + 0 * offs[None, :, None] + offs[None, None, :]).reshape(-1)
    ok = (r >= 0) & (r < n_pos[0]) & (c >= 0) & (c < n_pos[1])
    bi, r, c = bi[ok], r[ok], c[ok]
    return bi, r, c, window_boxes(r - context, c - context, window_cells, cell, sy, sx, context)


def _mirror(boxes, width):
    return np.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], axis=1)


def image_samples(image, positives, avoid, geometry, fp, p, rng, regression=True):
    """Training windows of one image for every class.

    Parameters
    ----------
    image : ndarray, as the features see it
    positives : list of (N_k, 4) boxes per class that may be positives (not difficult or crowd)
    avoid : list of (M_k, 4) boxes per class no negative of that class may overlap (all of its boxes)
    geometry : list of Template per class (window shape, scale range, context and Haar
        features are read; not the weights)
    fp : FeatureParams
    p : dict of settings (``scale_step``, ``upsample``, ``context``, ``pos_iou``, ``neg_iou``,
        ``flip``, ``random_negatives_per_image``)
    rng : numpy Generator (drawn from for the random negatives only)
    regression : bool
        Make the regression samples too (else that part is empty; the random draws do not
        depend on it).

    Returns
    -------
    pos, neg : lists of (n, D_k) float32 arrays per class
    reg : list of (features (n, D_k), deltas (n, 4)) per class, windows with IoU >= 0.5
    """
    n_k, cell, ctx = len(geometry), fp.cell_size, p["context"]
    windows = [t.window_cells for t in geometry]
    ranges = [t.scale_range for t in geometry]
    pos = [[] for _ in range(n_k)]
    neg = [[] for _ in range(n_k)]
    reg_x = [[] for _ in range(n_k)]
    reg_y = [[] for _ in range(n_k)]
    width = image.shape[1]
    levels = list(pyramid_levels(image, fp, geometry, p["scale_step"], p["upsample"]))
    n_rand = p["random_negatives_per_image"]
    for flipped in ((False, True) if p["flip"] else (False,)):
        if flipped:
            levels = None  # the unflipped levels go before the flipped ones are made
            levels = list(pyramid_levels(np.ascontiguousarray(image[:, ::-1]), fp, geometry, p["scale_step"],
                                         p["upsample"]))
        boxes = [_mirror(b, width) if flipped else b for b in positives]
        for s, sy, sx, level in levels:
            for k, wc in enumerate(windows):
                if not (ranges[k][0] * (1 - 1e-9) <= s <= ranges[k][1] * (1 + 1e-9)):
                    continue
                n_pos = n_positions(level, fp, wc)
                if n_pos[0] == 0 or n_pos[1] == 0:
                    continue
                # positives and regression samples: scan windows on this class's objects
                bi, r, c, wb = _windows_near(boxes[k], wc, cell, sy, sx, n_pos, ctx)
                if len(bi):
                    iou = _paired_iou(wb, boxes[k][bi])
                    keep = iou >= p["pos_iou"]
                    near = iou >= 0.5 if regression else np.zeros(len(iou), bool)
                    use = np.flatnonzero(keep | near)  # only the windows wanted are gathered
                    if len(use):
                        feats = level_features(level, fp, geometry[k], r[use], c[use])
                        if keep.any():
                            pos[k].append(np.ascontiguousarray(feats[keep[use]]))
                        if near.any():
                            reg_x[k].append(np.ascontiguousarray(feats[near[use]]))
                            reg_y[k].append(box_deltas(wb[near], boxes[k][bi[near]]))
                if flipped:
                    continue
                # negatives: windows on other classes' objects, and random windows
                for j in range(n_k):
                    if j == k or len(positives[j]) == 0:
                        continue
                    bj, r, c, wb = _windows_near(positives[j], wc, cell, sy, sx, n_pos, ctx, radius=1)
                    ok = _paired_iou(wb, positives[j][bj]) >= 0.5
                    if len(avoid[k]):
                        ok &= box_iou(wb, avoid[k]).max(axis=1) < p["neg_iou"]
                    if ok.any():
                        neg[k].append(level_features(level, fp, geometry[k], r[ok], c[ok]))
                n = max(1, int(round(n_rand / len(levels))))
                r = rng.integers(0, n_pos[0], 3 * n)
                c = rng.integers(0, n_pos[1], 3 * n)
                wb = window_boxes(r - ctx, c - ctx, wc, cell, sy, sx, ctx)
                ok = np.ones(len(r), bool) if len(avoid[k]) == 0 else box_iou(wb, avoid[k]).max(axis=1) < p["neg_iou"]
                r, c = r[ok][:n], c[ok][:n]
                if len(r):
                    neg[k].append(level_features(level, fp, geometry[k], r, c))

    def stack(parts, k):
        return np.concatenate(parts) if parts else np.zeros((0, template_dim(fp, geometry[k])), np.float32)

    return ([stack(pos[k], k) for k in range(n_k)], [stack(neg[k], k) for k in range(n_k)],
            [(stack(reg_x[k], k), np.concatenate(reg_y[k]) if reg_y[k] else np.zeros((0, 4))) for k in range(n_k)])


def reachability(image_shape, boxes, window_cells, fp, scale_step, upsample, scale_range, context=0):
    """Best IoU any scan window of the template can reach with each box (N,), from the grid geometry alone."""
    cell = fp.cell_size
    rows, cols = image_shape[:2]
    inner_px = ((window_cells[0] - 2 * context) * cell, (window_cells[1] - 2 * context) * cell)
    best = np.zeros(len(boxes))
    for s in level_scales(image_shape, inner_px, scale_step, upsample, *scale_range):
        nr, nc = int(round(rows * s)), int(round(cols * s))
        n_pos = (nr // cell + 2 * context - window_cells[0] + 1, nc // cell + 2 * context - window_cells[1] + 1)
        if n_pos[0] <= 0 or n_pos[1] <= 0:
            continue
        bi, r, c, wb = _windows_near(boxes, window_cells, cell, nr / rows, nc / cols, n_pos, context)
        if len(bi):
            np.maximum.at(best, bi, _paired_iou(wb, boxes[bi]))
    return best
