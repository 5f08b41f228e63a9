"""Classical peers on the shared data sets: dlib's HOG + structural SVM and OpenCV's pretrained detectors.

    python benchmarks/peers.py [--sets caltech101_subset pennfudan cmu_mit_faces] [--methods dlib opencv dlib-mmod]
                               [--data ../shared/data] [--out benchmarks/out/peers] [--quiet]

Every peer is trained (dlib) on the ``train`` split of a shared set (the pretrained ones, OpenCV's
detectors and dlib's MMOD CNN, are not), predicts its ``test`` split,
and is scored by classic_loc's own evaluator, exactly like classic_loc itself
(``benchmarks/quality.py``). Per set and method it writes to ``--out``:

- ``<set>_<method>_detections.json``: COCO results for the test split
  (``image_id`` is the image's file stem, ``category_id`` the class's COCO id 1..K,
  ``bbox`` ``[x, y, w, h]`` in continuous pixel coordinates, clipped to the image);
- ``<set>_dlib_<class>.svm``: dlib's own serialisation of each trained detector;
- ``<set>_<method>_figures.json``: ``fit_seconds``, ``predict_ms_per_image`` (median over the
  test images, one thread, image decoding excluded), ``peak_rss_mb`` (VmHWM of a fresh process
  that only loads the detectors and predicts the test images), ``model_bytes``, ``settings``,
  library versions, ``metrics`` (accuracy, loc_accuracy, mean_iou, corloc, map50, map, map75,
  per-class AP) and, for dlib, the training-box bookkeeping (boxes used, difficult boxes and
  boxes dlib's window cannot reach passed to dlib as *ignore* boxes).

Methods
-------
``dlib``
    ``dlib.train_simple_object_detector`` once per class (``DLIB_SETTINGS``), then all classes'
    detectors together through ``dlib.fhog_object_detector.run_multiple`` with a negative
    ``adjust_threshold`` so that AP curves get recall; dlib's raw detection score is the score
    (every detector's, compared directly across classes). dlib needs every training box to be
    reachable by its single sliding window (one aspect ratio, at least about the window's size):
    :func:`dlib_best_matching_rect` ports dlib's own test, and the boxes it fails are given to
    dlib as ignore boxes (as are VOC ``difficult`` boxes), so they are neither positives nor
    negatives. Images are upsampled by ``upsample`` (bilinear, ``dlib.resize_image``) before
    training and prediction where the objects are small (cmu_mit_faces: 2x).
``opencv``
    OpenCV's pretrained HOG people detector (pennfudan) and Haar frontal face cascade
    (cmu_mit_faces); no training. Both were dropped in OpenCV 5, which the project uses, so they
    run in ``benchmarks/opencv_peers.py`` inside a virtual environment of their own
    (``benchmarks/.venv-cv4`` with ``opencv-python-headless<5``, made by :func:`ensure_cv4_venv`),
    driven by a JSON job.
``dlib-mmod``
    dlib's pretrained MMOD CNN face detector (``dlib.cnn_face_detection_model_v1`` with the
    weights ``face_recognition_models.cnn_face_detector_model_location()`` ships, dlib-models'
    ``mmod_human_face_detector.dat``: trained by dlib's author on his face detection data set,
    dlib_face_detection_dataset-2016-09-30, faces from ImageNet, AFLW, PASCAL VOC, VGG, WIDER and
    Face Scrub images, FDDB excluded; not on ours); cmu_mit_faces only, no training. It runs at
    each of ``MMOD_SETTINGS[set]["upsample"]`` (the first is the method's result; the others
    are written as ``<set>_dlib-mmod-up<n>_detections.json`` and reported in the figures), each in
    a fresh process; with ``reference_model`` (a classic_loc model file) the same run also times
    that model on the same images in a fresh process (``benchmarks/classic.py``'s worker) for
    the ratio. The score is the CNN's confidence; dlib's Python binding keeps only detections
    with confidence > 0 (its ``adjust_threshold`` is not exposed), which caps the AP curve's recall.
    dlib's face boxes are tighter than this set's annotation (its own data set's convention), so
    at ``box_calibration_upsample`` the run also fits a median box correction on the TRAIN split
    (:func:`fit_box_calibration`) and reports the test boxes so corrected
    (``<set>_dlib-mmod-up<n>-cal_detections.json``): finding the faces apart from drawing this
    set's box.

Timing helpers for the speed benchmark: :func:`time_dlib_frontal_face`,
:func:`time_dlib_multiple` (dlib, in this process) and :func:`time_opencv` (OpenCV 4 detectors,
through the ``time`` job of ``opencv_peers.py``).

Box conventions: classic_loc boxes are continuous ``x1, y1, x2, y2`` (a pixel ``i`` covers
``[i, i + 1)``); a ``dlib.rectangle`` is inclusive pixel indices (``width() == right - left + 1``),
so ``rectangle(l, t, r, b)`` is the box ``(l, t, r + 1, b + 1)`` and back
(:func:`dlib_rect_to_box`, :func:`box_to_dlib_rect`). OpenCV's ``Rect(x, y, w, h)`` covers
pixels ``x .. x + w - 1``, i.e. the continuous box ``[x, x + w)``, which is COCO's bbox as is.
"""

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from xml.sax.saxutils import quoteattr

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # single-threaded prediction timings

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)  # the shared helpers, _bench.py
from _bench import load_average, machine, peak_rss_mb, run_worker  # noqa: E402

from classic_loc._fileio import atomic_write_text  # noqa: E402
REPO = os.path.dirname(HERE)
SETS = ("caltech101_subset", "pennfudan", "cmu_mit_faces")
METHODS = ("dlib", "opencv", "dlib-mmod")
DEFAULT_DATA = os.environ.get("CLASSIC_LOC_SHARED_DATA", os.path.join(REPO, "..", "shared", "data"))
DEFAULT_OUT = os.path.join(HERE, "out", "peers")
CV4_VENV = os.path.join(HERE, ".venv-cv4")
OPENCV_SCRIPT = os.path.join(HERE, "opencv_peers.py")
DLIB_MISSING = "dlib is not installed in this environment: pip install dlib-bin"
MMOD_MISSING = ("the MMOD face detector's weights are not installed: pip install face-recognition-models "
                "(the package ships mmod_human_face_detector.dat)")

# dlib settings per set. C, flips and the window follow dlib's own examples; adjust_threshold < 0
# keeps lower-scoring detections so that AP reaches higher recall; cmu_mit_faces is upsampled 2x
# (faces down to ~17 px; the reference run used 4x and trained ~18 min, 2x is about 4x cheaper).
DLIB_COMMON = {"C": 5.0, "epsilon": 0.01, "add_left_right_image_flips": True, "detection_window_size": 80 * 80,
               "num_threads": 2, "upsample": 1, "adjust_threshold": -1.0, "negatives": "all images"}
DLIB_SETTINGS = {
    # one detector per class trained on its own class's images only (as the reference run): training on
    # all 1422 images (other classes as negatives) took 2.4x longer and lowered accuracy (0.944 vs 0.962)
    "caltech101_subset": {**DLIB_COMMON, "negatives": "class images"},
    "pennfudan": {**DLIB_COMMON},
    "cmu_mit_faces": {**DLIB_COMMON, "upsample": 2},
}
# which OpenCV pretrained detector fits which set (others are skipped)
OPENCV_SETTINGS = {
    "pennfudan": {"detector": "hog-people", "class": "person",
                  "params": {}},  # cv2.HOGDescriptor_getDefaultPeopleDetector, default detectMultiScale
    "cmu_mit_faces": {"detector": "haar-face", "class": "face",
                      "params": {"scaleFactor": 1.1, "minNeighbors": 3}},
}
# which set dlib's pretrained MMOD CNN face detector applies to, and its upsample_num_times values:
# the first is the method's result (0: the image as it is, as the other methods' timings are), the
# others are extra figures (1: dlib's own examples; the CNN finds faces down to about 80 px at 0, 40 px at 1)
# box_calibration_upsample: the upsample value whose boxes are also reported after a box calibration fitted
# on the TRAIN split (dlib's face boxes are tighter than this set's annotation; see fit_box_calibration)
MMOD_SETTINGS = {"cmu_mit_faces": {"class": "face", "upsample": [0, 1], "box_calibration_upsample": 1}}


def log(msg, verbose=True):
    if verbose:
        print(f"[peers] {msg}", file=sys.stderr, flush=True)



def _import_dlib():
    try:
        import dlib
    except ImportError:
        raise SystemExit(DLIB_MISSING) from None
    return dlib


def _load_sets(data_dir, set_name, splits=("train", "test")):
    """The shared set's splits, read by classic_loc's VOC reader (same images and boxes as classic_loc sees)."""
    from classic_loc import load_dataset

    root = os.path.join(os.fspath(data_dir), set_name)
    if not os.path.isdir(root):
        raise SystemExit(f"no data set {set_name!r} at {root}: pass --data (the folder holding the shared sets)")
    return tuple(load_dataset(root, split=s) for s in splits)


# ---------------------------------------------------------------- box conventions
def box_to_dlib_rect(box, scale=1.0):
    """A continuous ``x1, y1, x2, y2`` box (times ``scale``) as an inclusive ``dlib.rectangle``.

    Pixel ``i`` covers ``[i, i + 1)``, so the box ``(10, 20, 30, 40)`` is the pixels 10..29 x 20..39:
    ``dlib.rectangle(10, 20, 29, 39)``. Coordinates are rounded to whole pixels first.
    """
    dlib = _import_dlib()
    x1, y1, x2, y2 = (int(round(float(v) * scale)) for v in box)
    return dlib.rectangle(x1, y1, x2 - 1, y2 - 1)


def dlib_rect_to_box(rect, scale=1.0):
    """An inclusive ``dlib.rectangle`` as a continuous ``[x1, y1, x2, y2]`` box, divided by ``scale``.

    ``dlib.rectangle(10, 20, 29, 39)`` (``width() == 20``) is ``[10, 20, 30, 40]``.
    """
    return [rect.left() / scale, rect.top() / scale, (rect.right() + 1) / scale, (rect.bottom() + 1) / scale]


def _coco_bbox(box, width, height):
    """Clip an xyxy box to the image and return COCO ``[x, y, w, h]``, or None if nothing is left."""
    x1, y1 = min(max(box[0], 0.0), width), min(max(box[1], 0.0), height)
    x2, y2 = min(max(box[2], 0.0), width), min(max(box[3], 0.0), height)
    if x2 - x1 <= 0 or y2 - y1 <= 0:
        return None
    return [round(x1, 3), round(y1, 3), round(x2 - x1, 3), round(y2 - y1, 3)]


# ---------------------------------------------------------------- dlib's reachability test, ported
# dlib.train_simple_object_detector raises "An impossible set of object boxes" when a box is not
# matched (score > 0.5) by the best-placed sliding window (scan_fhog_pyramid<pyramid_down<6>>,
# 8-pixel cells, padding 1, dlib's remove_unobtainable_rectangles). These functions reproduce that
# test (dlib/image_processing/scan_fhog_pyramid.h, image_transforms/fhog.h) so that unreachable
# boxes can be given to dlib as ignore boxes instead of failing the training.
_CELL = 8


def _tdiv(a, b):  # C++ integer division (truncates toward zero)
    q = abs(a) // b
    return q if a >= 0 else -q


def _image_to_fhog(x, y, rows_pad, cols_pad):
    return _tdiv(x - 1, _CELL) - 1 + (cols_pad - 1) // 2, _tdiv(y - 1, _CELL) - 1 + (rows_pad - 1) // 2


def _fhog_to_image(x, y, rows_pad, cols_pad):
    x = (x + 1 - (cols_pad - 1) // 2) * _CELL + 1
    y = (y + 1 - (rows_pad - 1) // 2) * _CELL + 1
    half = _CELL // 2
    return x + (half if x >= 0 else -half), y + (half if y >= 0 else -half)


def _map_rect(fn, rect, rows_pad, cols_pad):
    dlib = _import_dlib()
    left, top = fn(rect.left(), rect.top(), rows_pad, cols_pad)
    right, bottom = fn(rect.right(), rect.bottom(), rows_pad, cols_pad)
    return dlib.rectangle(left, top, right, bottom)


def dlib_fhog_window(window_width, window_height):
    """Size in HOG cells, padding included, of dlib's fhog filter for a detection window in pixels."""
    dlib = _import_dlib()
    r = _map_rect(_image_to_fhog, dlib.centered_rect(dlib.point(0, 0), window_width, window_height), 1, 1)
    return r.width() + 2, r.height() + 2


def dlib_window_size(rects, detection_window_size):
    """dlib's ``pick_best_window_size``: the mean box shape scaled to ``detection_window_size`` pixels."""
    mw = sum(r.width() for r in rects) / len(rects)
    mh = sum(r.height() for r in rects) / len(rects)
    s = math.sqrt(detection_window_size / (mw * mh))
    return max(1, int(mw * s + 0.5)), max(1, int(mh * s + 0.5))


def _match_score(a, b):  # dlib: intersection over the area of the bounding rectangle of both
    union = ((max(a.right(), b.right()) - min(a.left(), b.left()) + 1)
             * (max(a.bottom(), b.bottom()) - min(a.top(), b.top()) + 1))
    return a.intersect(b).area() / union


def dlib_best_matching_rect(rect, window_width, window_height):
    """The window position/scale dlib's scanner would use for ``rect`` (``get_best_matching_rect``)."""
    dlib = _import_dlib()
    pyr = dlib.pyramid_down(6)
    fw, fh = dlib_fhog_window(window_width, window_height)
    best, best_level, fhog_rect, level = -1.0, 0, None, 0
    while True:
        down = pyr.rect_down(rect, level) if level else rect
        in_fhog = _map_rect(_image_to_fhog, down, fh, fw)
        c = dlib.center(in_fhog)
        win = _map_rect(_fhog_to_image, dlib.centered_rect(c, fw - 2, fh - 2), fh, fw)
        win = pyr.rect_up(win, level) if level else win
        win = dlib.translate_rect(win, dlib.point(rect.left() - win.left(), rect.top() - win.top()))
        score = _match_score(win, rect)
        if score > best:
            best, best_level, fhog_rect = score, level, dlib.centered_rect(c, fw, fh)
        if in_fhog.area() <= 1:
            break
        level += 1
    mapped = _map_rect(_fhog_to_image, dlib.shrink_rect(fhog_rect, 1), fh, fw)
    return pyr.rect_up(mapped, best_level) if best_level else mapped


def dlib_reachable(rect, window_width, window_height, margin=0.0):
    """True if dlib's trainer accepts ``rect`` as a positive (match score > 0.5 + ``margin``)."""
    return _match_score(dlib_best_matching_rect(rect, window_width, window_height), rect) > 0.5 + margin


def split_reachable(per_image, detection_window_size, margin=0.0):
    """Split positives into (kept, unreachable) per image; returns them and the final window size.

    The window depends on the kept boxes' mean shape and decides which boxes are kept, so this
    iterates to a fixed point (usually one or two rounds).
    """
    all_rects = [r for rects in per_image for r in rects]
    if not all_rects:
        raise ValueError("no positive boxes to train on")
    kept_flags = None
    window = dlib_window_size(all_rects, detection_window_size)
    for _ in range(10):
        flags = [[dlib_reachable(r, *window, margin=margin) for r in rects] for rects in per_image]
        kept = [r for rects, fl in zip(per_image, flags) for r, f in zip(rects, fl) if f]
        if not kept:
            raise ValueError(f"no box is reachable with a {window[0]}x{window[1]} window")
        new_window = dlib_window_size(kept, detection_window_size)
        if flags == kept_flags and new_window == window:
            break
        kept_flags, window = flags, new_window
    keep = [[r for r, f in zip(rects, fl) if f] for rects, fl in zip(per_image, kept_flags)]
    drop = [[r for r, f in zip(rects, fl) if not f] for rects, fl in zip(per_image, kept_flags)]
    return keep, drop, window


# ---------------------------------------------------------------- dlib: training
def _dlib_image(path, upsample):
    """Decode as dlib does for its own XML datasets (RGB), then upsample bilinearly."""
    dlib = _import_dlib()
    img = dlib.load_rgb_image(path)
    if upsample != 1:
        img = dlib.resize_image(img, int(img.shape[0] * upsample), int(img.shape[1] * upsample))
    return img


def _rect_xml(r, ignore=False):
    return (f"    <box top='{r.top()}' left='{r.left()}' width='{r.width()}' height='{r.height()}'"
            + (" ignore='1'" if ignore else "") + "/>\n")


def train_dlib_class(train, class_index, settings, out_path, workdir, verbose=True):
    """Train one dlib detector for ``train.classes[class_index]`` and save it to ``out_path``.

    Positives: that class's non-difficult boxes that dlib's window can reach; ignore boxes: its
    difficult and unreachable boxes; every other image region (other classes' objects included,
    when ``settings["negatives"] == "all images"``) is a negative. The training set goes to dlib
    as an XML dataset file, the only input of ``train_simple_object_detector`` that takes ignore
    boxes. Returns a dict of counts, the window and the training seconds.
    """
    dlib = _import_dlib()
    up = settings["upsample"]
    name = train.classes[class_index]
    records = [r for r in train if settings["negatives"] == "all images" or (r.labels == class_index).any()]
    positives, ignores = [], []
    for r in records:
        sel = r.labels == class_index
        positives.append([box_to_dlib_rect(b, up) for b, d in zip(r.boxes[sel], r.difficult[sel]) if not d])
        ignores.append([box_to_dlib_rect(b, up) for b, d in zip(r.boxes[sel], r.difficult[sel]) if d])
    n_difficult = sum(len(x) for x in ignores)
    options = dlib.simple_object_detector_training_options()
    options.C = float(settings["C"])
    options.epsilon = float(settings["epsilon"])
    options.add_left_right_image_flips = bool(settings["add_left_right_image_flips"])
    options.detection_window_size = int(settings["detection_window_size"])
    options.num_threads = int(settings["num_threads"])
    options.be_verbose = False
    options.upsample_limit = 0  # we upsample ourselves, the same way at test time

    paths = []
    for k, r in enumerate(records):
        if up == 1:
            paths.append(os.path.abspath(r.path))
        else:  # dlib reads its XML images from disk: store the upsampled images losslessly
            path = os.path.join(workdir, f"{k:05d}.png")
            if not os.path.exists(path):
                dlib.save_image(_dlib_image(r.path, up), path)
            paths.append(path)

    margin, t0 = 0.0, None
    for attempt in range(4):
        keep, drop, window = split_reachable(positives, options.detection_window_size, margin)
        xml = ["<?xml version='1.0' encoding='ISO-8859-1'?>\n<dataset>\n<images>\n"]
        for path, pos, ign, unreach in zip(paths, keep, ignores, drop):
            xml.append(f"  <image file={quoteattr(path)}>\n")
            xml += [_rect_xml(b) for b in pos] + [_rect_xml(b, True) for b in ign + unreach]
            xml.append("  </image>\n")
        xml.append("</images>\n</dataset>\n")
        xml_path = os.path.join(workdir, f"{name}.xml")
        atomic_write_text(xml_path, "".join(xml))
        n_pos, n_unreach = sum(len(x) for x in keep), sum(len(x) for x in drop)
        log(f"  {name}: {len(records)} images, {n_pos} boxes, window {window[0]}x{window[1]}, "
            f"{n_difficult} difficult and {n_unreach} unreachable boxes ignored", verbose)
        tmp = out_path + ".tmp"
        t0 = time.perf_counter()
        try:
            dlib.train_simple_object_detector(xml_path, tmp, options)
        except RuntimeError as exc:
            if "impossible set of object boxes" not in str(exc) or attempt == 3:
                raise
            margin += 0.05  # our port disagreed with dlib: be stricter and retry
            log(f"  dlib refused a box; retrying with a reachability margin of {margin:.2f}", verbose)
            continue
        os.replace(tmp, out_path)
        break
    seconds = time.perf_counter() - t0
    det = dlib.fhog_object_detector(out_path)
    log(f"  {name}: trained in {seconds:.1f} s", verbose)
    return {"class": name, "images": len(records), "boxes_used": n_pos, "ignored_difficult": n_difficult,
            "ignored_unreachable": n_unreach, "reachability_margin": margin,
            "window": [det.detection_window_width, det.detection_window_height],
            "train_seconds": round(seconds, 2)}


# ---------------------------------------------------------------- dlib: prediction (fresh process)

def dlib_predict_worker(job):
    """Body of the fresh prediction process: load detectors, predict every image, time, measure RSS.

    ``job``: ``{"detectors": [paths], "images": [paths], "upsample": float, "adjust_threshold": float}``.
    Returns ``{"detections": [[[x1, y1, x2, y2, score, detector_index], ...] per image],
    "ms": [per image], "peak_rss_mb", "dlib_version"}``; boxes are continuous, in original pixels.
    Image decoding is not timed; the upsampling is (it is part of this detector's prediction).
    """
    dlib = _import_dlib()
    detectors = [dlib.fhog_object_detector(p) for p in job["detectors"]]
    up, thr = job["upsample"], job["adjust_threshold"]
    out, times = [], []
    for path in job["images"]:
        img = dlib.load_rgb_image(path)
        t0 = time.perf_counter()
        if up != 1:
            img = dlib.resize_image(img, int(img.shape[0] * up), int(img.shape[1] * up))
        rects, scores, idx = dlib.fhog_object_detector.run_multiple(detectors, img, upsample_num_times=0,
                                                                    adjust_threshold=thr)
        times.append((time.perf_counter() - t0) * 1000.0)
        out.append([dlib_rect_to_box(r, up) + [float(s), int(i)] for r, s, i in zip(rects, scores, idx)])
    return {"detections": out, "ms": times, "peak_rss_mb": peak_rss_mb(), "dlib_version": dlib.__version__}



# ---------------------------------------------------------------- dlib's MMOD CNN face detector (pretrained)
def _mmod_model_path():
    try:
        import face_recognition_models
    except ImportError:
        raise SystemExit(MMOD_MISSING) from None
    return face_recognition_models.cnn_face_detector_model_location()


def mmod_rows(detections, class_index=0):
    """``[x1, y1, x2, y2, confidence, class_index]`` rows of ``cnn_face_detection_model_v1`` detections.

    Each detection has ``.rect`` (a ``dlib.rectangle``: inclusive pixel corners) and ``.confidence``.
    The conversion to classic_loc's continuous boxes happens here, at the edge:
    ``rectangle(l, t, r, b)`` covers the pixels ``l..r`` x ``t..b``, the box ``[l, t, r + 1, b + 1]``
    (:func:`dlib_rect_to_box`). dlib's rectangles of a CNN detection may reach past the image;
    :func:`to_coco_results` clips them.
    """
    return [dlib_rect_to_box(d.rect) + [float(d.confidence), int(class_index)] for d in detections]


def match_pairs(gt_boxes, pred_boxes, min_iou=0.3):
    """(ground truth, prediction) pairs: each ground-truth box with its best-overlapping prediction, if IoU >= ``min_iou``."""
    from classic_loc.boxes import box_iou

    gt = np.asarray(gt_boxes, float).reshape(-1, 4)
    pred = np.asarray(pred_boxes, float).reshape(-1, 4)
    if not len(gt) or not len(pred):
        return []
    ious = box_iou(gt, pred)
    best = ious.argmax(axis=1)
    return [(gt[i].tolist(), pred[j].tolist()) for i, j in enumerate(best) if ious[i, j] >= min_iou]


def fit_box_calibration(pairs):
    """The median box correction that maps predictions onto their ground truth, from (gt, pred) pairs.

    ``width_scale`` and ``height_scale`` are the medians of gt width / pred width and gt height /
    pred height; ``dx`` and ``dy`` the medians of the centre offset (gt - pred) over the prediction's
    width and height. Fitted on the train split only, like every trained method's boxes.
    """
    if not pairs:
        return None
    g, p = np.array([a for a, _ in pairs], float), np.array([b for _, b in pairs], float)
    gw, gh, pw, ph = g[:, 2] - g[:, 0], g[:, 3] - g[:, 1], p[:, 2] - p[:, 0], p[:, 3] - p[:, 1]
    gcx, gcy, pcx, pcy = (g[:, 0] + g[:, 2]) / 2, (g[:, 1] + g[:, 3]) / 2, (p[:, 0] + p[:, 2]) / 2, (p[:, 1] + p[:, 3]) / 2
    return {"width_scale": float(np.median(gw / pw)), "height_scale": float(np.median(gh / ph)),
            "dx": float(np.median((gcx - pcx) / pw)), "dy": float(np.median((gcy - pcy) / ph)), "pairs": len(pairs)}


def calibrate_box(box, cal):
    """``box`` (x1, y1, x2, y2) moved by ``cal``'s centre offset and scaled by its width and height scales."""
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    w, h = x2 - x1, y2 - y1
    cx, cy = (x1 + x2) / 2 + cal["dx"] * w, (y1 + y2) / 2 + cal["dy"] * h
    w, h = w * cal["width_scale"], h * cal["height_scale"]
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


def _cpu_seconds():
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def mmod_predict_worker(job):
    """Body of the fresh MMOD prediction process: load the CNN, predict every image, time, measure RSS.

    ``job``: ``{"kind": "mmod", "model": path, "images": [paths], "upsample": int, "warmup": int}``.
    Returns ``{"detections": [rows per image] (see :func:`mmod_rows`), "ms": [wall ms per image],
    "cpu_ms": [process CPU ms per image], "threads": the process's thread count after the run,
    "peak_rss_mb" (VmHWM), "ru_maxrss_mb", "dlib_version"}``. Image decoding is not timed; the
    warm-up calls (on the first images, untimed) come first, as in classic.py's worker. CPU time
    over wall time near 1 means the CNN ran on one thread.
    """
    import resource

    dlib = _import_dlib()
    net = dlib.cnn_face_detection_model_v1(job["model"])
    up = int(job["upsample"])
    for path in job["images"][:max(0, int(job.get("warmup", 1)))]:
        net(dlib.load_rgb_image(path), up)
    out, times, cpu = [], [], []
    for path in job["images"]:
        img = dlib.load_rgb_image(path)
        c0, t0 = _cpu_seconds(), time.perf_counter()
        dets = net(img, up)
        times.append((time.perf_counter() - t0) * 1000.0)
        cpu.append((_cpu_seconds() - c0) * 1000.0)
        out.append(mmod_rows(dets))
    try:
        threads = len(os.listdir("/proc/self/task"))
    except OSError:
        threads = None
    return {"detections": out, "ms": times, "cpu_ms": cpu, "threads": threads, "peak_rss_mb": peak_rss_mb(),
            "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
            "dlib_version": dlib.__version__}


def _timing(res):
    ms = res["ms"]
    return {"predict_ms_per_image": round(statistics.median(ms), 3),
            "predict_ms_per_image_mean": round(statistics.fmean(ms), 3),
            "peak_rss_mb": round(res["peak_rss_mb"], 1) if res.get("peak_rss_mb") else None}


def run_mmod(set_name, data_dir, out_dir, verbose=True, reference_model=None):
    """dlib's pretrained MMOD CNN face detector on ``set_name``'s test split; None if it does not apply.

    One fresh process per ``MMOD_SETTINGS[set_name]["upsample"]`` value; the first value's detections
    are the method's (``<set>_dlib-mmod_detections.json``), the others go to
    ``<set>_dlib-mmod-up<n>_detections.json`` and ``figures["variants"]``. ``reference_model``: a
    classic_loc model file timed on the same images in the same run (``figures["reference"]``,
    ``ms_ratio_to_reference``); without it the reference is None.
    """
    from _bench import git_state

    cfg = MMOD_SETTINGS.get(set_name)
    if cfg is None:
        log(f"{set_name} dlib-mmod: skipped (a face detector; fits {', '.join(MMOD_SETTINGS)})", verbose)
        return None
    dlib = _import_dlib()
    model = _mmod_model_path()
    git_start = git_state()
    (test,) = _load_sets(data_dir, set_name, ("test",))
    k = test.classes.index(cfg["class"])
    images = [os.path.abspath(r.path) for r in test]
    os.makedirs(out_dir, exist_ok=True)
    variants = []
    for up in cfg["upsample"]:
        log(f"{set_name} dlib-mmod: upsample {up}, {len(test)} test images in a fresh process (1 thread)", verbose)
        load0 = load_average()
        res = run_worker(__file__, {"kind": "mmod", "model": model, "images": images, "upsample": up, "warmup": 1},
                         "dlib MMOD")
        rows = [[r[:5] + [k] for r in dets] for dets in res["detections"]]
        results = to_coco_results(test, rows, lambda j: j)
        wall, cpu = sum(res["ms"]), sum(res["cpu_ms"])
        sides = [math.sqrt(r["bbox"][2] * r["bbox"][3]) for r in results]
        tag = "dlib-mmod" if not variants else f"dlib-mmod-up{up}"
        variants.append({"upsample": up, **_timing(res), "cpu_over_wall": round(cpu / wall, 3) if wall else None,
                         "threads_in_process": res["threads"], "ru_maxrss_mb": round(res["ru_maxrss_mb"], 1),
                         "n_detections": len(results),
                         "smallest_detection_px": round(min(sides), 1) if sides else None,  # sqrt(w h), clipped
                         "load_average_at_start": load0, "load_average_at_end": load_average(),
                         "metrics": _metrics(test, results), "detections": f"{set_name}_{tag}_detections.json"})
        atomic_write_text(os.path.join(out_dir, variants[-1]["detections"]), json.dumps(results))
        log(f"{set_name} dlib-mmod: upsample {up}: AP50 {variants[-1]['metrics']['map50']:.3f}, "
            f"{variants[-1]['predict_ms_per_image']:.0f} ms/image, CPU/wall {variants[-1]['cpu_over_wall']}", verbose)
    cal_up = cfg.get("box_calibration_upsample")
    if cal_up is not None:
        (train,) = _load_sets(data_dir, set_name, ("train",))
        log(f"{set_name} dlib-mmod: upsample {cal_up} on the {len(train)} train images, to fit a box calibration",
            verbose)
        res = run_worker(__file__, {"kind": "mmod", "model": model, "images": [os.path.abspath(r.path) for r in train],
                                    "upsample": cal_up, "warmup": 0}, "dlib MMOD")
        pairs = [pair for r, dets in zip(train, res["detections"])
                 for pair in match_pairs(r.boxes[(r.labels == k) & ~r.difficult], [d[:4] for d in dets])]
        cal = fit_box_calibration(pairs)
        base = next(v for v in variants if v["upsample"] == cal_up)
        with open(os.path.join(out_dir, base["detections"])) as fh:
            base_results = json.load(fh)
        rows = [[] for _ in test]
        index = {rec.image_id: i for i, rec in enumerate(test)}
        for r in base_results:  # the clipped COCO boxes of that run, calibrated, clipped again
            x, y, w, h = r["bbox"]
            rows[index[r["image_id"]]].append(calibrate_box([x, y, x + w, y + h], cal) + [r["score"], k])
        results = to_coco_results(test, rows, lambda j: j)
        variants.append({**{key: v for key, v in base.items() if key not in ("metrics", "detections")},
                         "box_calibration": {**{key: round(v, 4) for key, v in cal.items() if key != "pairs"},
                                             "pairs": cal["pairs"], "fitted_on": f"{len(train)} train images",
                                             "min_iou": 0.3},
                         "timing_from": f"upsample {cal_up} (the calibration costs nothing at prediction)",
                         "metrics": _metrics(test, results),
                         "detections": f"{set_name}_dlib-mmod-up{cal_up}-cal_detections.json"})
        atomic_write_text(os.path.join(out_dir, variants[-1]["detections"]), json.dumps(results))
        log(f"{set_name} dlib-mmod: upsample {cal_up} with boxes calibrated on train ({cal}): "
            f"AP50 {variants[-1]['metrics']['map50']:.3f}", verbose)
    reference = None
    if reference_model and os.path.exists(reference_model):
        log(f"{set_name} dlib-mmod: timing the reference {os.path.basename(reference_model)} on the same "
            f"images in a fresh process (1 thread)", verbose)
        load0 = load_average()
        ref = run_worker(os.path.join(HERE, "classic.py"),
                         {"model": os.path.abspath(reference_model),
                          "images": [[r.image_id, os.path.abspath(r.path)] for r in test], "warmup": 1},
                         "classic_loc")
        reference = {"model": os.path.basename(reference_model), "model_bytes": os.path.getsize(reference_model),
                     "model_mtime": time.strftime("%Y-%m-%dT%H:%M:%S%z",
                                                  time.localtime(os.path.getmtime(reference_model))),
                     **_timing(ref), "load_average_at_start": load0, "load_average_at_end": load_average(),
                     "metrics": _metrics(test, ref["results"])}
    first = variants[0]
    figures = {
        "set": set_name, "method": "dlib-mmod", "train_images": 0, "test_images": len(test), "fit_seconds": 0.0,
        "predict_ms_per_image": first["predict_ms_per_image"],
        "predict_ms_per_image_mean": first["predict_ms_per_image_mean"], "peak_rss_mb": first["peak_rss_mb"],
        "model_bytes": os.path.getsize(model),
        "settings": {"model": os.path.basename(model), "upsample_num_times": first["upsample"],
                     "variants_upsample": [v["upsample"] for v in variants[1:]], "class": cfg["class"],
                     "score": "the CNN's confidence (dlib keeps confidence > 0)",
                     "box": "dlib.rectangle (inclusive pixels) l, t, r, b -> [l, t, r + 1, b + 1]",
                     "training_data": "dlib_face_detection_dataset-2016-09-30 (ImageNet, AFLW, PASCAL VOC, VGG, "
                                      "WIDER, Face Scrub images; FDDB excluded), not the shared set"},
        "variants": variants, "reference": reference,
        "ms_ratio_to_reference": (round(first["predict_ms_per_image"] / reference["predict_ms_per_image"], 2)
                                  if reference else None),
        "git_at_start": git_start, "git_at_end": git_state(),
        "versions": {"dlib": dlib.__version__, "face-recognition-models": _dist_version("face-recognition-models"),
                     "numpy": np.__version__, "classic_loc": _classic_loc_version()},
        "machine": machine(), "load_average_at_end": load_average(), "metrics": first["metrics"],
        "files": {"detections": first["detections"], "variant_detections": [v["detections"] for v in variants[1:]]},
    }
    atomic_write_text(os.path.join(out_dir, f"{set_name}_dlib-mmod_figures.json"), json.dumps(figures, indent=2))
    log(f"{set_name} dlib-mmod: {_summary(figures)}", verbose)
    return figures


def _dist_version(name):
    import importlib.metadata

    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


# ---------------------------------------------------------------- results and evaluation
def to_coco_results(test, detections, class_of):
    """COCO results for ``test``: ``detections[i]`` are ``[x1, y1, x2, y2, score, k]`` rows of image ``i``.

    ``class_of(k)`` gives the class index of row label ``k``. Boxes are clipped to the image.
    """
    results = []
    for rec, rows in zip(test, detections):
        for x1, y1, x2, y2, score, k in rows:
            bbox = _coco_bbox((x1, y1, x2, y2), rec.width, rec.height)
            if bbox is None:
                continue
            results.append({"image_id": rec.image_id, "category_id": test.category_ids[class_of(int(k))],
                            "bbox": bbox, "score": float(score)})
    return results


def _metrics(test, results):
    from classic_loc.evaluation import evaluate

    m = evaluate(test, results)
    keys = ("accuracy", "loc_accuracy", "mean_iou", "corloc", "map50", "map", "map75", "presence_accuracy")
    out = {k: m[k] for k in keys}
    out["per_class"] = {c: {"ap50": v["ap50"], "ap": v["ap"], "accuracy": v["accuracy"]}
                        for c, v in m["per_class"].items()}
    out["n_predictions"] = m["n_predictions"]
    return out



def _classic_loc_version():
    import classic_loc

    return getattr(classic_loc, "__version__", None)


def _write_results(out_dir, set_name, method, results, figures):
    atomic_write_text(os.path.join(out_dir, f"{set_name}_{method}_detections.json"), json.dumps(results))
    atomic_write_text(os.path.join(out_dir, f"{set_name}_{method}_figures.json"), json.dumps(figures, indent=2))


def run_dlib(set_name, data_dir, out_dir, verbose=True, settings=None):
    """Train dlib detectors on ``set_name``'s train split, predict its test split, evaluate; see :func:`run`."""
    dlib = _import_dlib()
    settings = {**DLIB_SETTINGS.get(set_name, DLIB_COMMON), **(settings or {})}
    train, test = _load_sets(data_dir, set_name)
    os.makedirs(out_dir, exist_ok=True)
    log(f"{set_name} dlib: training {len(train.classes)} detector(s) on {len(train)} images "
        f"(upsample {settings['upsample']}x, C {settings['C']}, window {settings['detection_window_size']} px)",
        verbose)
    det_paths, boxes_info = [], []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="peers_dlib_") as work:
        for k, name in enumerate(train.classes):
            path = os.path.join(out_dir, f"{set_name}_dlib_{name}.svm")
            boxes_info.append(train_dlib_class(train, k, settings, path, work, verbose))
            det_paths.append(path)
    fit_seconds = time.perf_counter() - t0
    log(f"{set_name} dlib: predicting {len(test)} test images in a fresh process (1 thread)", verbose)
    res = run_worker(__file__, {"detectors": det_paths, "images": [os.path.abspath(r.path) for r in test],
                                "upsample": settings["upsample"], "adjust_threshold": settings["adjust_threshold"]},
                     "dlib")
    results = to_coco_results(test, res["detections"], lambda k: k)
    metrics = _metrics(test, results)
    figures = {
        "set": set_name, "method": "dlib", "train_images": len(train), "test_images": len(test),
        "fit_seconds": round(fit_seconds, 2),
        "predict_ms_per_image": round(statistics.median(res["ms"]), 3),
        "predict_ms_per_image_mean": round(statistics.fmean(res["ms"]), 3),
        "peak_rss_mb": round(res["peak_rss_mb"], 1) if res["peak_rss_mb"] else None,
        "model_bytes": sum(os.path.getsize(p) for p in det_paths),
        "settings": settings, "training_boxes": boxes_info,
        "versions": {"dlib": dlib.__version__, "numpy": np.__version__, "classic_loc": _classic_loc_version()},
        "machine": machine(), "load_average_at_end": load_average(), "metrics": metrics,
        "files": {"detections": f"{set_name}_dlib_detections.json",
                  "detectors": [os.path.basename(p) for p in det_paths]},
    }
    _write_results(out_dir, set_name, "dlib", results, figures)
    log(f"{set_name} dlib: {_summary(figures)}", verbose)
    return figures


# ---------------------------------------------------------------- OpenCV 4 (own venv)
def _cv4_python():
    return os.path.join(CV4_VENV, "Scripts" if os.name == "nt" else "bin",
                        "python.exe" if os.name == "nt" else "python")


def ensure_cv4_venv(verbose=True):
    """Return the Python of ``benchmarks/.venv-cv4``, creating it if needed.

    The venv holds ``opencv-python-headless<5`` (HOGDescriptor and CascadeClassifier, with the
    cascade XMLs, were dropped from OpenCV 5) and numpy; an existing venv is reused when its
    OpenCV imports and is older than 5.
    """
    py = _cv4_python()
    check = "import cv2, numpy, sys; sys.exit(0 if int(cv2.__version__.split('.')[0]) < 5 else 1)"
    if os.path.exists(py) and subprocess.run([py, "-c", check], capture_output=True, check=False).returncode == 0:
        return py
    log(f"creating {CV4_VENV} with opencv-python-headless<5 (once)", verbose)
    if not os.path.exists(py):
        subprocess.run([sys.executable, "-m", "venv", CV4_VENV], check=True)
    subprocess.run([py, "-m", "pip", "install", "--quiet", "opencv-python-headless<5", "numpy"], check=True)
    if subprocess.run([py, "-c", check], capture_output=True, check=False).returncode != 0:
        raise RuntimeError(f"{CV4_VENV}: OpenCV < 5 does not import after installation")
    return py


def run_opencv_job(job, verbose=True):
    """Run one JSON job of ``opencv_peers.py`` in the OpenCV 4 venv and return its JSON answer."""
    py = ensure_cv4_venv(verbose)
    with tempfile.TemporaryDirectory() as tmp:
        job_path, res_path = os.path.join(tmp, "job.json"), os.path.join(tmp, "result.json")
        with open(job_path, "w") as fh:
            json.dump(job, fh)
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
        proc = subprocess.run([py, OPENCV_SCRIPT, job_path, "--out", res_path], env=env,
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"opencv_peers.py failed:\n{proc.stderr.strip()}")
        with open(res_path) as fh:
            return json.load(fh)


def run_opencv(set_name, data_dir, out_dir, verbose=True):
    """OpenCV's pretrained detector for ``set_name`` on its test split; None if none fits the set."""
    cfg = OPENCV_SETTINGS.get(set_name)
    if cfg is None:
        log(f"{set_name} opencv: skipped (no OpenCV pretrained detector for its classes; "
            f"fits {', '.join(OPENCV_SETTINGS)})", verbose)
        return None
    (test,) = _load_sets(data_dir, set_name, ("test",))
    k = test.classes.index(cfg["class"])
    log(f"{set_name} opencv: {cfg['detector']} on {len(test)} test images in {CV4_VENV} (1 thread)", verbose)
    res = run_opencv_job({"job": "detect", "detector": cfg["detector"], "params": cfg["params"],
                          "images": [os.path.abspath(r.path) for r in test]}, verbose)
    rows = [[[x, y, x + w, y + h, s, k] for x, y, w, h, s in dets] for dets in res["detections"]]
    results = to_coco_results(test, rows, lambda j: j)
    metrics = _metrics(test, results)
    figures = {
        "set": set_name, "method": "opencv", "train_images": 0, "test_images": len(test),
        "fit_seconds": 0.0, "predict_ms_per_image": round(statistics.median(res["ms"]), 3),
        "predict_ms_per_image_mean": round(statistics.fmean(res["ms"]), 3),
        "peak_rss_mb": round(res["peak_rss_mb"], 1) if res.get("peak_rss_mb") else None,
        "model_bytes": res["model_bytes"],
        "settings": {"detector": cfg["detector"], "class": cfg["class"], **res["settings"]},
        "versions": {"opencv": res["cv2_version"], "numpy": res["numpy_version"],
                     "classic_loc": _classic_loc_version()},
        "machine": machine(), "load_average_at_end": load_average(), "metrics": metrics,
        "files": {"detections": f"{set_name}_opencv_detections.json"},
    }
    _write_results(out_dir, set_name, "opencv", results, figures)
    log(f"{set_name} opencv: {_summary(figures)}", verbose)
    return figures


def _summary(f):
    m = f["metrics"]
    return (f"acc {m['accuracy']:.3f} loc {m['loc_accuracy']:.3f} IoU {m['mean_iou']:.3f} "
            f"AP50 {m['map50']:.3f} mAP {m['map']:.3f}; fit {f['fit_seconds']:.0f} s, "
            f"predict {f['predict_ms_per_image']:.1f} ms/image, peak RSS {f['peak_rss_mb']} MB, "
            f"model {f['model_bytes']} bytes")


def run(set_name, method, data_dir=DEFAULT_DATA, out_dir=DEFAULT_OUT, verbose=True, settings=None,
        reference_model=None):
    """Run one peer on one shared set and write its files; returns the figures dict, or None if skipped.

    Parameters
    ----------
    set_name : {"caltech101_subset", "pennfudan", "cmu_mit_faces"}
    method : {"dlib", "opencv", "dlib-mmod"}
    data_dir, out_dir : str
        The folder holding the shared sets, and where to write (see the module docstring).
    verbose : bool
        Progress to stderr.
    settings : dict, optional
        dlib only: overrides of ``DLIB_SETTINGS[set_name]``.
    reference_model : str, optional
        dlib-mmod only: a classic_loc model file timed on the same images in the same run.
    """
    if method == "dlib":
        return run_dlib(set_name, data_dir, out_dir, verbose, settings)
    if method == "opencv":
        return run_opencv(set_name, data_dir, out_dir, verbose)
    if method == "dlib-mmod":
        return run_mmod(set_name, data_dir, out_dir, verbose, reference_model=reference_model)
    raise ValueError(f"unknown method {method!r}; use one of {METHODS}")


# ---------------------------------------------------------------- timing helpers (speed benchmark)
def _as_images(images):
    """Arrays as they are; paths decoded as dlib decodes them (RGB)."""
    dlib = _import_dlib()
    return [dlib.load_rgb_image(os.fspath(im)) if isinstance(im, (str, os.PathLike)) else np.asarray(im)
            for im in images]


def _time_calls(fn, images, repeats):
    per_image = []
    for img in images:
        fn(img)  # warm-up
        ms = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn(img)
            ms.append((time.perf_counter() - t0) * 1000.0)
        per_image.append(statistics.median(ms))
    return {"median_ms": statistics.median(per_image), "per_image_ms": per_image, "repeats": repeats,
            "sizes": [list(im.shape[:2][::-1]) for im in images]}


def time_dlib_frontal_face(images, repeats=10):
    """Time ``dlib.get_frontal_face_detector()`` (upsample 0) on each image, one thread.

    Parameters
    ----------
    images : list of ndarray (RGB or gray uint8) or image paths
    repeats : int
        Timed calls per image, after one warm-up call.

    Returns
    -------
    dict
        ``median_ms`` (median over images of the per-image median), ``per_image_ms``, ``repeats``,
        ``sizes`` ([width, height] per image), ``dlib_version``.
    """
    dlib = _import_dlib()
    det = dlib.get_frontal_face_detector()
    out = _time_calls(lambda img: det(img, 0), _as_images(images), repeats)
    out["dlib_version"] = dlib.__version__
    return out


def time_dlib_multiple(detector_paths, images, repeats=10, upsample_num_times=0, adjust_threshold=0.0):
    """Time ``dlib.fhog_object_detector.run_multiple`` with the detectors saved at ``detector_paths``.

    Same arguments and result as :func:`time_dlib_frontal_face`, plus the run_multiple options
    (the images are passed as given: upsample them first for a detector trained on upsampled images).
    """
    dlib = _import_dlib()
    dets = [dlib.fhog_object_detector(os.fspath(p)) for p in detector_paths]
    out = _time_calls(lambda img: dlib.fhog_object_detector.run_multiple(
        dets, img, upsample_num_times=upsample_num_times, adjust_threshold=adjust_threshold),
        _as_images(images), repeats)
    out["dlib_version"] = dlib.__version__
    out["n_detectors"] = len(dets)
    return out


def time_opencv(image_path, sizes=((320, 240), (640, 480)), detectors=None, repeats=20, verbose=True):
    """Median ms per image of OpenCV 4's pretrained detectors at given sizes (one thread).

    Runs the ``time`` job of ``opencv_peers.py`` in the OpenCV 4 venv: ``image_path`` (a real
    image) is resized to each ``(width, height)``. ``detectors`` defaults to the HOG people
    detector (default settings) and the Haar frontal face cascade at scaleFactor 1.1 and 1.2,
    minNeighbors 3. Returns the job's answer: ``{"results": [{"detector", "params", "width",
    "height", "median_ms", "min_ms", "repeats", "n_detections"}, ...], "cv2_version", ...}``.
    """
    if detectors is None:
        detectors = [{"detector": "hog-people", "params": {}},
                     {"detector": "haar-face", "params": {"scaleFactor": 1.1, "minNeighbors": 3}},
                     {"detector": "haar-face", "params": {"scaleFactor": 1.2, "minNeighbors": 3}}]
    return run_opencv_job({"job": "time", "image": os.path.abspath(os.fspath(image_path)),
                           "sizes": [list(s) for s in sizes], "detectors": list(detectors),
                           "repeats": int(repeats)}, verbose)


# ---------------------------------------------------------------- CLI
def _table(rows):
    head = ("| set | method | accuracy | loc_accuracy | mean_iou | map50 | map | fit s | predict ms/img "
            "| peak RSS MB | model bytes |")
    lines = [head, "|" + "---|" * 11]
    for f in rows:
        m = f["metrics"]
        lines.append(f"| {f['set']} | {f['method']} | {m['accuracy']:.3f} | {m['loc_accuracy']:.3f} | "
                     f"{m['mean_iou']:.3f} | {m['map50']:.3f} | {m['map']:.3f} | {f['fit_seconds']:.1f} | "
                     f"{f['predict_ms_per_image']:.1f} | {f['peak_rss_mb']} | {f['model_bytes']} |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] + "\n\n" + __doc__.split("\n\n")[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", nargs="+", default=list(SETS), choices=SETS, metavar="SET",
                    help=f"shared data sets to run (default: all: {' '.join(SETS)})")
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS, metavar="METHOD",
                    help="peers to run: dlib (trains HOG + structural SVM detectors, needs dlib-bin), "
                         "opencv (OpenCV 4's pretrained HOG people / Haar face detectors, run in "
                         "benchmarks/.venv-cv4, created on first use) and dlib-mmod (dlib's pretrained MMOD CNN "
                         "face detector, needs dlib-bin and face-recognition-models); combinations that do not "
                         "fit a set are skipped (default: all three)")
    ap.add_argument("--data", default=DEFAULT_DATA,
                    help="folder holding the shared data sets (default: $CLASSIC_LOC_SHARED_DATA or ../shared/data)")
    ap.add_argument("--out", default=DEFAULT_OUT,
                    help="folder for detections, detectors and figures (default: benchmarks/out/peers)")
    ap.add_argument("--quiet", action="store_true", help="no progress messages on stderr")
    ap.add_argument("--worker-job", help=argparse.SUPPRESS)
    ap.add_argument("--worker-out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker_job:  # internal: the fresh dlib prediction process
        with open(args.worker_job) as fh:
            job = json.load(fh)
        worker = mmod_predict_worker if job.get("kind") == "mmod" else dlib_predict_worker
        atomic_write_text(args.worker_out, json.dumps(worker(job)))
        return 0
    if not os.path.isdir(args.data):
        ap.error(f"no shared data at {args.data}: pass --data or set CLASSIC_LOC_SHARED_DATA")
    if "dlib" in args.methods or "dlib-mmod" in args.methods:
        _import_dlib()
    if "dlib-mmod" in args.methods:
        _mmod_model_path()
    rows, t0 = [], time.perf_counter()
    for set_name in args.sets:
        for method in args.methods:
            f = run(set_name, method, args.data, args.out, verbose=not args.quiet)
            if f is not None:
                rows.append(f)
    wall = time.perf_counter() - t0
    print(_table(rows))
    print(f"\ntotal wall time {wall:.0f} s; files in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
