"""The main object's detection first: the rule, its choice on held-out images, the scan and the model file."""

import numpy as np
import pytest

from classic_loc import Localizer, box_area, box_iou, load_dataset
from classic_loc.scan import detect_image, main_first
from classic_loc.training.fit import MAIN_RATIOS, _main_ratio


def _slow_main(boxes, scores, ratio):
    """The documented rule, one detection at a time: the largest box scoring >= ratio * top (best scored on ties)."""
    best = 0
    for i in range(len(scores)):
        area = (boxes[i][2] - boxes[i][0]) * (boxes[i][3] - boxes[i][1])
        best_area = (boxes[best][2] - boxes[best][0]) * (boxes[best][3] - boxes[best][1])
        if scores[i] >= ratio * scores[0] and area > best_area:
            best = i
    return best


def test_main_first_by_hand():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 20, 20], [0, 0, 30, 30], [0, 0, 50, 50]], float)  # areas 100 .. 2500
    scores = np.array([0.8, 0.7, 0.4, 0.39])
    # 0.4 is exactly half the top: in at ratio 0.5 (>=); 0.39 is not
    assert main_first(boxes, scores, 0.5).tolist() == [2, 1, 0, 3]
    assert main_first(boxes, scores, 0.8).tolist() == [1, 0, 2, 3]  # 0.7 >= 0.64
    assert main_first(boxes, scores, 0.9).tolist() == [0, 1, 2, 3]  # 0.7 < 0.72: the top stays
    assert main_first(boxes, scores, None).tolist() == [0, 1, 2, 3]
    assert main_first(boxes[:1], scores[:1], 0.5).tolist() == [0]
    assert main_first(boxes[:0], scores[:0], 0.5).tolist() == []
    # equal areas: the best scored of them
    same = np.array([[0, 0, 10, 10], [0, 0, 20, 20], [50, 50, 70, 70]], float)
    assert main_first(same, np.array([0.9, 0.8, 0.7]), 0.5).tolist() == [1, 0, 2]


def test_main_first_equals_the_slow_rule():
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(1, 12))
        xy = rng.uniform(0, 100, (n, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(1, 80, (n, 2))], axis=1)
        scores = np.sort(rng.uniform(0.01, 1, n))[::-1]
        ratio = float(rng.choice(MAIN_RATIOS))
        order = main_first(boxes, scores, ratio)
        c = _slow_main(boxes, scores, ratio)
        assert order[0] == c and sorted(order.tolist()) == list(range(n))
        assert all(order[i] == i for i in range(n) if i not in (0, c))  # only the two swap


class _Rec:
    def __init__(self, boxes, labels):
        self.boxes, self.labels = np.asarray(boxes, float).reshape(-1, 4), np.asarray(labels, np.int64)
        self.n_objects = len(self.labels)


def _det(boxes, labels, scores):
    b = np.asarray(boxes, float)
    return b, np.asarray(labels, np.int64), np.asarray(scores, float), b


def test_the_ratio_chosen_on_held_out_images():
    big, small = [0, 0, 100, 100], [200, 0, 240, 40]
    # the main object (the big box) scores 0.75 of the top (a small one) in two images: ratios down to 0.7 find it
    dets = [_det([small, big], [0, 0], [0.8, 0.6]), _det([small, big], [0, 0], [0.8, 0.6]),
            _det([big, small], [0, 0], [0.9, 0.2])]
    recs = [_Rec([big, small], [0, 0])] * 3
    ratio, log = _main_ratio(dets, recs)
    assert ratio == 0.7  # 3 hits for 0.7, 0.6, 0.5: the highest of them
    assert [t["main_hits"] for t in log["tried"]] == [1, 1, 1, 3, 3, 3]
    assert log["images"] == 3 and log["ratio"] == 0.7
    # the class counts for a hit: the big box of another class is none (the tie goes to the better mean IoU)
    ratio, log = _main_ratio(dets, [_Rec([big, small], [1, 0])] * 3)
    assert [t["main_hits"] for t in log["tried"]] == [0] * 6 and ratio == 0.7
    # a larger false detection just below the top: the top stays first (1 and 0.9 tie: the least change)
    main, false = [0, 0, 50, 50], [100, 0, 200, 100]
    ratio, log = _main_ratio([_det([main, false], [0, 0], [0.8, 0.7])], [_Rec([main], [0])])
    assert ratio == 1.0 and [t["main_hits"] for t in log["tried"]] == [1, 1, 0, 0, 0, 0]
    # an image without objects or without detections counts as no hit, never as an error
    more = dets + [_det(np.zeros((0, 4)), [], []), _det([small], [0], [0.5])]
    assert _main_ratio(more, recs + [_Rec([big], [0]), _Rec(np.zeros((0, 4)), [])])[0] == 0.7


def test_ties_in_hits_go_to_the_higher_mean_iou():
    gt = [0, 0, 100, 100]
    near = [0, 0, 100, 75]  # IoU 0.75, area 7500
    close = [0, 0, 100, 90]  # IoU 0.9, area 9000: larger, and first from ratio 0.7
    dets = [_det([near, close], [0, 0], [0.8, 0.6])]
    ratio, log = _main_ratio(dets, [_Rec([gt], [0])])
    assert [t["main_hits"] for t in log["tried"]] == [1] * 6
    assert ratio == 0.7 and log["tried"][3]["mean_iou"] == pytest.approx(0.9)


@pytest.fixture(scope="module")
def fitted(voc):
    train = load_dataset(voc, split="train")
    quick = dict(mining_rounds=0, n_random_negatives=300, calibration_fraction=0.3)
    return Localizer(**quick).fit(train), Localizer(main_first=False, **quick).fit(train), load_dataset(voc,
                                                                                                          split="test")


def test_a_fitted_model_puts_the_main_object_first(fitted):
    on, off, test = fitted
    assert off.main_ratio_ is None and off.fit_report_["main_first"] is None
    assert on.main_ratio_ in MAIN_RATIOS and on.fit_report_["main_first"]["ratio"] == on.main_ratio_
    assert len(on.fit_report_["main_first"]["tried"]) == len(MAIN_RATIOS)
    for i in range(len(test)):
        image = test.image(i)
        d_off, d_on = off.detect(image), on.detect(image)
        order = main_first(d_off.boxes, d_off.scores, on.main_ratio_)
        assert np.array_equal(d_on.boxes, d_off.boxes[order]) and np.array_equal(d_on.labels, d_off.labels[order])
        assert np.array_equal(d_on.scores, d_off.scores)  # the scores in their order do not change
        p = on.predict(image)
        if p.present:
            assert np.array_equal(p.box, d_on.boxes[0]) and p.score == d_on.scores[0]
    # the templates are the same: only the order differs
    for a, b in zip(on.templates_, off.templates_):
        assert np.array_equal(a.weights, b.weights)


def test_saved_and_loaded_it_predicts_the_same(fitted, tmp_path):
    on, _, test = fitted
    on.save(tmp_path / "m.npz")
    again = Localizer.load(tmp_path / "m.npz")
    assert again.main_ratio_ == on.main_ratio_ and again.main_first is True
    for i in range(3):
        a, b = on.detect(test.image(i)), again.detect(test.image(i))
        assert np.array_equal(a.boxes, b.boxes) and np.array_equal(a.scores, b.scores)


def test_model_files_from_before_it_load_without_it(fitted, tmp_path, older_model_file):
    on, off, test = fitted
    on.save(tmp_path / "m.npz")
    old = Localizer.load(older_model_file(tmp_path / "m.npz", tmp_path / "old.npz", ["main_ratio"], ["main_first"]))
    assert old.main_ratio_ is None and old.main_first is False
    image = test.image(0)
    assert np.array_equal(old.detect(image).boxes, off.detect(image).boxes)


def test_detect_image_applies_it_after_the_size_calibration(fitted):
    on, _, test = fitted
    s = on._prediction_settings()
    image = test.image(1)
    args = (image, on.templates_, on.feature_params_, s["scale_step"], s["upsample"], s["min_score"], s["nms_iou"],
            s["max_detections"], s["refine"], None, on.nms_cover_, s["cascade"], on.size_calibration_)
    raw = detect_image(*args)
    first = detect_image(*args, main_ratio=0.5)
    order = main_first(raw[0], raw[2], 0.5)
    assert np.array_equal(first[0], raw[0][order]) and np.array_equal(first[3], raw[3][order])
    if len(order):
        c = order[0]
        assert box_area(raw[0][c:c + 1])[0] == box_area(raw[0][raw[2] >= 0.5 * raw[2][0]]).max()
        assert box_iou(first[0][:1], raw[0][c:c + 1])[0, 0] == 1.0
