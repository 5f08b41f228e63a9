"""benchmarks/speed.py's pure helpers: the "before" scoring path, peer ratios on the same input, dirty-tree marks.

The speed targets themselves live in the benchmark (benchmarks/results/speed.md), never here.
"""

import os
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCH))
_threads = {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
import speed  # noqa: E402

import classic_loc.scan  # noqa: E402
from classic_loc import Localizer, load_dataset  # noqa: E402


def test_import_leaves_thread_settings_alone():
    assert {k: os.environ.get(k) for k in _threads} == _threads


def test_one_template_scoring_is_the_reference_path_and_gives_the_same_detections(trained, voc, monkeypatch):
    model = Localizer.load(trained)
    image = load_dataset(voc, split="test").image(0)
    calls = []
    real = classic_loc.scan.score_windows
    monkeypatch.setattr(classic_loc.scan, "score_windows", lambda *a, **k: calls.append(1) or real(*a, **k))
    stacked = speed.Variant(model).detect(image)
    assert calls == []  # the default path scores all templates of a level in one product
    scorer = classic_loc.scan.window_scorer
    before = speed.Variant(model, one_template=True).detect(image)
    assert len(calls) > 0  # ... the reference path once per template and level
    assert classic_loc.scan.window_scorer is scorer  # restored
    assert len(before.scores) == len(stacked.scores) > 0
    np.testing.assert_allclose(before.scores, stacked.scores, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(before.boxes, stacked.boxes, atol=1e-3)


def test_one_template_scoring_restores_the_scorer_after_an_error():
    scorer = classic_loc.scan.window_scorer
    with pytest.raises(RuntimeError), speed.one_template_scoring():
        assert classic_loc.scan.window_scorer(None, None) is None
        raise RuntimeError("boom")
    assert classic_loc.scan.window_scorer is scorer


def test_peer_ratios_compare_on_the_same_size_and_input_only():
    rows = [{"method": "dlib-frontal-face", "size": "640x480", "input": "colour", "median_ms": 20.0},
            {"method": "dlib-frontal-face", "size": "640x480", "input": "grey", "median_ms": 10.0},
            {"method": "face-fhog-80px-1.2", "size": "640x480", "input": "colour", "median_ms": 8.0},
            {"method": "face-fhog-80px-1.2", "size": "640x480", "input": "grey", "median_ms": 7.0},
            {"method": "face-fhog-80px-1.2", "size": "320x240", "input": "grey", "median_ms": 2.0},
            {"method": "opencv-hog-people", "size": "640x480", "input": "colour", "median_ms": 50.0},
            {"method": "people-fhog-64x128-1.05", "size": "640x480", "input": "colour", "median_ms": 40.0},
            {"method": "people-fhog-64x128-1.05", "size": "640x480", "input": "grey", "median_ms": 35.0}]
    out = {(r["method"], r["size"], r["input"]): r for r in speed.peer_ratios(rows)}
    assert out[("face-fhog-80px-1.2", "640x480", "colour")]["ratio_to_peer"] == pytest.approx(0.4)
    assert out[("face-fhog-80px-1.2", "640x480", "grey")]["ratio_to_peer"] == pytest.approx(0.7)
    assert out[("face-fhog-80px-1.2", "320x240", "grey")]["ratio_to_peer"] is None  # no dlib row at that size
    assert out[("people-fhog-64x128-1.05", "640x480", "colour")]["peer"] == "opencv-hog-people"
    assert out[("people-fhog-64x128-1.05", "640x480", "colour")]["ratio_to_peer"] == pytest.approx(0.8)
    assert out[("people-fhog-64x128-1.05", "640x480", "grey")]["ratio_to_peer"] is None  # OpenCV's HOG: colour
    assert "ratio_to_peer" not in out[("dlib-frontal-face", "640x480", "grey")]


def test_tree_state_marks_dirty_package_or_benchmark_code_only():
    assert speed.tree_state(None) is None
    assert speed.tree_note(None) == "commit unknown (no git)"
    clean = speed.tree_state({"head": "abc1234", "changed_files": []})
    assert clean["clean"] and clean["clean_for_this_script"]
    assert speed.tree_note(clean) == "commit abc1234, clean tree"
    other = speed.tree_state({"head": "abc1234", "changed_files": ["benchmarks/fit.py"]})
    assert not other["clean"] and other["clean_for_this_script"]
    assert "DIRTY" not in speed.tree_note(other) and "benchmarks/fit.py" in speed.tree_note(other)
    dirty = speed.tree_state({"head": "abc1234", "changed_files": ["benchmarks/fit.py", "classic_loc/scan.py",
                                                                   "benchmarks/speed.py"]})
    assert dirty["run_changes"] == ["classic_loc/scan.py", "benchmarks/speed.py"]
    assert dirty["other_changes"] == ["benchmarks/fit.py"]
    note = speed.tree_note(dirty)
    assert note.startswith("**DIRTY TREE") and "classic_loc/scan.py" in note and "abc1234" in note
    dirty["changed_during_run"] = True
    assert "changed during the run" in speed.tree_note(dirty)


def test_report_marks_a_dirty_part():
    tree = speed.tree_state({"head": "abc1234", "changed_files": ["classic_loc/scan.py"]})
    rows = speed.peer_ratios([{"method": "dlib-frontal-face", "size": "320x240", "input": "grey", "median_ms": 4.0},
                              {"method": "face-fhog-80px-1.2", "size": "320x240", "input": "grey", "median_ms": 1.0}])
    out = {"sizes": {"image": "x.png", "repeats": 3, "rows": rows, "meta": {"tree": tree, "load_start": [1, 1, 1],
                                                                          "load_end": [2, 1, 1]}}}
    text = speed.report(out)
    assert "Measured at **DIRTY TREE" in text
    assert "| face-fhog-80px-1.2 | grey | 1.0 | 0.25 | dlib-frontal-face |" in text
    assert "[1, 1, 1] at the start, [2, 1, 1] at the end" in text
