"""The shared evaluator: one scorer for classic_loc's predictions and any CNN's.

It knows datasets and boxes, nothing of features or models, so a CNN user can
import it alone. Predictions come as a COCO results JSON file
(``[{"image_id", "category_id", "bbox": [x, y, w, h], "score"}]``), as that
list in Python, or as a mapping ``image_id -> {"boxes" (xyxy), "labels", "scores"}``.
Any input gives a result or a one-line :class:`DataError`.

Image ids (one rule for every form, :meth:`Dataset.match_image_id`):

1. an integer, when the ground truth has its own COCO image ids (read from a
   COCO file, or records built with ``coco_id``): that COCO id, only;
2. otherwise the first rule that matches decides: the image's path relative to
   the dataset folder (forward slashes), its file name (``000123.jpg``), its
   stem (``000123``), the integer form of a numeric stem (``123`` or ``"123"``;
   an integer is matched by this rule only, so Ultralytics-style ids work);
3. an id that is a path with folders (``a/b/000123.jpg``, as ``predict`` writes
   for inputs from several folders) and matched nothing: the same rules on its
   last component.

An id that matches two images under the rule that decided (stems ``000123``
and ``123`` for the integer 123), or none, is a DataError naming the id.

Definitions (also in docs/evaluation.md):

- per image, the *main object* is the ground-truth box with the largest area
  (the first on ties); the *top prediction* is the prediction with the highest
  score (the first in file order on ties); an image with no prediction has
  predicted "no object";
- ``accuracy``: share of images with an object whose top prediction has the
  main object's class;
- ``mean_iou``: mean over images with an object of IoU(top prediction, main
  object), 0 where there is no prediction;
- ``loc_accuracy``: share of images with an object whose top prediction has
  the main object's class and IoU >= ``iou_threshold``;
- ``corloc``: the same without the class condition;
- ``presence_accuracy``, ``presence_precision``, ``presence_recall``: "an
  object is present" (the image has a prediction) over all images;
- ``map``, ``map50``, ``map75``: COCO detection AP (101-point interpolated,
  at most 100 detections per image and class, area range "all"), computed as
  pycocotools does. Crowd boxes and VOC ``difficult`` boxes are both ignored
  the way pycocotools ignores crowd boxes;
- ``map_small``, ``map_medium``, ``map_large``: the same AP over IoU 0.5:0.95 for
  objects of area under 32**2 pixels, 32**2 to 96**2, over 96**2 (the bounds belong
  to both sides, as in pycocotools; an object's area is its record's ``areas``:
  the COCO annotation's ``area`` when given, else its box's); a detection that
  matches nothing counts only in the range of its own box's area;
- ``mar_1``, ``mar_10``, ``mar_100``: COCO average recall over IoU 0.5:0.95 with
  at most 1, 10, 100 detections per image and class (area "all"); ``mar_small``,
  ``mar_medium``, ``mar_large`` at 100 detections per size range. These are
  pycocotools' 12 summary numbers (``COCOeval.stats``), in its order:
  :data:`COCO_SUMMARY`.
"""

import json
import math
import os
from collections.abc import Iterable, Mapping

import numpy as np

from .boxes import box_area, box_convert, box_iou
from .datasets._dataset import _show
from .errors import DataError

__all__ = ["evaluate", "read_predictions", "format_report", "IOU_THRESHOLDS", "RECALL_THRESHOLDS", "AREA_RANGES",
           "MAX_DETECTIONS", "COCO_SUMMARY"]

# exactly pycocotools' Params.setDetParams arrays
IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
RECALL_THRESHOLDS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
#: pycocotools' area ranges in pixels (an object is in a range when ``lo <= area <= hi``)
AREA_RANGES = {"all": (0.0, 1e5 ** 2), "small": (0.0, 32.0 ** 2), "medium": (32.0 ** 2, 96.0 ** 2),
               "large": (96.0 ** 2, 1e5 ** 2)}
#: pycocotools' maxDets: the detections per image and class each recall figure allows (AP uses the last)
MAX_DETECTIONS = (1, 10, 100)
#: The result keys of pycocotools' 12 summary numbers, in ``COCOeval.stats`` order:
#: (key, "ap" or "ar", IoU threshold or None for 0.5:0.95, area range, max detections)
COCO_SUMMARY = (
    ("map", "ap", None, "all", 100), ("map50", "ap", 0.5, "all", 100), ("map75", "ap", 0.75, "all", 100),
    ("map_small", "ap", None, "small", 100), ("map_medium", "ap", None, "medium", 100),
    ("map_large", "ap", None, "large", 100),
    ("mar_1", "ar", None, "all", 1), ("mar_10", "ar", None, "all", 10), ("mar_100", "ar", None, "all", 100),
    ("mar_small", "ar", None, "small", 100), ("mar_medium", "ar", None, "medium", 100),
    ("mar_large", "ar", None, "large", 100),
)


class _Preds:
    """Predictions of one image: boxes (xyxy), labels (class index), scores, in file order."""

    __slots__ = ("boxes", "labels", "scores")

    def __init__(self, boxes, labels, scores):
        self.boxes, self.labels, self.scores = boxes, labels, scores


def _empty():
    return _Preds(np.zeros((0, 4)), np.zeros(0, dtype=np.int64), np.zeros(0))


def _number(value):
    """``value`` as a float if it is a real number (not a bool), else None; too large an int is inf."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        return None
    try:
        return float(value)
    except OverflowError:
        return math.inf


def _class_of(value, dataset, file, item):
    if isinstance(value, str):
        if value in dataset.classes:
            return dataset.classes.index(value)
        hint = f"use a class name ({', '.join(dataset.classes)}) or a category id ({list(dataset.category_ids)})"
        raise DataError(file, item, f"unknown class {_show(value)}", hint, kind="unknown class")
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)) \
            and int(value) in dataset.category_ids:
        return dataset.category_ids.index(int(value))
    hint = f"use a category id of the ground truth ({list(dataset.category_ids)}) or a class name"
    raise DataError(file, item, f"unknown category_id {_show(value)}", hint, kind="unknown class")


def _fmt_box(box):
    return "[" + ", ".join(f"{float(v):.6g}" for v in box) + "]"


def _check_pred_box(box, file, item):
    w, h = float(box[2]) - float(box[0]), float(box[3]) - float(box[1])
    if not np.all(np.isfinite(box)) or not w > 0 or not h > 0:
        raise DataError(file, item, f"box {_fmt_box(box)} is not finite or has width or height <= 0",
                        "write boxes with finite coordinates and positive size", kind="bad box")
    if not (math.isfinite(w) and math.isfinite(h) and math.isfinite(w * h)):
        raise DataError(file, item, f"box {_fmt_box(box)} is too large (its area is not a finite number)",
                        "write boxes in pixel coordinates of the image", kind="bad box")


def _id_key(image_id):
    """An image id as a comparable value: numpy and Python integers alike."""
    return int(image_id) if isinstance(image_id, (int, np.integer)) else image_id


def _from_coco_list(results, dataset, file):
    per_image, id_of = {}, {}
    for k, r in enumerate(results):
        item = f"[{k}]"
        if not isinstance(r, dict) or not {"image_id", "category_id", "bbox", "score"} <= set(r):
            raise DataError(file, item, "a result needs image_id, category_id, bbox and score",
                            'write [{"image_id": ..., "category_id": ..., "bbox": [x, y, w, h], "score": ...}]',
                            kind="malformed prediction")
        bbox, score = r["bbox"], r["score"]
        values = [_number(v) for v in bbox] if isinstance(bbox, (list, tuple)) and len(bbox) == 4 else [None]
        if None in values:
            raise DataError(file, item, f"bbox {_show(bbox)} is not 4 numbers", "write bbox as [x, y, width, height]",
                            kind="bad box")
        value = _number(score)
        if value is None or not math.isfinite(value):
            raise DataError(file, item, f"score {_show(score)} is not a finite number", "write a finite score",
                            kind="malformed prediction")
        img = dataset.match_image_id(r["image_id"], file, item)
        key = _id_key(r["image_id"])
        first = id_of.setdefault(img, (key, k))
        # two spellings of one image (7 and "000007.jpg") are one image; but an id matched only by the last part of
        # its path (a/img.jpg, b/img.jpg from predict a/ b/) may be another image of the same name: never merge them
        if first[0] != key and (dataset.matched_by_last_part(key) or dataset.matched_by_last_part(first[0])):
            raise DataError(file, item, f"image_id {_show(r['image_id'])} names the same image "
                            f"({dataset[img].image_id}) as image_id {_show(first[0])} of result [{first[1]}]",
                            "give each image one id (the images of two folders cannot share one ground-truth "
                            "image)", kind="ambiguous image id")
        label = _class_of(r["category_id"], dataset, file, item)
        box = box_convert([values], "xywh", "xyxy")[0]
        _check_pred_box(box, file, item)
        per_image.setdefault(img, []).append((box, label, value))
    return per_image


def _field(det, key, file, item):
    if isinstance(det, Mapping):
        if key in det:
            return det[key]
    else:
        try:
            return getattr(det, key)
        except AttributeError:
            pass
    raise DataError(file, item, f"the predictions of an image ({type(det).__name__}) have no {key!r}",
                    'give {"boxes": (N, 4) x1 y1 x2 y2, "labels": (N,), "scores": (N,)} or a Detections object',
                    kind="malformed prediction")


def _numbers(value, what, file, item):
    """``value`` as a float64 array: numbers only (no bools, strings or other objects)."""
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError, OverflowError, RecursionError):
        arr = None
    if arr is not None and arr.dtype.kind == "O":
        flat = [_number(v) for v in arr.reshape(-1)]
        arr = None if None in flat else np.array(flat, dtype=np.float64).reshape(arr.shape)
    if arr is None or arr.dtype.kind not in "iuf":
        raise DataError(file, item, f"{what} {_show(value)} is not an array of numbers",
                        f"give {what} as numbers", kind="malformed prediction")
    return arr.astype(np.float64)


def _by_image(mapping, dataset, file):
    """``(image index, item, value)`` per key of ``{image_id: value}``; DataError for two keys of one image."""
    key_of = {}
    for image_id, value in mapping.items():
        item = f"image {_show(image_id)}"
        img = dataset.match_image_id(image_id, file, item)
        if img in key_of:
            raise DataError(file, item, f"names the same image as the key {_show(key_of[img])}",
                            "give the predictions of each image under one key", kind="malformed prediction")
        key_of[img] = image_id
        yield img, item, value


def _from_mapping(mapping, dataset, file):
    per_image = {}
    for img, item, det in _by_image(mapping, dataset, file):
        boxes = _numbers(_field(det, "boxes", file, item), "boxes", file, item)
        if boxes.size == 0:
            boxes = np.zeros((0, 4))
        elif boxes.ndim == 1 and boxes.size == 4:
            boxes = boxes[None, :]
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise DataError(file, item, f"boxes have shape {boxes.shape}, not (N, 4)",
                            "give boxes as an (N, 4) array of x1, y1, x2, y2", kind="malformed prediction")
        scores = _numbers(_field(det, "scores", file, item), "scores", file, item)
        labels = _field(det, "labels", file, item)
        try:
            labels = np.asarray(labels)
        except (ValueError, TypeError, OverflowError, RecursionError):
            labels = None
        if labels is None or labels.ndim > 1 or scores.ndim > 1:
            raise DataError(file, item, "labels and scores must be flat lists or 1-D arrays",
                            "give one label and one score per box", kind="malformed prediction")
        labels, scores = labels.reshape(-1), scores.reshape(-1)
        if not (len(boxes) == len(labels) == len(scores)):
            raise DataError(file, item, f"{len(boxes)} boxes, {len(labels)} labels and {len(scores)} scores",
                            "give one label and one score per box", kind="malformed prediction")
        rows = []
        for j, (box, lab, s) in enumerate(zip(boxes, labels, scores)):
            _check_pred_box(box, file, f"{item} box {j}")
            if not math.isfinite(s):
                raise DataError(file, f"{item} box {j}", "score is not finite", "give finite scores",
                                kind="malformed prediction")
            lab = lab.item() if isinstance(lab, np.generic) else lab
            label = _class_of(lab, dataset, file, item) if isinstance(lab, str) else _label_index(lab, dataset, file, item)
            rows.append((box, label, float(s)))
        per_image[img] = rows
    return per_image


#: The seed notes' decision rule: an image whose y-vector has p_c below this has predicted "no object".
YVECTOR_PRESENCE = 0.5


def _from_yvectors(doc, dataset, file):
    """Predictions in the notes' y-vector form: ``{"format": "yvector", "classes": [...], "predictions":
    {image_id: [p_c, bx, by, bh, bw, c1 .. cK]}}`` (centre and size relative to the image)."""
    fix = ('write {"format": "yvector", "classes": [names], "predictions": {image_id: [p_c, bx, by, bh, bw, '
           'c1, ..., cK]}}, the box centre and size relative to the image')
    classes, vectors = doc.get("classes"), doc.get("predictions")
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes) or not isinstance(vectors, Mapping):
        raise DataError(file, "", "a y-vector file needs 'classes' (a list of names) and 'predictions' (an object)",
                        fix, kind="malformed file")
    labels = [_class_of(c, dataset, file, f"classes[{k}]") for k, c in enumerate(classes)]
    per_image = {}
    for img, item, vector in _by_image(vectors, dataset, file):
        y = _numbers(vector, "y-vector", file, item).reshape(-1)
        if len(y) != 5 + len(classes) or not np.isfinite(y).all():
            raise DataError(file, item, f"the y-vector has {len(y)} finite numbers or fewer, not 5 + {len(classes)} "
                            "(p_c, bx, by, bh, bw, one per class)", fix, kind="malformed prediction")
        p_c, bx, by, bh, bw = y[:5]
        if p_c < YVECTOR_PRESENCE:
            continue  # "no object" (the notes' rule); the box and classes do not matter
        rec = dataset[img]
        box = np.array([(bx - bw / 2) * rec.width, (by - bh / 2) * rec.height,
                        (bx + bw / 2) * rec.width, (by + bh / 2) * rec.height])
        _check_pred_box(box, file, item)
        k = int(np.argmax(y[5:]))
        per_image[img] = [(box, labels[k], float(p_c * y[5 + k]))]
    return per_image


def _label_index(value, dataset, file, item):
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)) \
            and 0 <= int(value) < len(dataset.classes):
        return int(value)
    raise DataError(file, item, f"label {_show(value)} is not a class index in [0, {len(dataset.classes)})",
                    "give labels as class names or indices into the class list", kind="unknown class")


def _is_yvector(predictions):
    return isinstance(predictions, Mapping) and predictions.get("format") == "yvector"


def read_predictions(predictions, dataset):
    """Normalise predictions against ``dataset``: one entry per image, in dataset order.

    Parameters
    ----------
    predictions : str, path-like, list of dict, or mapping
        A COCO results JSON file, its parsed list, or
        ``{image_id: {"boxes": (N, 4) xyxy, "labels": names or class indices, "scores": (N,)}}``
        (the values may also be objects with those attributes, e.g. ``Detections``).
        A COCO ``category_id`` may be the category id or the class name. Or, as a CNN of the
        seed notes outputs them, one y-vector per image: ``{"format": "yvector", "classes":
        [names], "predictions": {image_id: [p_c, bx, by, bh, bw, c1 .. cK]}}`` with the box
        centre ``(bx, by)`` and size ``(bw, bh)`` relative to the image's width and height: an
        image whose ``p_c`` is below 0.5 has predicted "no object"; any other gives one
        detection of the class of the largest ``c``, scored ``p_c`` times that ``c``.
    dataset : Dataset

    Returns
    -------
    list of objects with ``boxes`` (N, 4) xyxy, ``labels`` (N,), ``scores`` (N,)

    Notes
    -----
    ``image_id`` names an image by one rule, in every form
    (:meth:`~classic_loc.datasets.Dataset.match_image_id`):

    1. an integer, when the ground truth has its own COCO ids (read from COCO):
       the COCO image id, only;
    2. otherwise the first rule that matches: the path relative to the dataset
       folder (``JPEGImages/000123.jpg``, forward slashes), the file name
       (``000123.jpg``), the stem (``000123``), the integer form of a numeric
       stem (``123`` or ``"123"``; an integer id is matched by this rule only);
    3. a path with folders (``run/a/000123.jpg``) that matched nothing: the same
       rules on its last component.

    An id that names two images under the rule that decided, or none, is a
    :class:`~classic_loc.errors.DataError` naming it; so is any malformed
    value. Every input gives a result or a DataError.
    """
    file = "predictions"
    if isinstance(predictions, bytes):
        predictions = os.fsdecode(predictions)
    if isinstance(predictions, (str, os.PathLike)):
        file = os.fsdecode(os.fspath(predictions))
        if "\0" in file:
            raise DataError(_show(file), "", "the predictions path contains a NUL character",
                            "give the path of the predictions file", kind="missing file")
        from .datasets.coco import load_json

        predictions = load_json(file, "predictions")  # any problem of the file is its DataError
        if not isinstance(predictions, list) and not _is_yvector(predictions):
            raise DataError(file, "", "a COCO results file must be a JSON list of detections",
                            'write [{"image_id", "category_id", "bbox": [x, y, w, h], "score"}, ...]',
                            kind="malformed file")
    if _is_yvector(predictions):
        per_image = _from_yvectors(predictions, dataset, file)
    elif isinstance(predictions, Mapping):
        per_image = _from_mapping(predictions, dataset, file)
    elif isinstance(predictions, (list, tuple)):
        per_image = _from_coco_list(predictions, dataset, file)
    elif isinstance(predictions, Iterable) and not isinstance(predictions, (str, np.ndarray)):
        per_image = _from_coco_list(list(predictions), dataset, file)
    else:
        raise DataError(file, "", f"predictions of type {type(predictions).__name__} are not a file, a list or a mapping",
                        "give a COCO results file, its list of detections, or {image_id: detections}",
                        kind="malformed prediction")
    out = []
    for k in range(len(dataset)):
        rows = per_image.get(k)
        if not rows:
            out.append(_empty())
            continue
        out.append(_Preds(np.array([r[0] for r in rows], dtype=np.float64),
                          np.array([r[1] for r in rows], dtype=np.int64), np.array([r[2] for r in rows])))
    return out


# ---------------------------------------------------------------- COCO AP
def _crowd_iou(dt, gt, crowd):
    """pycocotools' bbox IoU: for a crowd (ignored) ground truth, the union is the detection's area."""
    iou = box_iou(dt, gt)
    if crowd.any() and len(dt):
        lt = np.maximum(dt[:, None, :2], gt[None, crowd, :2])
        rb = np.minimum(dt[:, None, 2:], gt[None, crowd, 2:])
        wh = np.clip(rb - lt, 0, None)
        area = box_area(dt)[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            iou[:, crowd] = np.where(area > 0, wh[..., 0] * wh[..., 1] / np.where(area > 0, area, 1), 0)
    return iou


def _evaluate_image(gt_boxes, gt_crowd, gt_ignore, dt_boxes, dt_scores):
    """pycocotools' evaluateImg for one image, class and area range (at most 100 detections).

    ``gt_crowd`` (crowd or difficult boxes) decides the IoU (pycocotools' crowd IoU);
    ``gt_ignore`` is that or an area outside the range, and decides the matching.
    Returns (dt_scores, dt_matched (T, D) bool, dt_ignored (T, D) bool, gt_ignore sorted) with
    the detections best first (so the first ``m`` are those of ``maxDets`` m), or None.
    Unmatched detections outside the area range are marked ignored by the caller.
    """
    if len(gt_boxes) == 0 and len(dt_boxes) == 0:
        return None
    g_order = np.argsort(gt_ignore.astype(np.int64), kind="mergesort")
    gt_boxes, gt_crowd, gt_ignore = gt_boxes[g_order], gt_crowd[g_order], gt_ignore[g_order]
    d_order = np.argsort(-dt_scores, kind="mergesort")[:MAX_DETECTIONS[-1]]
    dt_boxes, dt_scores = dt_boxes[d_order], dt_scores[d_order]
    n_t, n_d, n_g = len(IOU_THRESHOLDS), len(dt_boxes), len(gt_boxes)
    matched = np.zeros((n_t, n_d), dtype=bool)
    ignored = np.zeros((n_t, n_d), dtype=bool)
    if n_d and n_g:
        ious = _crowd_iou(dt_boxes, gt_boxes, gt_crowd)
        n_real = int((~gt_ignore).sum())  # non-ignored ground truth comes first
        for t, thr in enumerate(IOU_THRESHOLDS):
            thr = min(thr, 1 - 1e-10)
            taken = np.zeros(n_g, dtype=bool)
            for d in range(n_d):
                # among eligible gts with IoU >= thr, the best one, the last on ties (pycocotools' loop);
                # non-ignored gts win over ignored ones; crowd ones can be matched many times
                m = -1
                for lo, hi in ((0, n_real), (n_real, n_g)):
                    row = ious[d, lo:hi]
                    ok = (row >= thr) & ~taken[lo:hi]
                    if ok.any():
                        best = row[ok].max()
                        m = lo + int(np.flatnonzero(ok & (row == best))[-1])
                        break
                if m < 0:
                    continue
                matched[t, d] = True
                ignored[t, d] = gt_ignore[m]
                if not gt_crowd[m]:
                    taken[m] = True
    return dt_scores, matched, ignored, gt_ignore, box_area(dt_boxes)


def _coco_accumulate(dataset, preds):
    """Precision (T, R, K, A, M) and recall (T, K, A, M) as pycocotools' accumulate; -1 where undefined.

    ``A`` walks :data:`AREA_RANGES`, ``M`` :data:`MAX_DETECTIONS`.
    """
    n_k, n_t, n_r = len(dataset.classes), len(IOU_THRESHOLDS), len(RECALL_THRESHOLDS)
    n_a, n_m = len(AREA_RANGES), len(MAX_DETECTIONS)
    precision = -np.ones((n_t, n_r, n_k, n_a, n_m))
    recall = -np.ones((n_t, n_k, n_a, n_m))
    order = sorted(range(len(dataset)), key=lambda i: dataset[i].coco_id)  # pycocotools sorts image ids
    for k in range(n_k):
        for a, (lo, hi) in enumerate(AREA_RANGES.values()):
            per_img = []
            for i in order:
                rec, p = dataset[i], preds[i]
                g, d = rec.labels == k, p.labels == k
                crowd = (rec.crowd | rec.difficult)[g]
                area = rec.areas[g]
                e = _evaluate_image(rec.boxes[g], crowd, crowd | (area < lo) | (area > hi), p.boxes[d], p.scores[d])
                if e is not None:
                    scores, matched, ignored, gt_ignore, dt_area = e
                    outside = (dt_area < lo) | (dt_area > hi)
                    per_img.append((scores, matched, ignored | (~matched & outside[None, :]), gt_ignore))
            n_pos = sum(int((~e[3]).sum()) for e in per_img)
            if not per_img or n_pos == 0:
                continue
            for m, max_det in enumerate(MAX_DETECTIONS):
                scores = np.concatenate([e[0][:max_det] for e in per_img])
                inds = np.argsort(-scores, kind="mergesort")
                matched = np.concatenate([e[1][:, :max_det] for e in per_img], axis=1)[:, inds]
                ignored = np.concatenate([e[2][:, :max_det] for e in per_img], axis=1)[:, inds]
                tp_sum = np.cumsum(matched & ~ignored, axis=1).astype(float)
                fp_sum = np.cumsum(~matched & ~ignored, axis=1).astype(float)
                for t in range(n_t):
                    tp, fp = tp_sum[t], fp_sum[t]
                    rc = tp / n_pos
                    recall[t, k, a, m] = rc[-1] if len(tp) else 0.0
                    pr = tp / (fp + tp + np.spacing(1))
                    pr = np.maximum.accumulate(pr[::-1])[::-1] if len(pr) else pr  # make precision monotone
                    q = np.zeros(n_r)
                    idx = np.searchsorted(rc, RECALL_THRESHOLDS, side="left")
                    valid = idx < len(pr)
                    q[valid] = pr[idx[valid]]
                    # pycocotools stops at the first recall threshold it cannot reach; all later ones are 0 too
                    precision[t, :, k, a, m] = q
    return precision, recall


def _coco_summary(precision, recall):
    """pycocotools' 12 summary numbers as {key: value or None} (see :data:`COCO_SUMMARY`)."""
    areas, out = list(AREA_RANGES), {}
    for key, kind, iou, area, max_det in COCO_SUMMARY:
        a, m = areas.index(area), MAX_DETECTIONS.index(max_det)
        t = slice(None) if iou is None else int(np.flatnonzero(np.isclose(IOU_THRESHOLDS, iou))[0])
        out[key] = _mean_valid(precision[t, :, :, a, m] if kind == "ap" else recall[t, :, a, m])
    return out


def _mean_valid(a):
    a = a[a > -1]
    return float(a.mean()) if a.size else None


# ---------------------------------------------------------------- localisation metrics
def _ratio(num, den):
    return float(num) / den if den else 0.0


def evaluate(dataset, predictions, iou_threshold=0.5, curves=False):
    """Score predictions against a dataset's ground truth with the shared definitions.

    Parameters
    ----------
    dataset : Dataset
        The ground truth (any format, see :func:`classic_loc.load_dataset`).
    predictions : str, path-like, list of dict, or mapping
        See :func:`read_predictions`.
    iou_threshold : float
        IoU needed by ``loc_accuracy`` and ``corloc`` (a match needs IoU >= it).
    curves : bool
        Also return ``curves``: ``recall`` (the 101 COCO recall points),
        ``precision50`` (per class, the interpolated precision at IoU 0.5 at
        those points, None where the recall is never reached) and ``main_iou``
        (per image with an object, the IoU of the top prediction with the main
        object, 0 without a prediction), for precision-recall plots and IoU histograms.

    Returns
    -------
    dict
        ``accuracy``, ``mean_iou``, ``loc_accuracy``, ``corloc``, ``presence_accuracy``,
        ``presence_precision``, ``presence_recall``, pycocotools' 12 summary numbers (``map``,
        ``map50``, ``map75``, ``map_small``, ``map_medium``, ``map_large``, ``mar_1``, ``mar_10``,
        ``mar_100``, ``mar_small``, ``mar_medium``, ``mar_large``), ``per_class`` (dict of dicts), ``confusion`` (labels and matrix: rows are the
        main object's class, columns the top prediction's, last "none"),
        ``n_images``, ``n_with_object``, ``n_predictions``, ``iou_threshold``.
        AP and AR values are None where no class has ground truth (in that area range).

    Examples
    --------
    >>> from classic_loc.datasets import Dataset, ImageRecord
    >>> gt = Dataset([ImageRecord("a", None, 100, 100, [[10, 10, 50, 50]], [0])], ["cat"])
    >>> preds = [{"image_id": "a", "category_id": "cat", "bbox": [10, 10, 40, 20], "score": 0.9}]
    >>> r = evaluate(gt, preds)
    >>> r["accuracy"], r["mean_iou"], r["loc_accuracy"], round(r["map50"], 9)
    (1.0, 0.5, 1.0, 1.0)
    """
    iou_threshold = _check_iou_threshold(iou_threshold)
    _check_ground_truth(dataset)
    preds = predictions if _is_normalised(predictions, dataset) else read_predictions(predictions, dataset)
    n_k = len(dataset.classes)
    none = n_k
    confusion = np.zeros((n_k + 1, n_k + 1), dtype=np.int64)
    rows = []  # per image with an object: main label, predicted label or none, iou
    has_obj = np.zeros(len(dataset), dtype=bool)
    present = np.zeros(len(dataset), dtype=bool)
    for i, (rec, p) in enumerate(zip(dataset, preds)):
        has_obj[i] = rec.n_objects > 0
        present[i] = len(p.scores) > 0
        top = int(np.argmax(p.scores)) if present[i] else -1
        top_label = int(p.labels[top]) if present[i] else none
        if has_obj[i]:
            main = int(np.argmax(box_area(rec.boxes)))
            main_label = int(rec.labels[main])
            iou = float(box_iou(p.boxes[top:top + 1], rec.boxes[main:main + 1])[0, 0]) if present[i] else 0.0
            rows.append((main_label, top_label, iou))
            confusion[main_label, top_label] += 1
        else:
            confusion[none, top_label] += 1
    main_l = np.array([r[0] for r in rows], dtype=np.int64)
    top_l = np.array([r[1] for r in rows], dtype=np.int64)
    ious = np.array([r[2] for r in rows], dtype=np.float64)
    correct = top_l == main_l
    hit = ious >= iou_threshold

    precision_all, recall_all = _coco_accumulate(dataset, preds)
    summary = _coco_summary(precision_all, recall_all)
    precision = precision_all[:, :, :, 0, -1]  # area "all", 100 detections
    t50, t75 = 0, int(np.flatnonzero(np.isclose(IOU_THRESHOLDS, 0.75))[0])
    per_class = {}
    for k, name in enumerate(dataset.classes):
        sel = main_l == k
        n = int(sel.sum())
        predicted_k = top_l == k
        per_class[name] = {
            "n_images": n,
            "n_boxes": int(sum(int((r.labels == k).sum()) for r in dataset)),
            "accuracy": _ratio(correct[sel].sum(), n),
            "precision": _ratio((correct & predicted_k).sum(), int(predicted_k.sum()) + int(confusion[none, k])),
            "mean_iou": float(ious[sel].mean()) if n else 0.0,
            "loc_accuracy": _ratio((correct & hit)[sel].sum(), n),
            "corloc": _ratio(hit[sel].sum(), n),
            "presence_recall": _ratio((top_l[sel] != none).sum(), n),
            "ap": _mean_valid(precision[:, :, k]),
            "ap50": _mean_valid(precision[t50, :, k]),
            "ap75": _mean_valid(precision[t75, :, k]),
        }
    n_obj = int(has_obj.sum())
    return _finite({
        "accuracy": _ratio(correct.sum(), n_obj),
        "mean_iou": float(ious.mean()) if n_obj else 0.0,
        "loc_accuracy": _ratio((correct & hit).sum(), n_obj),
        "corloc": _ratio(hit.sum(), n_obj),
        "presence_accuracy": _ratio((has_obj == present).sum(), len(dataset)),
        "presence_precision": _ratio((has_obj & present).sum(), int(present.sum())),
        "presence_recall": _ratio((has_obj & present).sum(), n_obj),
        **summary,
        "per_class": per_class,
        "confusion": {"labels": list(dataset.classes) + ["none"], "matrix": confusion.tolist()},
        "n_images": len(dataset),
        "n_with_object": n_obj,
        "n_predictions": int(sum(len(p.scores) for p in preds)),
        "iou_threshold": float(iou_threshold),
        **({"curves": {"recall": RECALL_THRESHOLDS.round(2).tolist(),
                       "precision50": {name: [None if v < 0 else round(float(v), 6) for v in precision[t50, :, k]]
                                       for k, name in enumerate(dataset.classes)},
                       "main_iou": ious.round(6).tolist()}} if curves else {}),
    })


def _check_iou_threshold(value):
    """The IoU threshold as a float in (0, 1], or a DataError (before any prediction is read)."""
    number = _number(value)
    if number is None:
        raise DataError("evaluate", "iou_threshold", f"{_show(value)} is not a number",
                        "give an IoU threshold in (0, 1], e.g. 0.5", kind="bad parameter")
    if not (math.isfinite(number) and 0 < number <= 1):
        raise DataError("evaluate", "iou_threshold", f"{_show(value)} is not in (0, 1]",
                        "give an IoU threshold in (0, 1], e.g. 0.5", kind="bad parameter")
    return number


def _check_ground_truth(dataset):
    """Ground-truth boxes built in Python are not checked by a reader: finite, not inverted, finite area."""
    if not len(dataset):
        return
    b = np.concatenate([rec.boxes for rec in dataset])
    with np.errstate(over="ignore", invalid="ignore"):
        w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
        ok = np.isfinite(b).all(axis=1) & (w >= 0) & (h >= 0) & np.isfinite(w * h)
    if ok.all():
        return _check_areas(dataset)
    first = int(np.flatnonzero(~ok)[0])
    ends = np.cumsum([rec.n_objects for rec in dataset])
    i = int(np.searchsorted(ends, first, side="right"))
    j = first - (int(ends[i - 1]) if i else 0)
    raise DataError(dataset.root or "ground truth", f"image {_show(dataset[i].image_id)} box {j}",
                    f"ground-truth box {_fmt_box(b[first])} is not finite, inverted or too large",
                    "fix the annotation (finite x1 <= x2, y1 <= y2 in pixels)", kind="bad box")


def _check_areas(dataset):
    """Object areas given in Python (a reader checks its own): finite and non-negative."""
    for rec in dataset:
        bad = np.flatnonzero(~(np.isfinite(rec.areas) & (rec.areas >= 0)))
        if bad.size:
            raise DataError(dataset.root or "ground truth", f"image {_show(rec.image_id)} box {int(bad[0])}",
                            f"area {float(rec.areas[bad[0]])!r} is not a finite, non-negative number",
                            "give each object's area in square pixels, or leave areas out (the box's area)",
                            kind="bad box")


def _finite(result, where=""):
    """``result`` after checking that no float in it is NaN or infinite (the JSON written must be valid)."""
    values = result.values() if isinstance(result, dict) else result
    keys = result.keys() if isinstance(result, dict) else range(len(result))
    for key, value in zip(keys, values):
        if isinstance(value, (dict, list)):
            _finite(value, f"{where}{key}.")
        elif isinstance(value, float) and not math.isfinite(value):
            raise RuntimeError(f"evaluate produced a non-finite {where}{key} ({value}); please report this bug")
    return result


def _is_normalised(predictions, dataset):
    return (isinstance(predictions, list) and len(predictions) == len(dataset)
            and all(isinstance(p, _Preds) for p in predictions))


def format_report(result, classes_limit=50):
    """A readable plain-text table of an :func:`evaluate` result."""
    def f(v):
        return "   -  " if v is None else f"{v:6.3f}"

    lines = [
        f"images {result['n_images']}  with an object {result['n_with_object']}  "
        f"predictions {result['n_predictions']}  (IoU threshold {result['iou_threshold']:g})",
        "",
        f"  accuracy       {f(result['accuracy'])}    presence accuracy  {f(result['presence_accuracy'])}",
        f"  loc_accuracy   {f(result['loc_accuracy'])}    presence precision {f(result['presence_precision'])}",
        f"  corloc         {f(result['corloc'])}    presence recall    {f(result['presence_recall'])}",
        f"  mean_iou       {f(result['mean_iou'])}",
        f"  mAP@[.5:.95]   {f(result['map'])}    mAP50 {f(result['map50'])}    mAP75 {f(result['map75'])}",
        f"  mAP small      {f(result.get('map_small'))}    medium {f(result.get('map_medium'))}    "
        f"large {f(result.get('map_large'))}",
        f"  mAR@1          {f(result.get('mar_1'))}    @10   {f(result.get('mar_10'))}    @100  {f(result.get('mar_100'))}",
        f"  mAR small      {f(result.get('mar_small'))}    medium {f(result.get('mar_medium'))}    "
        f"large {f(result.get('mar_large'))}",
        "",
        f"  {'class':<20} {'images':>6} {'boxes':>6} {'acc':>6} {'loc':>6} {'iou':>6} {'AP50':>6} {'AP':>6}",
    ]
    for name, c in list(result["per_class"].items())[:classes_limit]:
        lines.append(f"  {name[:20]:<20} {c['n_images']:>6} {c['n_boxes']:>6} {f(c['accuracy'])} "
                     f"{f(c['loc_accuracy'])} {f(c['mean_iou'])} {f(c['ap50'])} {f(c['ap'])}")
    labels, matrix = result["confusion"]["labels"], result["confusion"]["matrix"]
    if len(labels) <= 12:
        width = max(6, max(len(x) for x in labels[:12]) + 1)
        lines += ["", "  confusion (rows: main object, columns: top prediction)",
                  "  " + " " * width + "".join(f"{x[:width - 1]:>{width}}" for x in labels)]
        for name, row in zip(labels, matrix):
            lines.append(f"  {name[:width - 1]:<{width}}" + "".join(f"{v:>{width}}" for v in row))
    return "\n".join(lines)


def save_json(result, path):
    """Write an evaluation result as JSON, atomically."""
    from ._fileio import atomic_write_text

    atomic_write_text(path, json.dumps(result, indent=2))
