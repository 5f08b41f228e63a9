"""OpenCV 4's pretrained detectors for the peer benchmarks, driven by a JSON job.

    python benchmarks/opencv_peers.py JOB.json [--out RESULT.json]     (JOB "-" reads stdin)

Standalone on purpose: it imports only cv2, numpy and the standard library, because it runs in a
virtual environment of its own with ``opencv-python-headless<5`` (``benchmarks/.venv-cv4``, made by
``peers.ensure_cv4_venv()``): OpenCV 5, which classic_loc uses, dropped ``HOGDescriptor`` and
``CascadeClassifier``. The answer is JSON on stdout, or in ``--out`` (written atomically).

Detectors
---------
``hog-people``
    ``cv2.HOGDescriptor`` with ``HOGDescriptor_getDefaultPeopleDetector()`` (Dalal-Triggs, 64x128
    window) on the colour image; ``detectMultiScale`` with OpenCV's defaults unless ``params``
    gives ``hitThreshold``, ``winStride``, ``padding``, ``scale``, ``groupThreshold``. Score: the
    returned weight.
``haar-face``
    ``cv2.CascadeClassifier`` with ``haarcascade_frontalface_default.xml`` from
    ``cv2.data.haarcascades`` (or ``params["cascade"]``) on the grayscale image;
    ``detectMultiScale3(..., outputRejectLevels=True)`` with ``params`` ``scaleFactor``,
    ``minNeighbors``, ``minSize``, ``maxSize``. Score: the final stage's level weight. With
    ``params["outputRejectLevels"] = false`` it calls ``detectMultiScale2`` instead (the plain
    detector, as most users run it; score: the number of merged neighbours).

Jobs
----
``{"job": "detect", "detector": NAME, "params": {...}, "images": [paths]}``
    answers ``{"detections": [[[x, y, w, h, score], ...] per image], "ms": [per image],
    "median_ms", "peak_rss_mb", "model_bytes", "settings", "cv2_version", "numpy_version"}``.
    Boxes are OpenCV ``Rect``s: pixels ``x .. x + w - 1``, i.e. the continuous box ``[x, x + w)``,
    which is a COCO bbox as is. ``ms`` times the detector call alone (decoding and the gray
    conversion excluded) with ``cv2.setNumThreads(1)``. ``peak_rss_mb`` is this process's VmHWM
    at the end (it only loads the detector and predicts).
``{"job": "time", "image": path, "sizes": [[w, h], ...], "detectors": [{"detector": NAME,
"params": {...}}, ...], "repeats": N, "warmup": 1}``
    resizes the image to each size (``INTER_AREA`` down, ``INTER_LINEAR`` up) and answers
    ``{"results": [{"detector", "params", "width", "height", "median_ms", "min_ms", "repeats",
    "n_detections"}, ...], "threads": 1, "cv2_version", "numpy_version"}``.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import cv2
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)  # the shared helpers, _bench.py
from _bench import peak_rss_mb  # noqa: E402

DETECTORS = ("hog-people", "haar-face")
HOG_PARAMS = ("hitThreshold", "winStride", "padding", "scale", "groupThreshold")
HAAR_PARAMS = ("scaleFactor", "minNeighbors", "minSize", "maxSize")


class Detector:
    """One pretrained OpenCV detector: ``detect(image) -> [[x, y, w, h, score], ...]``."""

    def __init__(self, name, params=None):
        params = dict(params or {})
        self.name = name
        if name == "hog-people":
            unknown = set(params) - set(HOG_PARAMS)
            if unknown:
                raise ValueError(f"unknown hog-people params {sorted(unknown)}; use {HOG_PARAMS}")
            self.hog = cv2.HOGDescriptor()
            self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
            self.kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
            self.model_bytes = int(np.asarray(cv2.HOGDescriptor_getDefaultPeopleDetector()).size * 4)
            self.settings = {"params": params or "OpenCV defaults", "window": [64, 128],
                             "model": "HOGDescriptor_getDefaultPeopleDetector", "score": "detectMultiScale weight"}
        elif name == "haar-face":
            cascade = params.pop("cascade", os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_default.xml"))
            self.reject_levels = bool(params.pop("outputRejectLevels", True))
            unknown = set(params) - set(HAAR_PARAMS)
            if unknown:
                raise ValueError(f"unknown haar-face params {sorted(unknown)}; "
                                 f"use {HAAR_PARAMS}, cascade and outputRejectLevels")
            self.cascade = cv2.CascadeClassifier(cascade)
            if self.cascade.empty():
                raise ValueError(f"cannot load the cascade {cascade}")
            self.kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
            self.model_bytes = os.path.getsize(cascade)
            self.settings = {"params": params, "model": os.path.basename(cascade),
                             "score": "detectMultiScale3 levelWeights (outputRejectLevels=True)" if self.reject_levels
                             else "detectMultiScale2 numDetections"}
        else:
            raise ValueError(f"unknown detector {name!r}; use one of {DETECTORS}")

    def prepare(self, image):
        """The input the detector takes: BGR for HOG, grayscale for the cascade (not timed)."""
        if self.name == "haar-face" and image.ndim == 3:
            return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        if self.name == "hog-people" and image.ndim == 2:
            return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        return image

    def detect(self, prepared):
        if self.name == "hog-people":
            rects, weights = self.hog.detectMultiScale(prepared, **self.kwargs)
        elif self.reject_levels:
            rects, _, weights = self.cascade.detectMultiScale3(prepared, outputRejectLevels=True, **self.kwargs)
        else:
            rects, weights = self.cascade.detectMultiScale2(prepared, **self.kwargs)
        rects = np.asarray(rects).reshape(-1, 4)
        weights = np.asarray(weights, dtype=np.float64).reshape(-1)
        return [[int(x), int(y), int(w), int(h), float(s)] for (x, y, w, h), s in zip(rects, weights)]


def _read(path, flags=cv2.IMREAD_COLOR):
    img = cv2.imdecode(np.fromfile(path, dtype=np.uint8), flags)
    if img is None:
        raise ValueError(f"cannot decode the image {path}")
    return img



def _versions():
    return {"cv2_version": cv2.__version__, "numpy_version": np.__version__}


def detect_job(job):
    """The ``detect`` job: run one detector over the images, one thread."""
    cv2.setNumThreads(1)
    det = Detector(job["detector"], job.get("params"))
    flags = cv2.IMREAD_GRAYSCALE if det.name == "haar-face" else cv2.IMREAD_COLOR
    detections, ms = [], []
    for path in job["images"]:
        prepared = det.prepare(_read(path, flags))
        t0 = time.perf_counter()
        found = det.detect(prepared)
        ms.append((time.perf_counter() - t0) * 1000.0)
        detections.append(found)
    return {"detections": detections, "ms": ms, "median_ms": statistics.median(ms) if ms else None,
            "peak_rss_mb": peak_rss_mb(), "model_bytes": det.model_bytes, "settings": det.settings,
            "threads": cv2.getNumThreads(), **_versions()}


def time_job(job):
    """The ``time`` job: median ms per call of each detector on the image resized to each size."""
    cv2.setNumThreads(1)
    base = _read(job["image"])
    repeats, warmup = int(job.get("repeats", 20)), int(job.get("warmup", 1))
    results = []
    for spec in job["detectors"]:
        det = Detector(spec["detector"], spec.get("params"))
        for w, h in job["sizes"]:
            interp = cv2.INTER_AREA if w * h < base.shape[0] * base.shape[1] else cv2.INTER_LINEAR
            prepared = det.prepare(cv2.resize(base, (int(w), int(h)), interpolation=interp))
            for _ in range(warmup):
                found = det.detect(prepared)
            ms = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                found = det.detect(prepared)
                ms.append((time.perf_counter() - t0) * 1000.0)
            results.append({"detector": det.name, "params": spec.get("params") or {}, "width": int(w),
                            "height": int(h), "median_ms": statistics.median(ms), "min_ms": min(ms),
                            "repeats": repeats, "n_detections": len(found)})
    return {"results": results, "threads": cv2.getNumThreads(), **_versions()}


JOBS = {"detect": detect_job, "time": time_job}


def run_job(job):
    """Dispatch a parsed job dict to its handler and return the answer dict."""
    kind = job.get("job")
    if kind not in JOBS:
        raise ValueError(f"unknown job {kind!r}; use one of {sorted(JOBS)}")
    return JOBS[kind](job)


def _write_atomic(path, text):
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="See the module docstring for the job and answer formats.")
    ap.add_argument("job", help="JSON job file, or - for stdin")
    ap.add_argument("--out", help="write the JSON answer here (atomically) instead of stdout")
    args = ap.parse_args(argv)
    if args.job == "-":
        job = json.load(sys.stdin)
    else:
        with open(args.job) as fh:
            job = json.load(fh)
    try:
        answer = run_job(job)
    except (ValueError, KeyError) as exc:
        print(f"opencv_peers: bad job: {exc}", file=sys.stderr)
        return 2
    text = json.dumps(answer)
    if args.out:
        _write_atomic(args.out, text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
