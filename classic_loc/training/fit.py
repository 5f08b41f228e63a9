"""Training a set of templates: SVMs with hard-negative mining, calibration, presence threshold, ridge.

scikit-learn is used here and only here (and in nothing the prediction path imports).
"""

import dataclasses
import functools
import math
import time

import numpy as np
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.svm import LinearSVC

from .._progress import log, progress
from ..boxes import _intersection, box_area, box_iou
from ..errors import DataError
from ..parallel import parallel_map
from ..pyramid import reachable_scales, scale_range
from ..scan import Template, detect_image, scan_image
from .haar_select import candidate_pool, l1_select
from .samples import choose_window, image_samples, reachability, training_image

__all__ = ["train_templates"]


def _parallel(n_jobs, func, items, desc, verbose):
    """func(item) for every item, in order; in processes when n_jobs != 1."""
    items = list(items)
    if n_jobs == 1 or len(items) < 8:
        return [func(it) for it in progress(items, desc, verbose)]
    chunks = [items[i::max(1, n_jobs * 4)] for i in range(max(1, n_jobs * 4))]
    out = parallel_map(functools.partial(_run_chunk, func), progress(chunks, desc, verbose), n_jobs)
    result = [None] * len(items)
    for i, part in enumerate(out):  # undo the round-robin split
        result[i::len(chunks)] = part
    return result


def _run_chunk(func, chunk):
    return [func(it) for it in chunk]


def _fit_svm(pos, neg, C, seed):
    X = np.concatenate([pos, neg])
    y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    svm = LinearSVC(C=C, loss="squared_hinge", dual=X.shape[0] < X.shape[1] * 2, max_iter=5000,
                    class_weight={1: max(1.0, len(neg) / max(len(pos), 1) / 4), 0: 1.0}, random_state=seed)
    svm.fit(X, y)
    return svm.coef_[0].astype(np.float32), float(svm.intercept_[0])


def _fit_svm_job(job):
    return _fit_svm(*job)


def _usable(rec):
    """Boxes that can be positives: not VOC difficult, not COCO crowd."""
    return ~(rec.difficult | rec.crowd)


class _Task:
    """Per-image work, picklable for joblib processes."""

    def __init__(self, dataset, p, templates):
        self.dataset, self.p, self.templates = dataset, p, templates


class _Initial(_Task):
    def __call__(self, i):
        rec, p = self.dataset[i], self.p
        image = training_image(self.dataset, i, p["fp"])
        n_k = len(self.templates)
        positives = [rec.boxes[(rec.labels == k) & _usable(rec)] for k in range(n_k)]  # no difficult or crowd
        avoid = [rec.boxes[rec.labels == k] for k in range(n_k)]  # ... which are no negatives either
        return image_samples(image, positives, avoid, self.templates, p["fp"], p,
                             np.random.default_rng([p["seed"], i]))


class _Mine(_Task):
    def __call__(self, i):
        rec, p = self.dataset[i], self.p
        floors = [-1.0] * len(self.templates)  # inside the SVM margin
        cand = scan_image(training_image(self.dataset, i, p["fp"]), self.templates, p["fp"], p["scale_step"], p["upsample"],
                          floors, max_per_level=50, collect_features=True)
        out = []
        for k in range(len(self.templates)):
            sel = np.flatnonzero(cand.labels == k)
            feats = cand.features[k]
            gt = rec.boxes[rec.labels == k]
            if len(sel) and len(gt):
                ok = box_iou(cand.boxes[sel], gt).max(axis=1) < p["neg_iou"]
                sel, feats = sel[ok], feats[ok]
            top = np.argsort(-cand.scores[sel], kind="stable")[:p["max_negatives_per_image"]]
            out.append(feats[top])
        return out


class _Calib(_Task):
    def __call__(self, i):
        rec, p = self.dataset[i], self.p
        gray = training_image(self.dataset, i, p["fp"])
        cand = scan_image(gray, self.templates, p["fp"], p["scale_step"], p["upsample"],
                          [-2.0] * len(self.templates), max_per_level=50)
        rows = []
        for k in range(len(self.templates)):
            sel = cand.labels == k
            gt = rec.boxes[rec.labels == k]
            pos = box_iou(cand.boxes[sel], gt).max(axis=1) >= 0.5 if len(gt) else np.zeros(int(sel.sum()), bool)
            rows.append((cand.scores[sel], pos))
        return rows


class _Detect(_Task):
    def __call__(self, i):
        p = self.p
        gray = training_image(self.dataset, i, p["fp"])
        return detect_image(gray, self.templates, p["fp"], p["scale_step"], p["upsample"], p["min_score"],
                            p["nms_iou"], nms_cover=p["nms_cover"])


def _select_haar(dataset, fit_idx, geometry, p, rng, verbose):
    """``geometry`` with each class's selected Haar features (see :mod:`.haar_select`).

    The candidates are computed, Haar alone, on the positives and about 4000
    random negatives per class of up to 150 training images.
    """
    fp = p["fp"]
    pools = [candidate_pool(fp.haar_window(t.window_cells), p["haar_candidates"], rng) for t in geometry]
    images = np.sort(rng.choice(fit_idx, min(len(fit_idx), 150), replace=False))
    q = dict(p, fp=dataclasses.replace(fp, variant=None), flip=False,
             random_negatives_per_image=int(math.ceil(4000 / max(len(images), 1))))
    cand = [dataclasses.replace(t, haar=pool) for t, pool in zip(geometry, pools)]
    samples = _parallel(p["n_jobs"], _Initial(dataset, q, cand), images, "Haar feature selection", verbose)
    out = []
    for k, t in enumerate(geometry):
        pos = np.concatenate([s[0][k] for s in samples])
        neg = np.concatenate([s[1][k] for s in samples])
        keep = l1_select(pos, neg, p["haar_features"], p["seed"]) if len(pos) and len(neg) else np.arange(
            min(len(pools[k]), p["haar_features"]))
        out.append(dataclasses.replace(t, haar=pools[k][keep]))
    log(verbose, "  Haar features: " + ", ".join(f"{c} {len(t.haar)} of {len(pool)} candidates"
                                                 for c, t, pool in zip(dataset.classes, out, pools)))
    return out


def _first_stage(t, pos, fp, floor, recall=0.99):
    """Give ``t`` the first stage of the optional cascade, passing ``recall`` of its positive windows ``pos``.

    Only the positives the full template scores at least ``floor`` (the raw score of
    ``min_score``) count: the others would not be reported anyway (at least 20 are kept).
    A HOG + Haar template's first stage is its HOG part (the Haar part, the costly
    one, is then computed only for the windows that pass); a Haar template's is its
    strongest tenth of features (weight times spread over the positives, at least 10).
    HOG-only templates get none: there the features, not the scoring, take the time.
    """
    if not fp.haar or len(pos) == 0:
        return t
    final = pos @ t.weights + t.bias
    if (final >= floor).sum() >= 20:
        pos = pos[final >= floor]
    d_hog = fp.hog_dim(t.window_cells)
    if d_hog:
        s1 = pos[:, :d_hog] @ t.weights[:d_hog] + t.bias
        sub = None
    else:
        n, w = len(t.haar), t.weights
        spread = pos.std(axis=0)
        strength = np.maximum(np.abs(w[:n]) * spread[:n], np.abs(w[n:]) * spread[n:])
        sub = np.sort(np.argsort(-strength, kind="stable")[:max(10, n // 10)])
        cols = np.r_[sub, n + sub]
        s1 = pos[:, cols] @ w[cols] + t.bias
        sub = sub.astype(np.int32)
    return dataclasses.replace(t, stage1_threshold=float(np.quantile(s1, 1 - recall)), stage1_haar=sub)


def _max_cover(dataset):
    """The largest share of a training box's area inside another box of its class (0 without pairs)."""
    best = 0.0
    for r in dataset:
        for k in np.unique(r.labels):
            b = r.boxes[(r.labels == k) & _usable(r)]
            if len(b) < 2:
                continue
            inter = _intersection(b, b)
            np.fill_diagonal(inter, 0)
            best = max(best, float((inter / box_area(b)[:, None]).max()))
    return best


def _negative_cache(old, new, template, cap):
    """Old negatives plus newly mined ones, at most ``cap``: when full, the easiest go first.

    As Felzenszwalb et al.'s cache: negatives the current template already puts
    beyond the margin (score < -1) are dropped before any hard one; if still over
    the cap, the highest-scoring (hardest) are kept. Returns (negatives, number dropped).
    """
    merged = np.concatenate([old, new])
    if len(merged) <= cap:
        return merged, 0
    scores = merged @ template.weights + template.bias
    hard = scores >= -1.0
    keep = np.flatnonzero(hard)
    if len(keep) < cap:  # room left: keep the hardest of the easy ones as well
        easy = np.flatnonzero(~hard)
        keep = np.concatenate([keep, easy[np.argsort(-scores[easy], kind="stable")[:cap - len(keep)]]])
    elif len(keep) > cap:
        keep = keep[np.argsort(-scores[keep], kind="stable")[:cap]]
    return merged[np.sort(keep)], len(merged) - len(keep)


def _platt(scores, labels):
    """Calibration (a, b) for one class from held-out window scores; a > 0."""
    if labels.all() or not labels.any():
        return (1.0, 0.0)
    lr = LogisticRegression(C=1e4, class_weight=None)
    lr.fit(scores[:, None], labels.astype(int))
    a, b = float(lr.coef_[0, 0]), float(lr.intercept_[0])
    return (a, b) if a > 1e-6 else (1.0, 0.0)


def _presence_threshold(top_scores, has_object, floor):
    """The threshold on the top detection's probability that maximises presence accuracy (lowest on ties)."""
    if has_object.all() or not len(top_scores):
        return float(floor)
    cands = np.unique(np.r_[floor, top_scores])  # ascending
    acc = np.array([np.mean((top_scores >= t) == has_object) for t in cands])
    best = int(np.flatnonzero(acc == acc.max())[0])
    # every threshold in (cands[best - 1], cands[best]] is as good: take the middle for a margin
    return float(cands[best] if best == 0 else (cands[best - 1] + cands[best]) / 2)


def train_templates(dataset, p, verbose=False):
    """Train one template per class on ``dataset``; returns (templates, presence_threshold, report).

    ``p`` holds the Localizer's settings (see :class:`classic_loc.Localizer`).
    """
    t_start = time.perf_counter()
    rng = np.random.default_rng(p["seed"])
    fp = p["fp"]
    n_k = len(dataset.classes)
    all_boxes = [np.concatenate([r.boxes[(r.labels == k) & _usable(r)] for r in dataset] + [np.zeros((0, 4))])
                 for k in range(n_k)]
    for k, b in enumerate(all_boxes):
        if len(b) == 0:
            raise DataError(dataset.root or "the training data", f"class {dataset.classes[k]!r}",
                            "has no training box (difficult and crowd boxes do not count)",
                            "remove it from the class list, or add boxes of it", kind="bad dataset")
    min_cells = fp.grid_block + 1
    windows = [tuple(p["window_cells"]) if p["window_cells"] else choose_window(b, p["window_area"], min_cells, fp.cell_size, p["context"], p["upsample"])
               for b in all_boxes]
    ranges = []
    for k, wc in enumerate(windows):
        px = ((wc[0] - 2 * p["context"]) * fp.cell_size, (wc[1] - 2 * p["context"]) * fp.cell_size)
        sizes = np.maximum(all_boxes[k][:, 2] - all_boxes[k][:, 0], all_boxes[k][:, 3] - all_boxes[k][:, 1])
        lo_size = p["min_size"] or float(sizes.min()) / 1.25
        hi_size = p["max_size"] or float(sizes.max()) * 1.25
        ranges.append(scale_range(px, lo_size, hi_size))
        if not reachable_scales(ranges[-1], p["scale_step"], p["upsample"]):
            lo, hi = ranges[-1]
            raise DataError("Localizer", f"class {dataset.classes[k]!r}",
                            f"no pyramid level (upsample={p['upsample']}, scale_step={p['scale_step']}) is in the "
                            f"scales [{lo:.3g}, {hi:.3g}] at which its {px[1]}x{px[0]}-pixel window frames objects "
                            f"of {lo_size:.0f}-{hi_size:.0f} pixels: it could never be detected",
                            "use a smaller window_cells or window_area, a larger upsample, or a wider "
                            "min_size..max_size", kind="bad parameter")
    report = {"classes": list(dataset.classes), "window_cells": [list(w) for w in windows],
              "window_pixels": [[w[0] * fp.cell_size, w[1] * fp.cell_size] for w in windows]}

    # boxes no window of the search grid can reach with IoU >= pos_iou
    unreachable = {"count": 0, "iou_threshold": p["pos_iou"], "per_class": {}}
    for k, name in enumerate(dataset.classes):
        rows = []
        for r in dataset:
            b = r.boxes[(r.labels == k) & _usable(r)]
            if len(b):
                best = reachability((r.height, r.width), b, windows[k], fp, p["scale_step"], p["upsample"], ranges[k],
                                    p["context"])
                for box, iou in zip(b, best):
                    if iou < p["pos_iou"]:
                        w, h = box[2] - box[0], box[3] - box[1]
                        rows.append({"image": r.image_id, "width": round(float(w), 1), "height": round(float(h), 1),
                                     "aspect": round(float(w / h), 3), "best_iou": round(float(iou), 3)})
        unreachable["per_class"][name] = {"count": len(rows), "boxes": rows[:50]}
        unreachable["count"] += len(rows)
        if rows:
            ws = np.array([x["width"] for x in rows])
            log(verbose, f"  {name}: {len(rows)} of {len(all_boxes[k])} training boxes cannot be reached with IoU >= "
                          f"{p['pos_iou']} (sizes {ws.min():.0f}-{ws.max():.0f} px wide, best IoU "
                          f"{min(x['best_iou'] for x in rows):.2f}-{max(x['best_iou'] for x in rows):.2f}; "
                          f"window {windows[k][1] * fp.cell_size}x{windows[k][0] * fp.cell_size} px)")
    report["unreachable_boxes"] = unreachable

    # suppression of boxes covered by a better one: no pair of training boxes may be suppressed so
    if p["nms_cover"] == "auto":
        p = dict(p, nms_cover=min(1.0, max(0.7, _max_cover(dataset) + 0.1)))
    report["nms_cover"] = p["nms_cover"]

    # images for fitting and held-out images for calibration and the presence threshold
    order = rng.permutation(len(dataset))
    n_cal = int(round(p["calibration_fraction"] * len(dataset))) if len(dataset) >= 10 else 0
    cal_idx, fit_idx = np.sort(order[:n_cal]), np.sort(order[n_cal:])

    # 1. positives, random negatives, box-regression samples
    per_image = lambda total: max(1, int(math.ceil(total / max(len(fit_idx), 1))))  # noqa: E731
    mined = p["max_negatives_per_image"]
    p = dict(p, random_negatives_per_image=per_image(p["n_random_negatives"]),
             max_negatives_per_image=max(20, per_image(10000)) if mined == "auto" else int(mined))
    geometry = [Template(wc, None, scale_range=r, context=p["context"]) for wc, r in zip(windows, ranges)]
    if fp.haar:
        geometry = _select_haar(dataset, fit_idx, geometry, p, rng, verbose)
        report["haar_features"] = {c: len(t.haar) for c, t in zip(dataset.classes, geometry)}
    init = _parallel(p["n_jobs"], _Initial(dataset, p, geometry), fit_idx, "positives and negatives", verbose)
    pos = [np.concatenate([x[0][k] for x in init]) for k in range(n_k)]
    neg = [np.concatenate([x[1][k] for x in init]) for k in range(n_k)]
    reg = [[x[2][k] for x in init] for k in range(n_k)]
    for k, name in enumerate(dataset.classes):
        if len(pos[k]) == 0:
            raise DataError("Localizer", f"class {name!r}", f"no scan window reaches one of its boxes with IoU >= "
                            f"{p['pos_iou']}", "lower pos_iou, set window_cells or upsample (see the unreachable "
                            "boxes in fit_report_)", kind="bad parameter")
    del init
    log(verbose, "  positives " + ", ".join(f"{c} {len(x)}" for c, x in zip(dataset.classes, pos))
         + "; negatives " + ", ".join(f"{len(x)}" for x in neg))

    def fit_all(pos, neg):
        out = parallel_map(_fit_svm_job, [(pos[k], neg[k], p["C"], p["seed"]) for k in range(n_k)],
                           min(p["n_jobs"], n_k) if p["n_jobs"] != 1 else 1)
        return [dataclasses.replace(geometry[k], weights=w, bias=b) for k, (w, b) in enumerate(out)]

    templates = fit_all(pos, neg)
    rounds = []
    for rnd in range(p["mining_rounds"]):
        mined = _parallel(p["n_jobs"], _Mine(dataset, p, templates), fit_idx,
                          f"mining round {rnd + 1}", verbose)
        added, dropped = [], []
        for k, t in enumerate(templates):
            new = np.concatenate([m[k] for m in mined])
            neg[k], n_dropped = _negative_cache(neg[k], new, t, p["max_negatives"])
            added.append(len(new))
            dropped.append(n_dropped)
        rounds.append({"round": rnd + 1, "added": dict(zip(dataset.classes, added)),
                       "dropped_easy": dict(zip(dataset.classes, dropped))})
        log(verbose, f"  mining round {rnd + 1}: added " + ", ".join(f"{c} {a}" for c, a in zip(dataset.classes, added))
             + (f"; dropped {sum(dropped)} easy negatives (cache full)" if sum(dropped) else ""))
        templates = fit_all(pos, neg)
        if sum(added) == 0:
            break
    report["mining_rounds"] = rounds
    report["n_positives"] = dict(zip(dataset.classes, map(len, pos)))
    report["n_negatives"] = dict(zip(dataset.classes, map(len, neg)))
    del neg

    # 2. ridge box regression, per class
    for k, t in enumerate(templates):
        if not reg[k]:
            continue
        X = np.concatenate([r[0] for r in reg[k]])
        Y = np.concatenate([r[1] for r in reg[k]])
        ridge = Ridge(alpha=p["ridge_alpha"]).fit(X, Y)
        t.ridge, t.ridge_bias = ridge.coef_.T.astype(np.float32), ridge.intercept_.astype(np.float64)
    del reg

    # 3. calibration on held-out images (or the fit images when there are too few)
    cal_src = cal_idx if len(cal_idx) else fit_idx
    cal = _parallel(p["n_jobs"], _Calib(dataset, p, templates), cal_src, "calibration", verbose)
    for k, t in enumerate(templates):
        s = np.concatenate([c[k][0] for c in cal])
        y = np.concatenate([c[k][1] for c in cal])
        t.calibration = _platt(s, y)
    report["calibration"] = {c: list(t.calibration) for c, t in zip(dataset.classes, templates)}
    templates = [_first_stage(t, pos[k], fp, t.raw_floor(p["min_score"])) for k, t in enumerate(templates)]
    del pos

    # 4. presence threshold and the effect of refinement, on the held-out images
    dets = _parallel(p["n_jobs"], _Detect(dataset, p, templates), cal_src, "presence threshold", verbose)
    top = np.array([d[2][0] if len(d[2]) else 0.0 for d in dets])
    has = np.array([dataset[i].n_objects > 0 for i in cal_src])
    presence = _presence_threshold(top, has, p["min_score"])
    before, after = [], []
    for i, (boxes, labels, scores, windows_kept) in zip(cal_src, dets):
        rec = dataset[i]
        if rec.n_objects == 0 or len(scores) == 0:
            continue
        main = int(np.argmax(box_area(rec.boxes)))
        before.append(box_iou(windows_kept[:1], rec.boxes[main:main + 1])[0, 0])
        after.append(box_iou(boxes[:1], rec.boxes[main:main + 1])[0, 0])
    report["presence_threshold"] = presence
    report["heldout_images"] = int(len(cal_idx))
    report["heldout_mean_iou_before_refinement"] = float(np.mean(before)) if before else None
    report["heldout_mean_iou_after_refinement"] = float(np.mean(after)) if after else None
    report["train_seconds"] = time.perf_counter() - t_start
    return templates, presence, p["nms_cover"], report
