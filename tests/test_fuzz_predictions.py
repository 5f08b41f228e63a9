"""Every fuzzed predictions input gives a result or a one-line DataError, never another exception.

The strategies are in tests/fuzz_predictions.py (benchmarks/fuzz.py runs 10,000 examples of each).
"""

import json
import math
import re
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from classic_loc.errors import DataError
from classic_loc.evaluation import evaluate

from fuzz_predictions import GT, TARGETS, _to_text, run_json, run_mapping

SETTINGS = settings(max_examples=250, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def _outcome(run, example):
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            run(example, Path(folder))
        except DataError as err:  # a refusal: one line, naming something
            assert "\n" not in str(err) and str(err).strip()
            return "refused"
    return "valid"


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_fuzzed_predictions_give_a_result_or_a_data_error(name):
    strategy, run = TARGETS[name]

    @SETTINGS
    @given(strategy)
    def check(example):
        _outcome(run, example)

    check()


def test_the_strategies_produce_both_valid_and_refused_inputs():
    """Without valid examples the fuzzers would only test the refusals."""
    for name, (strategy, run) in TARGETS.items():
        seen = set()

        @settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
        @given(strategy)
        def collect(example):
            seen.add(_outcome(run, example))

        collect()
        assert seen == {"valid", "refused"}, name


@pytest.mark.parametrize("depth", [100, 5000, 100000])
def test_deep_nesting_in_a_predictions_file_is_refused(tmp_path, depth):
    text = _to_text([{"image_id": "000007", "category_id": 1, "bbox": "__DEEP__", "score": 0.5}], depth)
    with pytest.raises(DataError, match=r"predictions.json: .*(nested|bbox)"):
        run_json(("voc", 0.5, text.encode()), tmp_path)


@pytest.mark.parametrize("entry, problem", [
    ({"image_id": {"a": 1}}, "{'a': 1} is a dict"),
    ({"image_id": [7]}, r"\[7\] is a list"),
    ({"image_id": 7.0}, "7.0 is a floating-point number"),
    ({"image_id": True}, "True is a boolean"),
    ({"image_id": 10 ** 400}, "<an integer of about 401 digits> is not in the ground truth"),
    ({"category_id": 1.0}, "unknown category_id 1.0"), ({"category_id": None}, "unknown category_id None"),
    ({"category_id": True}, "unknown category_id True"), ({"category_id": [1]}, r"unknown category_id \[1\]"),
    ({"category_id": {"id": 1}}, r"unknown category_id \{'id': 1\}"), ({"category_id": 10 ** 400}, "unknown category_id <an"),
    ({"bbox": "1 2 3 4"}, "bbox '1 2 3 4' is not 4 numbers"), ({"bbox": [[1, 2, 3, 4]]}, "is not 4 numbers"),
    ({"bbox": [1, 2, 3, True]}, "is not 4 numbers"), ({"bbox": [1, 2, "3", 4]}, "is not 4 numbers"),
    ({"bbox": [1, 2, -3, 4]}, r"box \[1, 2, -2, 6\] is not finite or has width or height <= 0"),
    ({"bbox": [1, 2, 0, 4]}, "width or height <= 0"), ({"bbox": [1, 2, 1e-300, 4]}, "width or height <= 0"),
    ({"bbox": [1, 2, 10 ** 400, 4]}, r"box \[1, 2, inf, 6\] is not finite"),
    ({"bbox": [0, 0, 1e300, 1e300]}, "too large"), ({"bbox": [float("nan"), 2, 3, 4]}, "is not finite"),
    ({"score": True}, "score True is not a finite number"), ({"score": float("nan")}, "score nan is not"),
    ({"score": "0.9"}, "score '0.9' is not"), ({"score": 10 ** 400}, "score <an integer of about 401 digits> is not"),
    ({"score": None}, "score None is not"), ({"score": [0.5]}, r"score \[0.5\] is not"),
])
def test_each_malformed_field_is_a_one_line_error(entry, problem):
    good = {"image_id": "000007", "category_id": 1, "bbox": [10, 10, 40, 50], "score": 0.9}
    with pytest.raises(DataError, match=r"^predictions: \[1\]: .*" + problem) as info:
        evaluate(GT["voc"], [good, dict(good, **entry)])
    assert "\n" not in str(info.value) and len(str(info.value)) < 400


@pytest.mark.parametrize("entry, problem", [
    ({"boxes": "0 0 5 5"}, "boxes '0 0 5 5' is not an array of numbers"),
    ({"boxes": np.array([["0", "0", "5", "5"]])}, "is not an array of numbers"),
    ({"boxes": np.array([[0, 0, 5, 5]], dtype=object).astype(object)}, None),  # object array of numbers: fine
    ({"boxes": np.array([[0, 0, "5", 5]], dtype=object)}, "is not an array of numbers"),
    ({"boxes": np.array([[True, True, True, True]])}, "is not an array of numbers"),
    ({"boxes": np.ones((1, 5))}, "boxes have shape (1, 5), not (N, 4)"),
    ({"boxes": np.ones((1, 1, 4))}, "boxes have shape (1, 1, 4)"),
    ({"boxes": [[0, 0, 5, 5], [0, 0, 5]]}, "is not an array of numbers"),  # ragged
    ({"boxes": np.array([[0, 0, 5, 5]], dtype=complex)}, "is not an array of numbers"),
    ({"labels": np.array([0.0])}, "label 0.0 is not a class index in [0, 2)"),
    ({"labels": [True]}, "label True is not a class index"), ({"labels": [2]}, "label 2 is not a class index"),
    ({"labels": np.array(["bird"])}, "unknown class 'bird'"), ({"labels": [[0]]}, "must be flat lists or 1-D"),
    ({"labels": [0, 1]}, "1 boxes, 2 labels and 1 scores"), ({"scores": "high"}, "scores 'high' is not an array"),
    ({"scores": [float("inf")]}, "score is not finite"), ({"scores": [[0.5]]}, "must be flat lists or 1-D"),
    ({"scores": [True]}, "scores [True] is not an array of numbers"),
])
def test_each_malformed_mapping_value_is_a_one_line_error(entry, problem):
    good = {"boxes": [[0, 0, 5, 5]], "labels": [0], "scores": [0.5]}
    mapping = {"000007": dict(good, **entry)}
    if problem is None:
        assert evaluate(GT["voc"], mapping)["n_predictions"] == 1
        return
    with pytest.raises(DataError, match=r"^predictions: image '000007'(| box 0): .*" + re.escape(problem)):
        evaluate(GT["voc"], mapping)


def test_detections_like_objects_and_missing_attributes():
    class Det:
        boxes = np.array([[10.0, 10, 50, 60]])
        labels = np.array([0])
        scores = np.array([0.8], dtype=np.float32)

    r = evaluate(GT["voc"], {"000007": Det()})
    assert r["n_predictions"] == 1 and math.isfinite(r["map50"])

    class NoScores:
        boxes, labels = Det.boxes, Det.labels

    with pytest.raises(DataError, match=r"^predictions: image 'cat_img': the predictions of an image \(NoScores\) "
                                        r"have no 'scores'; give"):
        evaluate(GT["voc"], {"cat_img": NoScores()})
    with pytest.raises(DataError, match=r"the predictions of an image \(dict\) have no 'labels'"):
        evaluate(GT["voc"], {"cat_img": {"boxes": [], "scores": []}})
    with pytest.raises(DataError, match=r"^predictions: predictions of type int are not a file, a list or a mapping"):
        evaluate(GT["voc"], 5)
    with pytest.raises(DataError, match=r"^predictions: \[0\]: a result needs image_id"):
        evaluate(GT["voc"], (x for x in [7]))


def test_a_valid_fuzz_example_scores_as_by_hand(tmp_path):
    # the ground truth of the fuzz targets: perfect predictions on it score 1.0 through both targets
    preds = [{"image_id": 7, "category_id": 1, "bbox": [10, 10, 40, 50], "score": 0.9},
             {"image_id": "000007.jpg", "category_id": "cat", "bbox": [60, 20, 30, 20], "score": 0.8},
             {"image_id": "run/a/cat_img.jpg", "category_id": 2, "bbox": [5, 5, 25, 25], "score": 0.7}]
    run_json(("voc", 0.5, json.dumps(preds).encode()), tmp_path)
    assert evaluate(GT["voc"], str(tmp_path / "predictions.json"))["map50"] == pytest.approx(1.0, abs=1e-9)
    coco = [dict(p, image_id=i) for p, i in zip(preds, (101, 101, 111))]
    coco = [dict(p, category_id={1: 3, "cat": 3, 2: 8}[p["category_id"]]) for p in coco]
    assert evaluate(GT["coco"], coco)["map50"] == pytest.approx(1.0, abs=1e-9)
    run_mapping(("coco", 1, {121: {"boxes": [], "labels": [], "scores": []}}), tmp_path)
