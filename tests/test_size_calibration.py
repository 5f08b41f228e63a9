"""Scores recalibrated with the window's size: the formula, the fit, the scan and the model file."""

import math

import numpy as np
import pytest

from classic_loc import Localizer, load_dataset
from classic_loc.scan import detect_image, recalibrate, rescore_by_size, size_features
from classic_loc.training.fit import SIZE_CALIBRATION_MIN, _size_calibration


def _slow(score, window, coef):
    """The documented formula for one detection, in plain floats."""
    x1, y1, x2, y2 = window
    side = math.sqrt((x2 - x1) * (y2 - y1))
    z = coef[0] * math.log(score / (1 - score)) + coef[1] * math.log(side) + coef[2]
    return 1 / (1 + math.exp(-z))


def test_rescore_matches_the_formula():
    rng = np.random.default_rng(0)
    scores = rng.uniform(0.02, 0.99, 50)
    x1, y1 = rng.uniform(0, 100, (2, 50))
    windows = np.stack([x1, y1, x1 + rng.uniform(5, 300, 50), y1 + rng.uniform(5, 300, 50)], axis=1)
    coef = (1.4, 1.2, -6.6)
    fast = rescore_by_size(scores, windows, coef)
    assert fast == pytest.approx([_slow(s, w, coef) for s, w in zip(scores, windows)], rel=1e-12)
    # features: the logit and the log side, as documented
    f = size_features([0.5, 0.8], [[0, 0, 16, 4], [0, 0, 10, 10]])
    assert f.ravel().tolist() == pytest.approx([0.0, math.log(8), math.log(4), math.log(10)])
    # the identity: alpha 1, no size term, no shift
    assert rescore_by_size(scores, windows, (1.0, 0.0, 0.0)) == pytest.approx(scores, rel=1e-12)


def test_recalibrate_sorts_and_keeps_every_detection():
    scores = np.array([0.9, 0.5, 0.5, 0.3])
    windows = np.array([[0, 0, 10, 10], [0, 0, 100, 100], [0, 0, 100, 100], [0, 0, 200, 200]], float)
    order, new = recalibrate(scores, windows, (1.0, 1.0, -math.log(100)))
    # sigmoid(logit(p) + log(side / 100)): odds times side / 100, so 0.9 at 10 px -> odds 0.9 (0.47),
    # 0.5 at 100 px stays 0.5, 0.3 at 200 px -> odds 6/7 (0.46)
    assert order.tolist() == [1, 2, 0, 3]  # the tie keeps its order
    assert new.tolist() == pytest.approx(np.sort(new)[::-1].tolist())
    assert new[order.tolist().index(0)] == pytest.approx(_slow(0.9, windows[0], (1.0, 1.0, -math.log(100))))
    assert len(order) == 4  # none dropped: the tail of the ranking counts in AP


def _dets(sides, hit, scores=None):
    """Detections on one wide image, none overlapping another, and boxes where ``hit`` is true."""
    boxes = np.array([[300 * i, 0, 300 * i + s, s] for i, s in enumerate(sides)], float)
    labels = np.zeros(len(sides), np.int64)
    scores = np.full(len(sides), 0.5) if scores is None else np.asarray(scores, float)

    class Rec:
        pass

    rec = Rec()
    rec.boxes = boxes[np.asarray(hit, bool)]
    rec.labels = np.zeros(len(rec.boxes), np.int64)
    return (boxes, labels, scores, boxes.copy()), rec


def test_the_fit_learns_that_large_windows_are_more_often_right():
    rng = np.random.default_rng(1)
    sides = rng.uniform(10, 300, 600)
    scores = rng.uniform(0.05, 0.95, 600)
    # the truth: odds = score odds x (side / 60)^2
    truth = 1 / (1 + np.exp(-(np.log(scores / (1 - scores)) + 2 * np.log(sides / 60))))
    det, rec = _dets(sides, rng.uniform(size=600) < truth, scores)
    coef, log = _size_calibration([det], [rec])
    assert log["detections"] == 600 and log["hits"] == len(rec.boxes) and log["coef"] == list(coef)
    assert coef[0] == pytest.approx(1, abs=0.35) and coef[1] == pytest.approx(2, abs=0.5)
    small, large = rescore_by_size([0.5, 0.5], [[0, 0, 20, 20], [0, 0, 200, 200]], coef)
    assert small < 0.3 < 0.7 < large


def test_too_few_hits_or_misses_leave_the_scores_alone():
    sides = list(range(10, 210, 2))
    few = [i < SIZE_CALIBRATION_MIN - 1 for i in range(len(sides))]
    det, rec = _dets(sides, few, np.linspace(0.1, 0.9, len(sides)))
    coef, log = _size_calibration([det], [rec])
    assert coef is None and log["hits"] == SIZE_CALIBRATION_MIN - 1 and log["coef"] is None
    assert _size_calibration([], []) == (None, {"detections": 0, "hits": 0, "coef": None})


@pytest.fixture(scope="module")
def fitted_pair(voc):
    train = load_dataset(voc, split="train")
    quick = dict(mining_rounds=0, n_random_negatives=300, calibration_fraction=0.0, main_first=False)
    on = Localizer(**quick).fit(train)
    off = Localizer(size_calibration=False, **quick).fit(train)
    return on, off, load_dataset(voc, split="test")


def test_a_fitted_model_rescores_its_detections(fitted_pair):
    on, off, test = fitted_pair
    assert off.size_calibration_ is None and off.fit_report_["size_calibration"] is None
    assert on.size_calibration_ is not None and on.size_calibration_[0] > 0
    assert on.fit_report_["size_calibration"]["coef"] == list(on.size_calibration_)
    # the same templates: only the scores and their order differ
    for a, b in zip(on.templates_, off.templates_):
        assert np.array_equal(a.weights, b.weights)
    image = test.image(0)
    s = off._prediction_settings()
    raw = detect_image(image, off.templates_, off.feature_params_, s["scale_step"], s["upsample"], s["min_score"],
                       s["nms_iou"], s["max_detections"], s["refine"], None, off.nms_cover_)
    d_off, d_on = off.detect(image), on.detect(image)
    assert np.array_equal(d_off.boxes, raw[0]) and np.array_equal(d_off.scores, raw[2])
    order, expected = recalibrate(raw[2], raw[3], on.size_calibration_)
    assert np.array_equal(d_on.boxes, raw[0][order]) and d_on.scores == pytest.approx(expected, rel=1e-12)


def test_saved_and_loaded_it_predicts_the_same(fitted_pair, tmp_path):
    on, _, test = fitted_pair
    on.save(tmp_path / "m.npz")
    again = Localizer.load(tmp_path / "m.npz")
    assert again.size_calibration_ == on.size_calibration_
    for i in range(3):
        a, b = on.detect(test.image(i)), again.detect(test.image(i))
        assert np.array_equal(a.boxes, b.boxes) and np.array_equal(a.scores, b.scores)


def test_model_files_from_before_it_load_without_it(fitted_pair, tmp_path, older_model_file):
    on, _, test = fitted_pair
    on.save(tmp_path / "m.npz")
    older_model_file(tmp_path / "m.npz", tmp_path / "old.npz", ["size_calibration"], ["size_calibration"])
    old = Localizer.load(tmp_path / "old.npz")
    assert old.size_calibration_ is None and old.size_calibration is False
    d = old.detect(test.image(0))
    assert np.all(np.diff(d.scores) <= 0)


def test_predict_reports_what_detect_reports(fitted_pair, tmp_path):
    """The command line's default output is the model's own detections, so `predict` then `evaluate` gives the
    fit's figures: recalibrated scores below min_score are not dropped a second time."""
    from classic_loc.workflow import predict_files

    on, _, test = fitted_pair
    paths = [r.path for r in test][:4]
    results = predict_files(on, paths)
    detections = [on.detect(p) for p in paths]
    assert len(results) == sum(len(d) for d in detections)
    assert any(s < on.min_score for d in detections for s in d.scores)  # the case that matters is here
    assert sorted(r["score"] for r in results) == pytest.approx(sorted(float(s) for d in detections for s in d.scores))
    assert len(predict_files(on, paths, threshold=on.min_score)) < len(results)
