"""benchmarks/peers.py and benchmarks/opencv_peers.py: box conventions, dlib training, the OpenCV 4 job protocol.

dlib tests need ``dlib`` (``pip install dlib-bin``); the OpenCV job tests need the venv
``benchmarks/.venv-cv4`` (made by ``peers.ensure_cv4_venv()`` or a first ``peers.py --methods opencv`` run).
"""

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from classic_loc import load_dataset
from classic_loc.boxes import box_iou
from classic_loc.datasets import Dataset, ImageRecord
from classic_loc.evaluation import evaluate

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCH))
import peers  # noqa: E402

NEEDS_DLIB = "needs dlib: pip install dlib-bin"


def _cv4_python():
    py = Path(peers._cv4_python())
    if not py.exists():
        pytest.skip(f"needs the OpenCV 4 venv {peers.CV4_VENV} (run peers.ensure_cv4_venv() once)")
    return str(py)


# ---------------------------------------------------------------- conventions
def test_dlib_rectangle_conversion_hand_example():
    dlib = pytest.importorskip("dlib", reason=NEEDS_DLIB)
    # dlib rectangles are inclusive pixel indices: rectangle(10, 20, 29, 39) covers pixels 10..29 x 20..39,
    # width() == right - left + 1 == 20; in continuous coordinates that is the box [10, 20, 30, 40].
    r = peers.box_to_dlib_rect([10, 20, 30, 40])
    assert (r.left(), r.top(), r.right(), r.bottom()) == (10, 20, 29, 39)
    assert (r.width(), r.height()) == (20, 20)
    assert peers.dlib_rect_to_box(dlib.rectangle(10, 20, 29, 39)) == [10, 20, 30, 40]
    # upsampled 2x for training/prediction and mapped back
    r2 = peers.box_to_dlib_rect([10.5, 20, 30, 40], scale=2)
    assert (r2.left(), r2.top(), r2.right(), r2.bottom()) == (21, 40, 59, 79)
    assert peers.dlib_rect_to_box(r2, scale=2) == [10.5, 20, 30, 40]
    # a VOC box xmin=11..xmax=30 (1-based, inclusive) is classic_loc's [10, 30): the same 20 pixels
    assert peers.box_to_dlib_rect([11 - 1, 1 - 1, 30, 10]).width() == 30 - 11 + 1


def test_coco_results_clip_and_convert():
    test = Dataset([ImageRecord("a", None, 100, 50, [[10, 10, 20, 20]], [1]),
                    ImageRecord("b", None, 100, 50, [], [])], ["cat", "dog"])
    rows = [[[-5.0, 10.0, 20.0, 60.0, 0.7, 1], [10.0, 10.0, 20.0, 20.0, 0.9, 0]],
            [[100.0, 0.0, 120.0, 10.0, 0.3, 0]]]  # entirely right of the image: dropped
    res = peers.to_coco_results(test, rows, lambda k: k)
    assert res == [{"image_id": "a", "category_id": 2, "bbox": [0.0, 10.0, 20.0, 40.0], "score": 0.7},
                   {"image_id": "a", "category_id": 1, "bbox": [10.0, 10.0, 10.0, 10.0], "score": 0.9}]
    m = evaluate(test, res)
    assert m["accuracy"] == 0.0 and m["corloc"] == 1.0  # top prediction: the right box, the wrong class


def test_opencv_on_caltech_is_skipped(tmp_path):
    assert peers.run("caltech101_subset", "opencv", tmp_path, tmp_path, verbose=False) is None
    assert list(tmp_path.iterdir()) == []


def test_cli_help_lists_options():
    out = subprocess.run([sys.executable, str(BENCH / "peers.py"), "--help"], capture_output=True, text=True,
                         check=False)
    assert out.returncode == 0
    for opt in ("--sets", "--methods", "--data", "--out", "--quiet"):
        assert opt in out.stdout
    assert "--worker-job" not in out.stdout


# ---------------------------------------------------------------- dlib
def test_reachability_port_agrees_with_dlib():
    dlib = pytest.importorskip("dlib", reason=NEEDS_DLIB)
    window = (80, 80)
    square, wide = dlib.rectangle(10, 10, 109, 109), dlib.rectangle(10, 10, 409, 59)
    small = dlib.rectangle(5, 5, 34, 34)
    assert peers.dlib_reachable(square, *window)
    assert not peers.dlib_reachable(wide, *window)  # aspect 8:1 against a square window
    assert not peers.dlib_reachable(small, *window)  # 30 px: smaller than the window, and no upsampling
    options = dlib.simple_object_detector_training_options()
    options.upsample_limit, options.max_runtime_seconds, options.num_threads = 0, 0.2, 1
    img = np.zeros((200, 450), np.uint8)
    for bad in (wide, small):
        # dlib picks its window from the mean box shape of all the boxes it is given
        boxes = [[square]] * 20 + [[bad]]
        w, h = peers.dlib_window_size([b for bb in boxes for b in bb], 6400)
        assert peers.dlib_reachable(square, w, h) and not peers.dlib_reachable(bad, w, h)
        with pytest.raises(RuntimeError, match="impossible set of object boxes"):
            dlib.train_simple_object_detector([img] * 21, boxes, options)
    dlib.train_simple_object_detector([img] * 20, [[square]] * 20, options)  # accepted (stops at the time limit)


def test_dlib_train_predict_convert(shared_data, tmp_path):
    dlib = pytest.importorskip("dlib", reason=NEEDS_DLIB)
    full = load_dataset(shared_data / "caltech101_subset", split="train")
    faces = [r for r in full if full.classes[r.labels[0]] == "face"][:12]
    # one extra box dlib's window cannot reach (8:1): it must go to dlib as an ignore box, not fail training
    r0 = faces[0]
    faces[0] = replace(r0, boxes=np.vstack([r0.boxes, [[0, 0, 160, 20]]]), labels=np.append(r0.labels, r0.labels[0]),
                       difficult=np.append(r0.difficult, False), crowd=np.append(r0.crowd, False))
    train = Dataset(faces, full.classes)
    k = train.classes.index("face")
    settings = {**peers.DLIB_COMMON, "num_threads": 1, "negatives": "class images"}
    path = str(tmp_path / "face.svm")
    info = peers.train_dlib_class(train, k, settings, path, str(tmp_path), verbose=False)
    assert info["images"] == 12 and info["boxes_used"] == 12 and info["ignored_unreachable"] == 1
    assert os.path.getsize(path) > 0 and info["window"][0] * info["window"][1] > 0

    test = Dataset([replace(r, boxes=r.boxes[:1], labels=r.labels[:1], difficult=r.difficult[:1], crowd=r.crowd[:1])
                    for r in faces], full.classes)
    res = peers.dlib_predict_worker({"detectors": [path], "images": [r.path for r in test],
                                     "upsample": 1, "adjust_threshold": -1.0})
    assert len(res["detections"]) == len(test) == len(res["ms"]) and res["peak_rss_mb"] > 0
    # the worker's boxes are dlib's rectangles converted with right/bottom + 1
    det = dlib.fhog_object_detector(path)
    img = dlib.load_rgb_image(test[0].path)
    rects, scores, _ = dlib.fhog_object_detector.run_multiple([det], img, upsample_num_times=0, adjust_threshold=-1.0)
    r, s = rects[0], scores[0]
    assert res["detections"][0][0][:5] == pytest.approx([r.left(), r.top(), r.right() + 1, r.bottom() + 1, s])

    results = peers.to_coco_results(test, res["detections"], lambda j: k)
    first = results[0]
    x1, y1 = max(r.left(), 0), max(r.top(), 0)
    x2, y2 = min(r.right() + 1, test[0].width), min(r.bottom() + 1, test[0].height)
    assert first["image_id"] == test[0].image_id and first["category_id"] == test.category_ids[k]
    assert first["bbox"] == pytest.approx([x1, y1, x2 - x1, y2 - y1])
    # on its own training images the detector finds the faces, and the evaluator agrees
    top = [max((d for d in results if d["image_id"] == rec.image_id), key=lambda d: d["score"]) for rec in test]
    ious = [box_iou(np.array([[b[0], b[1], b[0] + b[2], b[1] + b[3]]]), rec.boxes)[0, 0]
            for rec, b in zip(test, (d["bbox"] for d in top))]
    m = evaluate(test, results)
    assert m["mean_iou"] == pytest.approx(np.mean(ious))
    assert m["loc_accuracy"] >= 0.8 and m["accuracy"] == 1.0


# ---------------------------------------------------------------- OpenCV 4 job protocol
def _job(py, job, *args):
    return subprocess.run([py, str(BENCH / "opencv_peers.py"), "-", *args], input=json.dumps(job),
                          capture_output=True, text=True, timeout=120, check=False)


def test_opencv_detect_job_protocol(shared_data, tmp_path):
    py = _cv4_python()
    faces = load_dataset(shared_data / "cmu_mit_faces", split="test")
    images = [r.path for r in faces if r.n_objects][:2]
    proc = _job(py, {"job": "detect", "detector": "haar-face", "params": {"scaleFactor": 1.1, "minNeighbors": 3},
                     "images": images})
    assert proc.returncode == 0, proc.stderr
    ans = json.loads(proc.stdout)
    assert int(ans["cv2_version"].split(".")[0]) == 4
    assert len(ans["detections"]) == len(ans["ms"]) == 2 and ans["peak_rss_mb"] > 0 and ans["model_bytes"] > 0
    assert sum(len(d) for d in ans["detections"]) > 0
    for dets in ans["detections"]:
        for x, y, w, h, s in dets:
            assert all(isinstance(v, int) for v in (x, y, w, h)) and w > 0 and h > 0 and isinstance(s, float)

    people = load_dataset(shared_data / "pennfudan", split="test")
    out = tmp_path / "answer.json"
    proc = _job(py, {"job": "detect", "detector": "hog-people", "images": [people[0].path]}, "--out", str(out))
    assert proc.returncode == 0 and proc.stdout == "", proc.stderr
    ans = json.loads(out.read_text())
    assert len(ans["detections"]) == 1 and ans["settings"]["window"] == [64, 128]

    proc = _job(py, {"job": "detect", "detector": "nope", "images": []})
    assert proc.returncode == 2 and "unknown detector" in proc.stderr


def test_opencv_time_job_protocol(shared_data):
    py = _cv4_python()
    image = load_dataset(shared_data / "pennfudan", split="test")[0].path
    job = {"job": "time", "image": image, "sizes": [[160, 120], [320, 240]], "repeats": 2,
           "detectors": [{"detector": "hog-people"},
                         {"detector": "haar-face", "params": {"scaleFactor": 1.2, "minNeighbors": 3}}]}
    proc = _job(py, job)
    assert proc.returncode == 0, proc.stderr
    ans = json.loads(proc.stdout)
    assert ans["threads"] == 1
    got = [(r["detector"], r["width"], r["height"], r["repeats"]) for r in ans["results"]]
    assert got == [("hog-people", 160, 120, 2), ("hog-people", 320, 240, 2),
                   ("haar-face", 160, 120, 2), ("haar-face", 320, 240, 2)]
    assert all(0 < r["min_ms"] <= r["median_ms"] for r in ans["results"])
    assert ans["results"][2]["params"] == {"scaleFactor": 1.2, "minNeighbors": 3}
