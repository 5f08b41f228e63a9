"""The one box convention of classic_loc, and the operations on it.

Inside the package every box is a float array of shape ``(N, 4)`` holding
``x1, y1, x2, y2`` in continuous pixel coordinates: the top-left corner of the
image is ``(0, 0)``, the bottom-right corner of a ``W x H`` image is ``(W, H)``,
and a box's width is ``x2 - x1`` (no ``+1``). Images are indexed ``(row, col)``;
boxes are ``(x, y)``. File formats with other conventions (VOC's 1-based
inclusive pixels, COCO's ``x, y, w, h``, YOLO's normalised centres) are
converted at the edges, in :mod:`classic_loc.datasets`.

Boundary semantics, as in torchvision:

- :func:`nms` drops a box whose IoU with a kept, higher-scored box is
  *strictly greater* than the threshold; a box at exactly the threshold is kept.
  With a ``cover_threshold`` it also drops a box when *more than* that share of
  its own area lies inside a kept, higher-scored box (dlib's "percent covered"
  test, which removes parts of an object detected inside the whole).
- A detection matches a ground-truth box when their IoU is *greater than or
  equal to* the threshold (see :mod:`classic_loc.evaluation`).
"""

import numpy as np

__all__ = [
    "as_boxes",
    "box_convert",
    "box_area",
    "box_iou",
    "clip_boxes",
    "nms",
    "batched_nms",
]

_FORMATS = ("xyxy", "xywh", "cxcywh")


def as_boxes(boxes):
    """Return ``boxes`` as a float64 array of shape (N, 4).

    Parameters
    ----------
    boxes : array-like of shape (N, 4) or (4,)
        A single box is promoted to shape (1, 4); an empty sequence gives (0, 4).

    Returns
    -------
    ndarray of shape (N, 4), dtype float64

    Examples
    --------
    >>> as_boxes([1, 2, 3, 4])
    array([[1., 2., 3., 4.]])
    >>> as_boxes([]).shape
    (0, 4)
    """
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, 4), dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"boxes must have shape (N, 4), got {arr.shape}")
    return arr


def box_convert(boxes, in_fmt, out_fmt):
    """Convert boxes between ``"xyxy"``, ``"xywh"`` and ``"cxcywh"``.

    Parameters
    ----------
    boxes : array-like of shape (N, 4)
    in_fmt, out_fmt : {"xyxy", "xywh", "cxcywh"}
        ``xyxy`` is corners, ``xywh`` is top-left corner plus size (COCO),
        ``cxcywh`` is centre plus size (YOLO, before normalisation).

    Returns
    -------
    ndarray of shape (N, 4), dtype float64

    Examples
    --------
    >>> box_convert([[10, 20, 30, 60]], "xyxy", "xywh")
    array([[10., 20., 20., 40.]])
    >>> box_convert([[20, 40, 20, 40]], "cxcywh", "xyxy")
    array([[10., 20., 30., 60.]])
    """
    for fmt in (in_fmt, out_fmt):
        if fmt not in _FORMATS:
            raise ValueError(f"unknown box format {fmt!r}; use one of {_FORMATS}")
    b = as_boxes(boxes).copy()
    if in_fmt == out_fmt:
        return b
    if in_fmt == "xywh":
        b[:, 2:] += b[:, :2]
    elif in_fmt == "cxcywh":
        half = b[:, 2:] / 2.0
        b = np.concatenate([b[:, :2] - half, b[:, :2] + half], axis=1)
    # b is xyxy now
    if out_fmt == "xywh":
        b[:, 2:] -= b[:, :2]
    elif out_fmt == "cxcywh":
        wh = b[:, 2:] - b[:, :2]
        b = np.concatenate([b[:, :2] + wh / 2.0, wh], axis=1)
    return b


def box_area(boxes):
    """Area of each ``xyxy`` box; degenerate boxes have area 0.

    Returns
    -------
    ndarray of shape (N,)

    Examples
    --------
    >>> box_area([[0, 0, 2, 3], [5, 5, 4, 9]])
    array([6., 0.])
    """
    b = as_boxes(boxes)
    return np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)


def _intersection(a, b):
    """Pairwise intersection areas of (N, 4) and (M, 4) boxes: (N, M)."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    return wh[..., 0] * wh[..., 1]


def _paired_iou(a, b):
    """IoU of each box of ``a`` (N, 4) with the box at the same index of ``b`` (N, 4): (N,)."""
    lt = np.maximum(a[:, :2], b[:, :2])
    rb = np.minimum(a[:, 2:], b[:, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[:, 0] * wh[:, 1]
    union = box_area(a) + box_area(b) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def box_iou(boxes1, boxes2):
    """Intersection over union of every pair of ``xyxy`` boxes.

    Parameters
    ----------
    boxes1 : array-like of shape (N, 4)
    boxes2 : array-like of shape (M, 4)

    Returns
    -------
    ndarray of shape (N, M)
        IoU in [0, 1]; a pair whose union is empty has IoU 0.

    Examples
    --------
    >>> box_iou([[0, 0, 2, 2]], [[1, 0, 3, 2], [0, 0, 2, 2]])
    array([[0.33333333, 1.        ]])
    """
    a, b = as_boxes(boxes1), as_boxes(boxes2)
    inter = _intersection(a, b)
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
    return iou


def clip_boxes(boxes, shape):
    """Clip ``xyxy`` boxes to an image of ``shape`` ``(rows, cols, ...)``.

    Examples
    --------
    >>> clip_boxes([[-5, 3, 120, 90]], (80, 100))
    array([[  0.,   3., 100.,  80.]])
    """
    b = as_boxes(boxes).copy()
    h, w = shape[0], shape[1]
    b[:, 0::2] = np.clip(b[:, 0::2], 0, w)
    b[:, 1::2] = np.clip(b[:, 1::2], 0, h)
    return b


#: Boxes :func:`nms` takes from the top of the ranking at a time (measured: 8 is faster than 1, 4 and 16 on
#: the scans of the test sets, 250 to 1100 candidates, 5 to 65 kept).
_NMS_ROUND = 8


def _suppressed(b, areas, labels, rows, live, iou_threshold, cover_threshold):
    """Which boxes of ``live`` each box of ``rows`` would drop: (len(rows), len(live)) bool.

    ``b`` (N, 4), ``areas`` (N,) and ``labels`` (N,) (or None) are indexed by ``rows`` and
    ``live``. The arithmetic of comparing one kept box with the rest, elementwise: the same
    decisions.
    """
    inter = _intersection(b[rows], b[live])
    own = areas[live][None, :]
    union = areas[rows][:, None] + own - inter
    drop = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0) > iou_threshold
    if cover_threshold is not None:
        drop |= np.where(own > 0, inter / np.where(own > 0, own, 1.0), 0.0) > cover_threshold
    if labels is not None:
        drop &= labels[rows][:, None] == labels[live][None, :]
    return drop


def _greedy_nms(b, s, labels, iou_threshold, cover_threshold):
    """Greedy suppression of boxes ``b`` by scores ``s``, within each label (``labels`` None: one label).

    The boxes are visited from the highest score down (ties in input order); each kept box drops
    the later boxes it overlaps. A round takes the :data:`_NMS_ROUND` best boxes still in the
    running, computes their overlaps with all of those at once, and settles them in order (kept
    unless a box kept before them in the round drops them): fewer vector operations than one
    round per kept box, with the same result.
    """
    order = np.argsort(-s, kind="stable")
    b, areas = b[order], box_area(b)[order]
    lab = None if labels is None else labels[order]
    live = np.arange(len(order))
    keep = []
    with np.errstate(divide="ignore", invalid="ignore"):
        while live.size:
            rows = live[:_NMS_ROUND]
            drop = _suppressed(b, areas, lab, rows, live, iou_threshold, cover_threshold)
            dropped = np.zeros(live.size, dtype=bool)
            for r in range(len(rows)):
                if not dropped[r]:
                    keep.append(rows[r])
                    dropped[r + 1:] |= drop[r, r + 1:]
            live = live[len(rows):][~dropped[len(rows):]]
    return order[np.asarray(keep, dtype=np.int64)].astype(np.int64)


def nms(boxes, scores, iou_threshold, cover_threshold=None):
    """Greedy non-maximum suppression.

    Boxes are visited from the highest score down (ties in input order); a box
    is dropped when its IoU with an already kept box is strictly greater than
    ``iou_threshold``, or, given ``cover_threshold``, when the share of its area
    inside an already kept box is strictly greater than ``cover_threshold``.

    Parameters
    ----------
    boxes : array-like of shape (N, 4), xyxy
    scores : array-like of shape (N,)
    iou_threshold : float
    cover_threshold : float, optional

    Returns
    -------
    keep : ndarray of int64
        Indices of the kept boxes, sorted by decreasing score.

    Examples
    --------
    >>> nms([[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30]], [0.9, 0.8, 0.7], 0.5)
    array([0, 2])
    """
    b = as_boxes(boxes)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(s) != len(b):
        raise ValueError(f"{len(b)} boxes but {len(s)} scores")
    return _greedy_nms(b, s, None, iou_threshold, cover_threshold)


def batched_nms(boxes, scores, labels, iou_threshold, cover_threshold=None):
    """Non-maximum suppression done independently for each label.

    Boxes of different labels never suppress each other.

    Returns
    -------
    keep : ndarray of int64
        Indices of the kept boxes over all labels, sorted by decreasing score
        (ties in input order).

    Examples
    --------
    >>> batched_nms([[0, 0, 10, 10], [1, 0, 11, 10]], [0.9, 0.8], [0, 1], 0.5)
    array([0, 1])
    """
    b = as_boxes(boxes)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    lab = np.asarray(labels).reshape(-1)
    if not (len(b) == len(s) == len(lab)):
        raise ValueError(f"{len(b)} boxes, {len(s)} scores and {len(lab)} labels")
    return _greedy_nms(b, s, lab, iou_threshold, cover_threshold)
