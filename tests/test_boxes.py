import numpy as np
import pytest

import classic_loc.boxes
from classic_loc.boxes import as_boxes, batched_nms, box_area, box_convert, box_iou, clip_boxes, nms


def test_box_convert_hand_values_and_round_trips():
    xyxy = np.array([[10.0, 20.0, 30.0, 60.0], [0.5, 0.25, 1.5, 4.25]])
    assert box_convert(xyxy, "xyxy", "xywh").tolist() == [[10, 20, 20, 40], [0.5, 0.25, 1.0, 4.0]]
    assert box_convert(xyxy, "xyxy", "cxcywh").tolist() == [[20, 40, 20, 40], [1.0, 2.25, 1.0, 4.0]]
    for fmt in ("xywh", "cxcywh"):
        np.testing.assert_allclose(box_convert(box_convert(xyxy, "xyxy", fmt), fmt, "xyxy"), xyxy)
    np.testing.assert_array_equal(box_convert(xyxy, "xywh", "xywh"), xyxy)
    with pytest.raises(ValueError, match="unknown box format"):
        box_convert(xyxy, "xyxy", "yolo")


def test_as_boxes_shapes():
    assert as_boxes([]).shape == (0, 4)
    assert as_boxes([1, 2, 3, 4]).shape == (1, 4)
    with pytest.raises(ValueError, match=r"shape \(N, 4\)"):
        as_boxes([[1, 2, 3]])


def test_box_area_and_clip():
    assert box_area([[0, 0, 2, 3], [5, 5, 4, 9], [1, 1, 1.5, 3]]).tolist() == [6.0, 0.0, 1.0]
    assert clip_boxes([[-5, 3, 120, 90], [10, -1, 20, 5]], (80, 100)).tolist() == [[0, 3, 100, 80], [10, 0, 20, 5]]


def test_box_iou_hand_computed_matrix():
    a = [[0, 0, 2, 2], [1, 1, 3, 3]]
    b = [[0, 0, 2, 2], [2, 2, 4, 4], [0, 0, 1, 1], [10, 10, 11, 11]]
    # a0-b0 identical: 1; a0-b1 touch at a corner: 0; a0-b2: 1/4; a1-b0: 1/(4+4-1); a1-b1: 1/7; a1-b2: 0
    expected = [[1.0, 0.0, 0.25, 0.0], [1 / 7, 1 / 7, 0.0, 0.0]]
    np.testing.assert_allclose(box_iou(a, b), expected, rtol=0, atol=1e-15)
    assert box_iou(a, []).shape == (2, 0)
    assert box_iou([[0, 0, 0, 0]], [[0, 0, 0, 0]]).tolist() == [[0.0]]  # empty union gives 0, not nan


def _slow_nms(boxes, scores, t):
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    keep = []
    for i in order:
        if all(box_iou(boxes[i:i + 1], boxes[j:j + 1])[0, 0] <= t for j in keep):
            keep.append(i)
    return keep


def test_nms_boundary_exactly_at_threshold_is_kept():
    boxes = [[0, 0, 2, 1], [0, 0, 1, 1]]  # IoU exactly 0.5
    assert box_iou(boxes[:1], boxes[1:])[0, 0] == 0.5
    assert nms(boxes, [0.9, 0.8], 0.5).tolist() == [0, 1]  # not > 0.5: kept
    assert nms(boxes, [0.9, 0.8], 0.4999).tolist() == [0]
    assert nms(boxes, [0.8, 0.9], 0.4999).tolist() == [1]


def test_nms_ties_keep_input_order_and_sorted_output():
    boxes = [[0, 0, 10, 10], [0, 0, 10, 10], [20, 20, 30, 30]]
    assert nms(boxes, [0.5, 0.5, 0.7], 0.5).tolist() == [2, 0]


def test_nms_matches_slow_reference_on_random_boxes():
    rng = np.random.default_rng(0)
    for trial in range(200):
        n = int(rng.integers(0, 40))
        xy = rng.uniform(0, 50, (n, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(1, 30, (n, 2))], axis=1)
        if trial % 3 == 0:
            boxes = np.round(boxes)  # many exact ties in IoU
        scores = np.round(rng.random(n), 1 if trial % 2 else 6)  # score ties too
        t = float(rng.choice([0.0, 0.3, 0.5, 0.7, 1.0]))
        assert nms(boxes, scores, t).tolist() == _slow_nms(boxes, scores, t)


def test_batched_nms_is_per_class_and_matches_reference():
    rng = np.random.default_rng(1)
    for _ in range(100):
        n = int(rng.integers(0, 30))
        xy = rng.uniform(0, 40, (n, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(1, 30, (n, 2))], axis=1)
        scores = np.round(rng.random(n), 2)
        labels = rng.integers(0, 3, n)
        ref = []
        for c in range(3):
            idx = np.flatnonzero(labels == c)
            ref += [int(idx[k]) for k in _slow_nms(boxes[idx], scores[idx], 0.5)]
        ref.sort(key=lambda i: (-scores[i], i))
        assert batched_nms(boxes, scores, labels, 0.5).tolist() == ref
    same = [[0, 0, 10, 10], [0, 0, 10, 10]]
    assert batched_nms(same, [0.9, 0.8], [0, 1], 0.5).tolist() == [0, 1]
    assert batched_nms(same, [0.9, 0.8], [1, 1], 0.5).tolist() == [0]


def _slow_nms_cover(boxes, scores, t, cover):
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    keep = []
    for i in order:
        ok = True
        for j in keep:
            x1, y1 = max(boxes[i][0], boxes[j][0]), max(boxes[i][1], boxes[j][1])
            x2, y2 = min(boxes[i][2], boxes[j][2]), min(boxes[i][3], boxes[j][3])
            inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
            own = (boxes[i][2] - boxes[i][0]) * (boxes[i][3] - boxes[i][1])
            if box_iou(boxes[i:i + 1], boxes[j:j + 1])[0, 0] > t or inter / own > cover:
                ok = False
        if ok:
            keep.append(i)
    return keep


def test_nms_cover_threshold_boundary_and_reference():
    whole, part = [0, 0, 10, 20], [2, 2, 6, 12]  # the part lies inside the whole: covered fraction 1, IoU 0.2
    assert nms([whole, part], [0.9, 0.8], 0.5).tolist() == [0, 1]
    assert nms([whole, part], [0.9, 0.8], 0.5, cover_threshold=0.7).tolist() == [0]
    assert nms([whole, part], [0.8, 0.9], 0.5, cover_threshold=0.7).tolist() == [1, 0]  # only a lower box is dropped
    half = [5, 0, 15, 20]  # half of it inside the whole: covered fraction exactly 0.5
    assert nms([whole, half], [0.9, 0.8], 0.9, cover_threshold=0.5).tolist() == [0, 1]  # not > 0.5: kept
    assert nms([whole, half], [0.9, 0.8], 0.9, cover_threshold=0.4999).tolist() == [0]
    rng = np.random.default_rng(2)
    for _ in range(100):
        n = int(rng.integers(0, 30))
        xy = rng.uniform(0, 40, (n, 2))
        boxes = np.round(np.concatenate([xy, xy + rng.uniform(1, 30, (n, 2))], axis=1))
        scores = np.round(rng.random(n), 2)
        assert nms(boxes, scores, 0.5, 0.6).tolist() == _slow_nms_cover(boxes, scores, 0.5, 0.6)


@pytest.mark.parametrize("per_round", [1, 2, 8, 1000])
def test_nms_rounds_match_the_slow_references(monkeypatch, per_round):
    """Suppression in rounds of ``boxes._NMS_ROUND`` boxes decides as the one-box-at-a-time references.

    Rounds of 1 (the plain greedy loop), 2 and 8 (the default) boxes, and 1000 (every box in one
    round); zero-area boxes included.
    """
    monkeypatch.setattr(classic_loc.boxes, "_NMS_ROUND", per_round)
    rng = np.random.default_rng(3)
    for trial in range(60):
        n = int(rng.integers(0, 50))
        xy = rng.uniform(0, 40, (n, 2))
        boxes = np.round(np.concatenate([xy, xy + rng.uniform(0, 30, (n, 2))], axis=1))
        scores = np.round(rng.random(n), 1)
        labels = rng.integers(0, 3, n)
        assert nms(boxes, scores, 0.4).tolist() == _slow_nms(boxes, scores, 0.4)
        if (boxes[:, 2:] > boxes[:, :2]).all():  # the cover reference divides by the area
            assert nms(boxes, scores, 0.5, 0.6).tolist() == _slow_nms_cover(boxes, scores, 0.5, 0.6)
        ref = []
        for c in range(3):
            idx = np.flatnonzero(labels == c)
            ref += [int(idx[k]) for k in _slow_nms(boxes[idx], scores[idx], 0.4)]
        ref.sort(key=lambda i: (-scores[i], i))
        assert batched_nms(boxes, scores, labels, 0.4).tolist() == ref
