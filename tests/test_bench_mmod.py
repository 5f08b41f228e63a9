"""benchmarks/peers.py's dlib-mmod method and its place in benchmarks/run.py's report.

No CNN runs here: the box conversion is checked on hand-made dlib rectangles, and the report
on a hand-made 2-image face set with hand-made runner outputs (a fake ``run_method``).
"""

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from classic_loc.datasets import Dataset, ImageRecord, write_voc

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCH))
import peers  # noqa: E402
import run as bench_run  # noqa: E402


def test_mmod_rows_convert_inclusive_rectangles_and_clip_at_the_image():
    dlib = pytest.importorskip("dlib", reason="needs dlib-bin")
    dets = [SimpleNamespace(rect=dlib.rectangle(10, 20, 29, 39), confidence=0.75),  # pixels 10..29 x 20..39
            SimpleNamespace(rect=dlib.rectangle(-5, -3, 49, 59), confidence=0.25)]  # past the image's corner
    rows = peers.mmod_rows(dets, class_index=0)
    assert rows == [[10, 20, 30, 40, 0.75, 0], [-5, -3, 50, 60, 0.25, 0]]
    test = Dataset([ImageRecord("a", "a.jpg", 40, 50, [[0, 0, 10, 10]], [0])], ["face"])
    coco = peers.to_coco_results(test, [rows], lambda k: k)
    # COCO x, y, w, h: the first box as is (20 x 20), the second clipped to the 40 x 50 image
    assert [r["bbox"] for r in coco] == [[10, 20, 20, 20], [0.0, 0.0, 40.0, 50.0]]
    assert [r["score"] for r in coco] == [0.75, 0.25]


def test_box_calibration_fitted_on_pairs_maps_tight_boxes_onto_the_annotation():
    # two faces; the detector's boxes are 0.8x the width, 0.5x the height, and their centre is one own height
    # above the face's
    gt = [[0, 0, 40, 40], [100, 100, 120, 140]]
    pred = [[4, -10, 36, 10], [102, 90, 118, 110]]
    assert peers.match_pairs(gt, pred, min_iou=0.0) == list(zip(gt, pred))
    assert peers.match_pairs(gt, pred) == []  # IoU 320 / 1920 and 160 / 960: both 1/6, below 0.3
    assert peers.match_pairs(gt, [[0, 0, 40, 30]]) == [(gt[0], [0, 0, 40, 30])]  # IoU 0.75; face 2: no box of IoU > 0
    cal = peers.fit_box_calibration(list(zip(gt, pred)))
    assert cal == {"width_scale": 1.25, "height_scale": 2.0, "dx": 0.0, "dy": 1.0, "pairs": 2}
    assert [peers.calibrate_box(p, cal) for p in pred] == gt
    assert peers.fit_box_calibration([]) is None


def test_mmod_applies_to_faces_only():
    assert bench_run.not_applicable("cmu_mit_faces", "dlib-mmod") is None
    for other in ("caltech101_subset", "pennfudan"):
        assert bench_run.not_applicable(other, "dlib-mmod").startswith("not applicable: a face detector")
    assert bench_run.not_applicable("caltech101_subset", "opencv").startswith("no OpenCV pretrained detector")
    assert bench_run.not_applicable("caltech101_subset", "dlib") is None


# ---------------------------------------------------------------- adding dlib-mmod to an earlier run's report
def _xywh(b):
    return [b[0], b[1], b[2] - b[0], b[3] - b[1]]


A, B = [10, 10, 50, 50], [20, 20, 60, 70]
CLASSIC = [{"image_id": "a", "category_id": "face", "bbox": _xywh(A), "score": 0.9},
           {"image_id": "b", "category_id": "face", "bbox": _xywh(B), "score": 0.8}]
MMOD_UP0 = [{"image_id": "a", "category_id": 1, "bbox": _xywh(A), "score": 0.9}]  # b's face missed
# b's face found with a box 0.8 times the ground truth's side, same centre: IoU 0.64
MMOD_UP1 = CLASSIC[:1] + [{"image_id": "b", "category_id": 1, "bbox": _xywh([24, 25, 56, 65]), "score": 0.5}]
CLASSIC_FIG = {"fit_seconds": 12.5, "predict_ms_per_image": 30.0, "peak_rss_mb": 55.2, "model_bytes": 2048,
               "settings": {"features": "fhog"}, "n_jobs": 2, "unreachable_boxes": 0,
               "mean_iou_before_refinement": 0.9}


def _mmod_fig(git):
    ref_metrics = {"map50": 1.0, "map": 1.0, "loc_accuracy": 1.0, "mean_iou": 1.0, "accuracy": 1.0, "corloc": 1.0,
                   "map75": 1.0}
    var = {"peak_rss_mb": 300.4, "cpu_over_wall": 1.01, "threads_in_process": 3, "load_average_at_start": [1.0, 1.0, 1.0],
           "load_average_at_end": [1.0, 1.0, 1.0]}
    return {"set": "faces", "method": "dlib-mmod", "test_images": 2, "fit_seconds": 0.0, "predict_ms_per_image": 1200.0,
            "peak_rss_mb": 300.4, "model_bytes": 729940,
            "settings": {"model": "mmod_human_face_detector.dat", "upsample_num_times": 0, "training_data": "dlib's",
                         "score": "confidence", "box": "l, t, r, b -> [l, t, r + 1, b + 1]"},
            "variants": [{"upsample": 0, "predict_ms_per_image": 1200.0, "detections": "faces_dlib-mmod_detections.json",
                          **var},
                         {"upsample": 1, "predict_ms_per_image": 4800.0,
                          "detections": "faces_dlib-mmod-up1_detections.json", **var, "peak_rss_mb": 900.0}],
            "reference": {"model": "faces_classic-fhog.npz", "model_bytes": 2048, "model_mtime": "then",
                          "predict_ms_per_image": 30.0, "peak_rss_mb": 60.0, "metrics": ref_metrics,
                          "load_average_at_start": [1.0, 1.0, 1.0]},
            "ms_ratio_to_reference": 40.0, "git_at_start": git, "git_at_end": git,
            "versions": {"dlib": "20.0.1", "face-recognition-models": "0.3.0"}, "machine": "test machine"}


@pytest.fixture
def earlier_run(tmp_path):
    """A face set and a work folder holding an earlier run of classic on it (run_meta.json included)."""
    root = tmp_path / "data" / "faces"
    (root / "JPEGImages").mkdir(parents=True)
    rng = np.random.default_rng(0)
    records = []
    for name, box in (("a", A), ("b", B)):
        path = root / "JPEGImages" / f"{name}.jpg"
        cv2.imwrite(str(path), rng.integers(0, 256, (80, 100, 3), dtype=np.uint8))
        records.append(ImageRecord(name, str(path), 100, 80, [box], [0]))
    write_voc(Dataset(records, ["face"]), root, split="test")
    work = tmp_path / "work"
    work.mkdir()
    (work / "faces_classic-fhog_detections.json").write_text(json.dumps(CLASSIC))
    (work / "faces_classic-fhog_figures.json").write_text(json.dumps(CLASSIC_FIG))
    (work / "faces_classic-fhog_run.json").write_text(json.dumps({"status": "ok", "reason": None,
                                                                  "command": "python benchmarks/run.py"}))
    (work / "run_meta.json").write_text(json.dumps({"command": "python benchmarks/run.py --the-full-run",
                                                    "sets": ["faces"], "methods": ["classic"], "wall_seconds": 60.0}))
    common = ["--data", str(tmp_path / "data"), "--work", str(work), "--out", str(tmp_path / "results"),
              "--md", str(tmp_path / "RESULTS.md"), "--quiet"]
    return tmp_path, work, common


def _rows(md, method):
    return [[c.strip() for c in ln.strip("|").split("|")] for ln in md.splitlines()
            if ln.startswith((f"| faces | {method} |", f"| {method} |"))]


def _row(md, method):
    rows = _rows(md, method)
    assert len(rows) == 1, rows
    return rows[0]


def test_a_dlib_mmod_run_adds_its_row_to_the_earlier_report(earlier_run, monkeypatch):
    tmp, work, common = earlier_run
    git = {"head": "abc1234", "changed_files": []}

    def fake_run_method(set_name, method, data_dir, work_dir, verbose=True):
        assert (set_name, method) == ("faces", "dlib-mmod")  # nothing else is run again
        (work / "faces_dlib-mmod_detections.json").write_text(json.dumps(MMOD_UP0))
        (work / "faces_dlib-mmod-up1_detections.json").write_text(json.dumps(MMOD_UP1))
        (work / "faces_dlib-mmod_figures.json").write_text(json.dumps(_mmod_fig(git)))

    monkeypatch.setattr(bench_run, "run_method", fake_run_method)
    assert bench_run.main(["--sets", "faces", "--methods", "dlib-mmod", *common]) == 0
    md = (tmp / "RESULTS.md").read_text()
    # the earlier run's classic row stays; the MMOD row is added, pretrained (fit 0)
    assert _row(md, "classic")[2:5] == ["1.000", "1.000", "1.000"]
    # MMOD at upsample 0 finds a's face exactly and misses b's: accuracy, mean IoU and loc_accuracy 1/2
    assert _row(md, "dlib-mmod") == ["faces", "dlib-mmod", "0.500", "0.500", "0.500", "0.505", "0.505",
                                     "0 (pretrained)", "1200.0", "300", "713 KiB"]
    assert md.index("| faces | classic |") < md.index("| faces | dlib-mmod |")
    assert "Command: `python benchmarks/run.py --the-full-run`" in md
    assert "Updated by `python benchmarks/run.py --sets faces --methods dlib-mmod" in md
    meta = json.loads((work / "run_meta.json").read_text())
    assert meta["command"] == "python benchmarks/run.py --the-full-run" and meta["methods"] == ["classic", "dlib-mmod"]
    assert [r["methods"] for r in meta["later_runs"]] == [["dlib-mmod"]]
    assert "at upsample 1: AP50 1.000" in md and "MMOD/classic 40.0x" in md

    # mmod.md/json: both upsample values, the classic reference and the ratios of medians (1200 / 30, 4800 / 30)
    mm = (tmp / "results" / "mmod.md").read_text()
    main_row, fit_row = _rows(mm, "classic-fhog")
    assert main_row[1:8] == ["-", "1.000", "1.000", "1.000", "1.000", "30.0", "1.00"]
    # box fit: shares of faces matched at IoU >= 0.5 / 0.3, median side ratio (up1: b's box is 0.8x: (1 + 0.8) / 2)
    assert fit_row == ["classic-fhog", "-", "1.000", "1.000", "1.00"]
    assert [r[2:] for r in _rows(mm, "dlib-mmod")[2:]] == [["0.500", "0.500", "1.00"], ["1.000", "1.000", "0.90"]]
    rows = json.loads((tmp / "results" / "mmod.json").read_text())["sets"]["faces"]["rows"]
    assert [(r["upsample"], r["ms_ratio_to_classic_fhog"], r["peak_rss_mb"]) for r in rows] == [
        (0, 40.0, 300.4), (1, 160.0, 900.0), (None, 1.0, 60.0)]
    assert [r["loc_accuracy"] for r in rows] == [0.5, 1.0, 1.0]
    assert rows[1]["mean_iou"] == pytest.approx((1 + 0.64) / 2) and rows[1]["box_fit"]["side_ratio_median"] == 0.9
    assert "- Code: commit abc1234, clean tree." in mm

    # the full report, rebuilt later, keeps both
    assert bench_run.main(["--report-only", "--sets", "faces", "--methods", "classic", "dlib-mmod", *common]) == 0
    assert _row((tmp / "RESULTS.md").read_text(), "dlib-mmod")[5] == "0.505"


def test_no_report_leaves_results_md_alone_and_flags_a_dirty_tree(earlier_run, monkeypatch):
    tmp, work, common = earlier_run
    (tmp / "RESULTS.md").write_text("the full report\n")

    def fake_run_method(set_name, method, data_dir, work_dir, verbose=True):
        (work / "faces_dlib-mmod_detections.json").write_text(json.dumps(MMOD_UP0))
        (work / "faces_dlib-mmod-up1_detections.json").write_text(json.dumps(MMOD_UP1))
        (work / "faces_dlib-mmod_figures.json").write_text(
            json.dumps(_mmod_fig({"head": "abc1234", "changed_files": ["classic_loc/scan.py"]})))

    monkeypatch.setattr(bench_run, "run_method", fake_run_method)
    assert bench_run.main(["--sets", "faces", "--methods", "dlib-mmod", "--no-report", *common]) == 0
    assert (tmp / "RESULTS.md").read_text() == "the full report\n"
    assert not (tmp / "results" / "benchmark.json").exists()
    mm = (tmp / "results" / "mmod.md").read_text()
    assert "NOT CLEAN (uncommitted changes: classic_loc/scan.py" in mm
    assert json.loads((tmp / "results" / "mmod.json").read_text())["sets"]["faces"]["clean"] is False


def test_a_run_covering_the_recorded_one_replaces_it(earlier_run, monkeypatch):
    _, work, common = earlier_run
    monkeypatch.setattr(bench_run, "run_method", lambda *a, **k: (_ for _ in ()).throw(bench_run.Skip("not here")))
    assert bench_run.main(["--sets", "faces", "--methods", "classic", "dlib-mmod", "--no-report", *common]) == 0
    meta = json.loads((work / "run_meta.json").read_text())
    assert "later_runs" not in meta and meta["methods"] == ["classic", "dlib-mmod"]
    assert meta["command"].endswith("--methods classic dlib-mmod --no-report " + " ".join(common))
