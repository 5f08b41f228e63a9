"""The runs the command line (and the benchmarks) make: fit, evaluate, report; predict over files.

:func:`fit_and_evaluate` trains on one split, scores the test split with the
shared evaluator, times prediction and writes the model and a JSON report.
:func:`predict_files` streams images through a model (constant memory).
"""

import json
import os
import time
from contextlib import ExitStack, contextmanager

import numpy as np

from ._fileio import atomic_path, atomic_write_bytes, atomic_write_text
from ._progress import progress
from .evaluation import evaluate
from .images import read_image

__all__ = ["fit_and_evaluate", "evaluate_model", "iter_predictions", "predict_files", "write_predictions",
           "single_thread", "image_files"]

REPORT_KEYS = ("metrics", "fit_seconds", "predict_ms_per_image", "model_bytes", "mean_iou_before_refinement",
               "mean_iou_after_refinement", "unreachable_boxes")


@contextmanager
def single_thread():
    """OpenCV, and BLAS where threadpoolctl is installed, limited to one thread inside the block."""
    import cv2

    before = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        with ExitStack() as stack:
            try:
                from threadpoolctl import threadpool_limits

                stack.enter_context(threadpool_limits(1))
            except ImportError:
                pass
            yield
    finally:
        cv2.setNumThreads(before)


def evaluate_model(model, dataset, iou_threshold=0.5, verbose=False):
    """Detect on every image of ``dataset`` (one thread, timed) and score with the shared evaluator.

    Returns
    -------
    dict with ``metrics`` (detections as reported), ``metrics_unrefined`` (the same
    detections' boxes before ridge refinement), ``predict_ms_per_image`` (median over
    images of detection time, image decoding excluded), ``predictions`` (COCO results list).
    """
    refined, unrefined, results, times = {}, {}, [], []
    with single_thread():
        for i in progress(range(len(dataset)), "evaluating", verbose):
            rec = dataset[i]
            image = dataset.image(i)
            t0 = time.perf_counter()
            det, windows = model._detect_one(image)
            times.append(time.perf_counter() - t0)
            refined[rec.image_id] = det
            unrefined[rec.image_id] = {"boxes": windows, "labels": det.labels, "scores": det.scores}
            results.extend(det.to_coco(rec.image_id))
    return {"metrics": evaluate(dataset, refined, iou_threshold),
            "metrics_unrefined": evaluate(dataset, unrefined, iou_threshold),
            "predict_ms_per_image": float(np.median(times) * 1000) if times else 0.0,
            "predictions": results}


def fit_and_evaluate(model, train, test, model_path=None, report_path=None, verbose=False, extra=None):
    """Fit ``model`` on ``train``, evaluate on ``test``, save the model and a JSON report.

    Returns the report (a dict with at least :data:`REPORT_KEYS`).
    """
    t0 = time.perf_counter()
    model.fit(train)
    fit_seconds = time.perf_counter() - t0
    ev = evaluate_model(model, test, verbose=verbose)
    model_bytes = model.save(model_path) if model_path else None
    training = model.fit_report_
    report = {
        "metrics": ev["metrics"],
        "fit_seconds": round(fit_seconds, 2),
        "predict_ms_per_image": round(ev["predict_ms_per_image"], 2),
        "model_bytes": model_bytes,
        "mean_iou_before_refinement": ev["metrics_unrefined"]["mean_iou"],
        "mean_iou_after_refinement": ev["metrics"]["mean_iou"],
        "unreachable_boxes": training["unreachable_boxes"],
        "train": {"root": train.root, "images": len(train), **train.counts()},
        "test": {"root": test.root, "images": len(test), **test.counts()},
        "model": os.path.abspath(model_path) if model_path else None,
        "params": {k: v for k, v in model.get_params().items()},
        "training": {k: v for k, v in training.items() if k != "unreachable_boxes"},
        **(extra or {}),
    }
    if report_path:
        atomic_write_text(report_path, json.dumps(report, indent=2, default=str))
    return report


def image_files(inputs):
    """Image paths from a mix of files and folders (folders: their image files, sorted)."""
    from .datasets._common import IMAGE_EXTENSIONS

    out = []
    for item in inputs:
        if os.path.isdir(item):
            out += sorted(os.path.join(item, f) for f in os.listdir(item) if f.lower().endswith(IMAGE_EXTENSIONS))
        else:
            out.append(item)
    return out


def _predict_one(model, path, threshold, draw_dir):
    image = read_image(path)
    det = model.detect(image)
    keep = det.scores >= threshold
    det.boxes, det.labels, det.scores = det.boxes[keep], det.labels[keep], det.scores[keep]
    stem = os.path.splitext(os.path.basename(path))[0]
    if draw_dir:
        import cv2

        from .draw import draw_detections

        drawn = draw_detections(image, det.boxes, det.labels, det.scores, model.classes_)
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
        atomic_write_bytes(os.path.join(draw_dir, stem + ".jpg"), buf.tobytes())
    return det.to_coco(stem)


def iter_predictions(model, paths, threshold=None, draw_dir=None, n_jobs=1, verbose=False):
    """Yield each image's COCO results (a list; image_id = file stem), in order, streaming.

    At most ``2 * n_jobs`` images are read or predicted at once, so memory stays
    constant however many paths there are. With ``n_jobs`` > 1 images are spread
    over threads sharing the one model (OpenCV and numpy release the GIL in the heavy parts).
    """
    threshold = model.min_score if threshold is None else threshold
    if draw_dir:
        os.makedirs(draw_dir, exist_ok=True)
    paths = list(paths)
    if n_jobs == 1:
        for path in progress(paths, "predicting", verbose):
            yield _predict_one(model, path, threshold, draw_dir)
        return
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=n_jobs) as pool:
        pending = deque()
        bar = progress(range(len(paths)), "predicting", verbose)
        done = iter(bar)
        for path in paths:
            pending.append(pool.submit(_predict_one, model, path, threshold, draw_dir))
            if len(pending) >= 2 * n_jobs:
                next(done, None)
                yield pending.popleft().result()
        while pending:
            next(done, None)
            yield pending.popleft().result()
        next(done, None)  # let the bar close


def predict_files(model, paths, threshold=None, draw_dir=None, n_jobs=1, verbose=False):
    """COCO results for every image path, as one list (see :func:`iter_predictions`)."""
    return [entry for part in iter_predictions(model, paths, threshold, draw_dir, n_jobs, verbose) for entry in part]


def write_predictions(path, model, paths, threshold=None, draw_dir=None, n_jobs=1, verbose=False):
    """Stream COCO results for ``paths`` into the JSON file ``path`` (atomically); returns the detection count.

    Each image's detections are written as soon as they are ready, so a folder
    of any size is predicted in constant memory.
    """
    n = 0
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write("[")
            for part in iter_predictions(model, paths, threshold, draw_dir, n_jobs, verbose):
                for entry in part:
                    fh.write(("," if n else "") + "\n" + json.dumps(entry))
                    n += 1
            fh.write("\n]\n")
    return n
