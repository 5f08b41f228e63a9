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

from ._fileio import atomic_write_bytes, atomic_write_text
from ._progress import progress
from .evaluate import evaluate
from .images import read_image

__all__ = ["fit_and_evaluate", "evaluate_model", "predict_files", "single_thread", "image_files"]

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


def predict_files(model, paths, threshold=None, draw_dir=None, n_jobs=1, verbose=False):
    """COCO results for every image path (image_id = file stem), streamed one image at a time.

    With ``n_jobs`` > 1 images are spread over threads (OpenCV and numpy release the GIL in
    the heavy parts); memory stays bounded by the images in flight.
    """
    threshold = model.min_score if threshold is None else threshold
    if draw_dir:
        os.makedirs(draw_dir, exist_ok=True)
    results = []
    if n_jobs == 1:
        for path in progress(paths, "predicting", verbose):
            results.extend(_predict_one(model, path, threshold, draw_dir))
        return results
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=n_jobs) as pool:
        for part in progress(pool.map(lambda p: _predict_one(model, p, threshold, draw_dir), paths), "predicting",
                         verbose, total=len(paths)):
            results.extend(part)
    return results
