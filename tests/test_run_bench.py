"""benchmarks/run.py (the comparison benchmark's driver and report) and benchmarks/classic.py (its classic_loc runner).

The report tests use a hand-made 3-image data set and hand-made runner outputs, so they need no
shared data and run no method; the classic runner is checked on a small demo subset.
"""

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import classic_loc._demo as demo
from classic_loc import Localizer, load_dataset
from classic_loc.datasets import Dataset, ImageRecord, write_voc
from classic_loc.evaluation import evaluate

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCH))
import classic  # noqa: E402
import run as bench_run  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------- a hand-made set and runner outputs
def _toy_set(root):
    """3 test images, classes cat and dog; image c has a cat and a dog of equal area (main: the cat, first)."""
    rng = np.random.default_rng(0)
    (root / "JPEGImages").mkdir(parents=True)
    records = []
    for name, boxes, labels in (("a", [[10, 10, 50, 50]], [0]), ("b", [[20, 20, 60, 70]], [1]),
                                ("c", [[0, 0, 40, 40], [50, 30, 90, 70]], [0, 1])):
        path = root / "JPEGImages" / f"{name}.jpg"
        cv2.imwrite(str(path), rng.integers(0, 256, (80, 100, 3), dtype=np.uint8))
        records.append(ImageRecord(name, str(path), 100, 80, boxes, labels))
    write_voc(Dataset(records, ["cat", "dog"]), root, split="test")
    return load_dataset(root, split="test")


def _xywh(box):
    return [box[0], box[1], box[2] - box[0], box[3] - box[1]]


# classic: every box exact with its class; dlib: a at IoU 0.5, b exact box but class cat, c nothing
CLASSIC_DETS = [{"image_id": "a", "category_id": "cat", "bbox": _xywh([10, 10, 50, 50]), "score": 0.9},
                {"image_id": "b", "category_id": "dog", "bbox": _xywh([20, 20, 60, 70]), "score": 0.8},
                {"image_id": "c", "category_id": "cat", "bbox": _xywh([0, 0, 40, 40]), "score": 0.7},
                {"image_id": "c", "category_id": "dog", "bbox": _xywh([50, 30, 90, 70]), "score": 0.6}]
DLIB_DETS = [{"image_id": "a", "category_id": 1, "bbox": _xywh([10, 10, 50, 30]), "score": 0.5},
             {"image_id": "b", "category_id": 1, "bbox": _xywh([20, 20, 60, 70]), "score": 0.4}]
CLASSIC_FIG = {"fit_seconds": 12.5, "predict_ms_per_image": 3.31, "peak_rss_mb": 55.2, "model_bytes": 2048,
               "settings": {"features": "fhog", "random_state": 0, "n_jobs": 2}, "n_jobs": 2,
               "unreachable_boxes": 0, "mean_iou_before_refinement": 0.9}
DLIB_FIG = {"fit_seconds": 40.0, "predict_ms_per_image": 7.5, "peak_rss_mb": 60.4, "model_bytes": 3 * 1024 * 1024,
            "settings": {"upsample": 2, "C": 5.0, "epsilon": 0.01, "detection_window_size": 6400,
                         "add_left_right_image_flips": True, "negatives": "all images", "num_threads": 2,
                         "adjust_threshold": -1.0},
            "training_boxes": [{"class": "cat", "window": [80, 80], "ignored_unreachable": 1}]}
OPENCV_SKIP = "no OpenCV pretrained detector for this set's classes (hand-made reason)"


def _write(path, obj):
    path.write_text(json.dumps(obj))


def _toy_work(work):
    work.mkdir(parents=True, exist_ok=True)
    _write(work / "toy_classic-fhog_detections.json", CLASSIC_DETS)
    _write(work / "toy_classic-fhog_figures.json", CLASSIC_FIG)
    _write(work / "toy_dlib_detections.json", DLIB_DETS)
    _write(work / "toy_dlib_figures.json", DLIB_FIG)
    _write(work / "toy_opencv_run.json", {"set": "toy", "method": "opencv", "status": "skipped",
                                          "reason": OPENCV_SKIP})


@pytest.fixture
def toy(tmp_path):
    data = tmp_path / "data"
    test = _toy_set(data / "toy")
    work = tmp_path / "work"
    _toy_work(work)
    args = ["--sets", "toy", "--methods", "opencv", "dlib", "classic", "--data", str(data), "--work", str(work),
            "--out", str(tmp_path / "results"), "--md", str(tmp_path / "RESULTS.md"), "--quiet"]
    return test, tmp_path, args


def _row(md, set_name, method):
    rows = [ln for ln in md.splitlines() if ln.startswith(f"| {set_name} | {method} |")]
    assert len(rows) == 1, rows
    return [c.strip() for c in rows[0].strip("|").split("|")]


def _without_machine_line(md):
    return "\n".join(ln for ln in md.splitlines() if not ln.startswith("Machine: "))  # load average changes


def test_report_only_table_json_and_plots(toy):
    pytest.importorskip("matplotlib", reason="the plots need matplotlib: pip install matplotlib")
    test, tmp, args = toy
    assert bench_run.main(["--report-only", *args]) == 0
    md = (tmp / "RESULTS.md").read_text()

    # hand-computed: classic is perfect; dlib gets a (IoU 0.5, a hit), b (IoU 1, wrong class), c (no prediction)
    assert _row(md, "toy", "classic") == ["toy", "classic", "1.000", "1.000", "1.000", "1.000", "1.000", "12", "3.3",
                                          "55", "2 KiB"]
    dlib_m = evaluate(test, DLIB_DETS)
    assert (dlib_m["accuracy"], dlib_m["mean_iou"], dlib_m["loc_accuracy"]) == (1 / 3, 0.5, 1 / 3)
    assert _row(md, "toy", "dlib") == ["toy", "dlib", "0.333", "0.500", "0.333", f"{dlib_m['map50']:.3f}",
                                       f"{dlib_m['map']:.3f}", "40", "7.5", "60", "3.0 MiB"]
    skipped = _row(md, "toy", "opencv")
    assert skipped[2] == f"skipped: {OPENCV_SKIP}" and all(c == "" for c in skipped[3:])
    # table rows in the benchmark's method order, whatever the command line's
    assert md.index("| toy | classic |") < md.index("| toy | dlib |") < md.index("| toy | opencv |")
    assert "upsample 2x" in md and "`Localizer(features='fhog', random_state=0, n_jobs=2)`" in md
    assert "Machine: " in md and " cores" in md

    bench = json.loads((tmp / "results" / "benchmark.json").read_text())
    toy_b = bench["sets"]["toy"]
    assert toy_b["test_images"] == 3 and toy_b["classes"] == ["cat", "dog"]
    assert toy_b["image_size"]["median"] == [100, 80]
    dl = toy_b["methods"]["dlib"]
    assert dl["status"] == "ok" and dl["figures"]["fit_seconds"] == 40.0
    assert dl["metrics"]["map50"] == dlib_m["map50"] and dl["metrics"]["accuracy"] == dlib_m["accuracy"]
    assert dl["curves"]["main_iou"] == [0.5, 1.0, 0.0]
    assert len(dl["curves"]["recall"]) == 101 and set(dl["curves"]["precision50"]) == {"cat", "dog"}
    cl = toy_b["methods"]["classic"]["curves"]
    assert cl["precision50_mean"] == [1.0] * 101  # every box found at precision 1
    assert toy_b["methods"]["opencv"] == {"status": "skipped", "reason": OPENCV_SKIP, "run": {
        "set": "toy", "method": "opencv", "status": "skipped", "reason": OPENCV_SKIP}}

    # every plot: a PNG under 300 KB, linked from RESULTS.md by a path relative to it
    plots = sorted((tmp / "results" / "plots").iterdir())
    assert [p.name for p in plots] == ["toy_examples.png", "toy_iou.png", "toy_pr.png", "toy_summary.png"]
    for p in plots:
        data = p.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) < 300_000, p
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert sorted(links) == sorted(f"results/plots/{p.name}" for p in plots)
    assert all((tmp / link).is_file() for link in links)

    # deterministic: a second rebuild writes the same bytes
    before = {p.name: p.read_bytes() for p in plots}
    assert bench_run.main(["--report-only", *args]) == 0
    assert {p.name: p.read_bytes() for p in sorted((tmp / "results" / "plots").iterdir())} == before
    assert _without_machine_line((tmp / "RESULTS.md").read_text()) == _without_machine_line(md)


def test_run_records_skips_failures_and_removes_stale_results(toy, monkeypatch):
    _, tmp, args = toy
    work = tmp / "work"

    def fake_run_method(set_name, method, data_dir, work_dir, verbose=True):
        assert set_name == "toy" and os.path.samefile(work_dir, work)
        if method == "classic":
            _toy_work(work)  # the runner writes its files (and, here, the others' too)
            return CLASSIC_FIG
        if method == "opencv":
            raise bench_run.Skip("does not apply (test)")
        raise RuntimeError("dlib exploded (test)")

    monkeypatch.setattr(bench_run, "run_method", fake_run_method)
    assert bench_run.main(args) == 1  # a failed method: exit status 1, the run goes on
    md = (tmp / "RESULTS.md").read_text()
    assert _row(md, "toy", "classic")[2:5] == ["1.000", "1.000", "1.000"]
    # dlib's files from before its failed run (rewritten by the fake classic runner) are not reported
    assert _row(md, "toy", "dlib")[2] == "failed: RuntimeError: dlib exploded (test)"
    assert not (work / "toy_dlib_figures.json").exists()
    assert _row(md, "toy", "opencv")[2] == "skipped: does not apply (test)"
    records = {m: json.loads((work / f"toy_{t}_run.json").read_text())
               for m, t in (("classic", "classic-fhog"), ("dlib", "dlib"), ("opencv", "opencv"))}
    assert [records[m]["status"] for m in ("classic", "dlib", "opencv")] == ["ok", "failed", "skipped"]
    assert all(r["wall_seconds"] >= 0 and "benchmarks/run.py" in r["command"] for r in records.values())
    meta = json.loads((work / "run_meta.json").read_text())
    assert meta["wall_seconds"] >= 0 and meta["methods"] == ["classic", "dlib", "opencv"]
    assert f"Total wall time: {meta['wall_seconds'] / 60:.1f} min" in md
    # report-only keeps the recorded statuses and the run's command
    assert bench_run.main(["--report-only", *args]) == 0
    md2 = (tmp / "RESULTS.md").read_text()
    assert _row(md2, "toy", "dlib")[2].startswith("failed: ") and meta["command"] in md2


def test_stale_files_are_removed_before_a_method_runs(toy, monkeypatch):
    _, tmp, args = toy
    work = tmp / "work"
    assert (work / "toy_dlib_figures.json").exists()

    def skip_all(*a, **k):
        raise bench_run.Skip("not here")

    monkeypatch.setattr(bench_run, "run_method", skip_all)
    assert bench_run.main(args) == 0
    assert not (work / "toy_dlib_figures.json").exists() and not (work / "toy_classic-fhog_detections.json").exists()
    assert not (tmp / "results" / "plots").exists()  # nothing to plot
    assert _row((tmp / "RESULTS.md").read_text(), "toy", "classic")[2] == "skipped: not here"


def test_cli_help_lists_options():
    out = subprocess.run([sys.executable, str(BENCH / "run.py"), "--help"], capture_output=True, text=True,
                         check=False)
    assert out.returncode == 0
    for opt in ("--sets", "--methods", "--data", "--out", "--work", "--md", "--report-only", "--quiet"):
        assert opt in out.stdout
    for method in bench_run.METHODS:
        assert method in out.stdout


def test_opencv_skipped_on_caltech_end_to_end(shared_data, tmp_path):
    args = ["--sets", "caltech101_subset", "--methods", "opencv", "--data", str(shared_data),
            "--work", str(tmp_path / "work"), "--out", str(tmp_path / "results"), "--md", str(tmp_path / "R.md"),
            "--quiet"]
    assert bench_run.main(args) == 0
    row = _row((tmp_path / "R.md").read_text(), "caltech101_subset", "opencv")
    assert row[2].startswith("skipped: no OpenCV pretrained detector for this set's classes")
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == ["caltech101_subset_opencv_run.json",
                                                                      "run_meta.json"]


# ---------------------------------------------------------------- benchmarks/classic.py
def test_classic_runner_detections_score_like_localizer_score(tmp_path):
    root = tmp_path / "data" / "demo"
    demo.generate(root, n_images=30, seed=1)
    out = tmp_path / "out"
    fig = classic.run("demo", "fhog", tmp_path / "data", out, seed=0, n_jobs=1, verbose=False,
                      params={"mining_rounds": 1, "n_random_negatives": 1000})
    paths = classic.output_paths(out, "demo", "fhog")
    assert sorted(p.name for p in out.iterdir()) == sorted(os.path.basename(p) for p in paths.values())
    assert json.loads(Path(paths["figures"]).read_text()) == json.loads(json.dumps(fig))
    assert fig["method"] == "classic-fhog" and fig["model_bytes"] == os.path.getsize(paths["model"])
    assert fig["fit_seconds"] > 0 and fig["predict_ms_per_image"] > 0 and fig["loaded_model_matches_fitted"]
    if sys.platform.startswith("linux"):
        assert 10 < fig["peak_rss_mb"] < 2000

    test = load_dataset(root, split="test")
    results = json.loads(Path(paths["detections"]).read_text())
    assert results and {r["image_id"] for r in results} <= {r.image_id for r in test}
    assert {r["category_id"] for r in results} <= set(test.classes)
    from_file = evaluate(test, paths["detections"])
    direct = Localizer.load(paths["model"]).score(test)
    assert from_file["n_predictions"] == direct["n_predictions"] == len(results)
    assert from_file["confusion"] == direct["confusion"]
    for k in ("accuracy", "loc_accuracy", "corloc", "mean_iou", "map50", "map", "presence_accuracy"):
        # the file's boxes are rounded to 0.01 px by Detections.to_coco
        assert math.isclose(from_file[k], direct[k], abs_tol=1e-3), k
    assert fig["metrics"]["map50"] == from_file["map50"] and fig["metrics"]["accuracy"] == from_file["accuracy"]
