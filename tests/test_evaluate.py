import contextlib
import io
import json
from dataclasses import replace

import numpy as np
import pytest

from classic_loc.cli import main
from classic_loc.datasets import Dataset, ImageRecord, write_coco
from classic_loc.datasets.coco import to_coco
from classic_loc.errors import DataError
from classic_loc.evaluation import evaluate, read_predictions

KEYS = {"accuracy", "mean_iou", "loc_accuracy", "corloc", "presence_accuracy", "presence_precision",
        "presence_recall", "map", "map50", "map75", "per_class", "n_images", "n_with_object", "n_predictions"}


def rec(image_id, boxes, labels, **kw):
    return ImageRecord(image_id, None, 100, 100, np.reshape(boxes, (-1, 4)), labels, **kw)


def det(image_id, cls, xyxy, score):
    x1, y1, x2, y2 = xyxy
    return {"image_id": image_id, "category_id": cls, "bbox": [x1, y1, x2 - x1, y2 - y1], "score": score}


@pytest.fixture
def hand_case():
    gt = Dataset([
        rec("img1", [[0, 0, 10, 10], [20, 20, 24, 24]], [0, 1]),  # main: the cat (area 100 > 16)
        rec("img2", [[0, 0, 4, 2]], [1]),
        rec("img3", [[0, 0, 10, 10], [20, 0, 30, 10]], [0, 0]),  # equal areas: the first is the main object
        rec("img4", [[0, 0, 10, 10]], [0]),
        rec("img5", [], []),
        rec("img6", [], []),
    ], ["cat", "dog"])
    preds = [
        det("img1", "dog", [0, 0, 10, 10], 0.9),  # tie with the next one: first in file order is the top
        det("img1", "cat", [0, 0, 10, 5], 0.9),
        det("img2", "dog", [0, 0, 2, 2], 0.5),  # IoU with [0,0,4,2] is exactly 4/8 = 0.5
        det("img3", "cat", [20, 0, 30, 10], 0.3),  # right class, but on the second cat: IoU 0 with the main one
        det("img5", "cat", [0, 0, 5, 5], 0.1),  # an object predicted in an empty image
    ]
    return gt, preds


def test_localization_metrics_hand_computed(hand_case):
    gt, preds = hand_case
    r = evaluate(gt, preds)
    assert KEYS <= set(r)
    assert r["n_images"] == 6 and r["n_with_object"] == 4 and r["n_predictions"] == 5
    assert r["accuracy"] == 2 / 4  # img2, img3
    assert r["mean_iou"] == (1.0 + 0.5 + 0.0 + 0.0) / 4
    assert r["loc_accuracy"] == 1 / 4  # img2 only, at IoU exactly 0.5
    assert r["corloc"] == 2 / 4  # img1 (wrong class, IoU 1) and img2
    assert r["presence_accuracy"] == 4 / 6
    assert r["presence_precision"] == 3 / 4
    assert r["presence_recall"] == 3 / 4
    assert r["confusion"] == {"labels": ["cat", "dog", "none"], "matrix": [[1, 1, 1], [0, 1, 0], [1, 0, 1]]}
    cat, dog = r["per_class"]["cat"], r["per_class"]["dog"]
    assert (cat["n_images"], cat["n_boxes"], cat["accuracy"], cat["loc_accuracy"], cat["corloc"]) == (3, 4, 1 / 3, 0, 1 / 3)
    assert cat["mean_iou"] == pytest.approx(1 / 3, abs=1e-15)
    assert (dog["n_images"], dog["accuracy"], dog["loc_accuracy"], dog["mean_iou"]) == (1, 1.0, 1.0, 0.5)


def test_iou_threshold_is_inclusive(hand_case):
    gt, preds = hand_case
    above = evaluate(gt, preds, iou_threshold=0.5 + 1e-12)
    assert above["loc_accuracy"] == 0.0 and above["corloc"] == 1 / 4


def test_score_tie_goes_to_the_first_prediction_in_file_order(hand_case):
    gt, preds = hand_case
    preds[0], preds[1] = preds[1], preds[0]  # now the cat prediction comes first
    r = evaluate(gt, preds)
    assert r["accuracy"] == 3 / 4
    assert r["mean_iou"] == (0.5 + 0.5 + 0 + 0) / 4  # IoU([0,0,10,5], [0,0,10,10]) = 0.5
    assert r["loc_accuracy"] == 2 / 4


def test_ap_hand_computed():
    gt = Dataset([rec("a", [[0, 0, 10, 10]], [0]), rec("b", [[0, 0, 10, 10]], [0])], ["x"])
    preds = [det("a", "x", [0, 0, 10, 10], 0.9), det("b", "x", [50, 50, 60, 60], 0.8),
             det("b", "x", [0, 0, 10, 10], 0.7)]
    r = evaluate(gt, preds)
    # TP, FP, TP: precision 1 up to recall 0.5 (51 recall points), then 2/3 (50 points)
    expected = (51 * 1.0 + 50 * (2 / 3)) / 101
    assert r["map50"] == pytest.approx(expected, abs=1e-12)
    assert r["map"] == pytest.approx(expected, abs=1e-12)  # exact boxes pass every IoU threshold
    assert r["per_class"]["x"]["ap50"] == pytest.approx(expected, abs=1e-12)


def test_difficult_boxes_are_ignored_by_ap_only():
    gt = Dataset([rec("a", [[0, 0, 10, 10], [50, 50, 60, 60]], [0, 0], difficult=[False, True])], ["x"])
    on_difficult = [det("a", "x", [50, 50, 60, 60], 0.9), det("a", "x", [0, 0, 10, 10], 0.8)]
    r = evaluate(gt, on_difficult)
    assert r["map50"] == pytest.approx(1.0)  # the detection on the difficult box is neither TP nor FP
    plain = Dataset([rec("a", [[0, 0, 10, 10], [50, 50, 60, 60]], [0, 0])], ["x"])
    assert evaluate(plain, on_difficult)["map50"] == pytest.approx((51 + 50 * 1.0) / 101)  # both TP: AP 1 at recall 1
    assert r["per_class"]["x"]["n_boxes"] == 2


def test_no_ground_truth_gives_no_ap_and_empty_predictions_score_zero():
    gt = Dataset([rec("a", [], [])], ["x"])
    r = evaluate(gt, [])
    assert r["map"] is None and r["presence_accuracy"] == 1.0 and r["accuracy"] == 0.0
    gt = Dataset([rec("a", [[0, 0, 10, 10]], [0])], ["x"])
    r = evaluate(gt, [])
    assert (r["map"], r["map50"], r["accuracy"], r["mean_iou"], r["presence_recall"]) == (0.0, 0.0, 0.0, 0.0, 0.0)


def test_python_mapping_and_coco_list_agree(hand_case):
    gt, preds = hand_case
    mapping = {}
    for p in preds:
        x, y, w, h = p["bbox"]
        m = mapping.setdefault(p["image_id"], {"boxes": [], "labels": [], "scores": []})
        m["boxes"].append([x, y, x + w, y + h])
        m["labels"].append(gt.classes.index(p["category_id"]))  # class indices here
        m["scores"].append(p["score"])
    assert evaluate(gt, mapping) == evaluate(gt, preds)


def test_image_and_category_ids_in_both_forms(hand_case):
    gt, preds = hand_case
    # integer image ids are the ground truth's own COCO ids (here given, and not positions); a ground truth
    # whose ids only number its images by position reads integers as numeric stems (tests/test_evaluate_ids.py)
    gt = Dataset([replace(r, coco_id=10 * k + 7) for k, r in enumerate(gt)], gt.classes)
    by_ids = [dict(p, image_id=gt[gt.index_of(p["image_id"])].coco_id,
                   category_id=gt.category_ids[gt.classes.index(p["category_id"])]) for p in preds]
    assert isinstance(by_ids[0]["image_id"], int)
    assert evaluate(gt, by_ids) == evaluate(gt, preds)


def test_prediction_boxes_are_not_clipped():
    gt = Dataset([rec("a", [[0, 0, 10, 10]], [0])], ["x"])
    r = evaluate(gt, [det("a", "x", [-10, 0, 10, 10], 0.9)])  # half outside the image
    assert r["mean_iou"] == 0.5


# ------------------------------------------------------------- parity with pycocotools
def _random_case(rng, ties):
    records = []
    for i in range(int(rng.integers(5, 25))):
        n = int(rng.integers(0, 6))
        xy = rng.uniform(0, 100, (n, 2))
        boxes = np.concatenate([xy, np.minimum(xy + rng.uniform(4, 90, (n, 2)), [200, 150])], 1)
        if ties:
            boxes = np.round(boxes)
        records.append(ImageRecord(f"im{i}", None, 200, 150, boxes, rng.integers(0, 3, n),
                                   difficult=rng.random(n) < 0.15, crowd=rng.random(n) < 0.05,
                                   coco_id=int(rng.permutation(1000)[0]) * 1000 + i))  # ids not in dataset order
    gt = Dataset(records, ["a", "b", "c"])
    preds = []
    for r in records:
        for _ in range(int(rng.integers(0, 9 if not ties else 120))):  # > 100 exercises maxDets
            if len(r.boxes) and rng.random() < 0.6:
                b = r.boxes[rng.integers(len(r.boxes))] + rng.normal(0, 5, 4)
            else:
                xy = rng.uniform(0, 120, 2)
                b = np.r_[xy, xy + rng.uniform(3, 80, 2)]
            b = np.round(b) if ties else b
            if b[2] - b[0] < 1 or b[3] - b[1] < 1:
                continue
            score = float(np.round(rng.random(), 1)) if ties else float(rng.random())
            preds.append(det(r.coco_id, int(rng.integers(1, 4)), b, score))
    return gt, preds


def _pycocotools(gt, preds):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    doc = to_coco(gt)
    for ann in doc["annotations"]:  # VOC difficult boxes are ignored the way crowd boxes are
        ann["iscrowd"] = int(ann["iscrowd"] or ann.get("difficult", 0))
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = doc
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes([dict(p) for p in preds])
        ev = COCOeval(coco_gt, coco_dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


@pytest.mark.parametrize("seed", range(40))
def test_ap_equals_pycocotools_on_random_cases(seed):
    pytest.importorskip("pycocotools", reason="parity tests need pycocotools (pip install -e .[test])")
    rng = np.random.default_rng(seed)
    gt, preds = _random_case(rng, ties=seed % 2 == 1)
    if not preds:
        return
    ours = evaluate(gt, preds)
    ref = _pycocotools(gt, preds)
    for key, value in zip(("map", "map50", "map75"), ref.stats[:3]):
        assert ours[key] == pytest.approx(value, abs=1e-9) if value > -1 else ours[key] is None
    precision = ref.eval["precision"][:, :, :, 0, 2]  # area "all", 100 detections
    for k, name in enumerate(gt.classes):
        pk = precision[:, :, k]
        want = pk[pk > -1].mean() if (pk > -1).any() else None
        got = ours["per_class"][name]["ap"]
        assert (got is None and want is None) or got == pytest.approx(want, abs=1e-9)
        want50 = precision[0, :, k]
        assert (ours["per_class"][name]["ap50"] is None) == (not (want50 > -1).any())


def _sized_case(rng):
    """Objects and detections of every COCO size range, some exactly on its bounds (32**2, 96**2), and
    ground-truth areas that are not the boxes' (as a COCO file's mask areas), crowd and difficult boxes."""
    records = []
    for i in range(int(rng.integers(4, 16))):
        n = int(rng.integers(0, 7))
        side = rng.choice([8.0, 20.0, 32.0, 50.0, 96.0, 150.0], size=(n, 2))
        xy = np.round(rng.uniform(0, 300, (n, 2)))
        boxes = np.concatenate([xy, xy + side], 1)
        areas = side[:, 0] * side[:, 1]
        mask = rng.random(n) < 0.4  # a mask's area: less than its box's, sometimes across a bound
        areas[mask] = np.round(areas[mask] * rng.choice([0.3, 0.6, 0.9], size=int(mask.sum())))
        areas[rng.random(n) < 0.15] = 32.0 ** 2
        areas[rng.random(n) < 0.1] = 96.0 ** 2
        records.append(ImageRecord(f"im{i}", None, 500, 500, boxes, rng.integers(0, 3, n),
                                   difficult=rng.random(n) < 0.1, crowd=rng.random(n) < 0.1, areas=areas,
                                   coco_id=1000 - 7 * i))
    gt = Dataset(records, ["a", "b", "c"])
    preds = []
    for r in records:
        for _ in range(int(rng.integers(0, 30))):
            if len(r.boxes) and rng.random() < 0.6:
                b = r.boxes[rng.integers(len(r.boxes))] + np.round(rng.normal(0, 4, 4))
            else:
                xy = np.round(rng.uniform(0, 350, 2))
                b = np.r_[xy, xy + rng.choice([10.0, 32.0, 60.0, 96.0, 130.0], 2)]
            if b[2] - b[0] < 1 or b[3] - b[1] < 1:
                continue
            preds.append(det(r.coco_id, int(rng.integers(1, 4)), b, float(np.round(rng.random(), 2))))
    return gt, preds


@pytest.mark.parametrize("seed", range(30))
def test_all_twelve_coco_numbers_equal_pycocotools(seed):
    """pycocotools' 12 summary numbers (AP by IoU and size, AR by detections and size) to 1e-9, and the
    whole precision (T, R, K, A, M) and recall (T, K, A, M) arrays they come from."""
    pytest.importorskip("pycocotools", reason="parity tests need pycocotools (pip install -e .[test])")
    from classic_loc.evaluation import COCO_SUMMARY, _coco_accumulate

    rng = np.random.default_rng(1000 + seed)
    gt, preds = _sized_case(rng) if seed % 3 else _random_case(rng, ties=seed % 2 == 1)
    if not preds:
        return
    ours = evaluate(gt, preds)
    ref = _pycocotools(gt, preds)
    for (key, *_), want in zip(COCO_SUMMARY, ref.stats):
        assert (ours[key] is None) if want == -1 else ours[key] == pytest.approx(want, abs=1e-9), key
    precision, recall = _coco_accumulate(gt, read_predictions(preds, gt))
    np.testing.assert_allclose(precision, ref.eval["precision"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(recall, ref.eval["recall"], rtol=0, atol=1e-12)


def test_coco_size_ranges_by_hand():
    """Hand-computed size-range AP and AR: objects of 400 (small), 2500 (medium) and 10000 (large) px in
    image a, one of exactly 32**2 px (small and medium) in b, and in c a 50x50 box whose mask area
    500 makes it small; each found exactly; a false small detection in b scores highest."""
    gt = Dataset([rec("a", [[0, 0, 20, 20], [30, 0, 80, 50], [0, 50, 100, 150]], [0, 0, 0]),
                  rec("b", [[0, 0, 32, 32]], [0]),
                  rec("c", [[0, 0, 50, 50]], [0], areas=[500.0])], ["x"])
    found = [det("a", 1, [0, 0, 20, 20], 0.9), det("a", 1, [30, 0, 80, 50], 0.8),
             det("a", 1, [0, 50, 100, 150], 0.7), det("b", 1, [0, 0, 32, 32], 0.6), det("c", 1, [0, 0, 50, 50], 0.5)]
    r = evaluate(gt, found)
    for key in ("map", "map_small", "map_medium", "map_large", "mar_10", "mar_100", "mar_small", "mar_medium",
                "mar_large"):
        assert r[key] == pytest.approx(1.0), key
    assert r["mar_1"] == pytest.approx(3 / 5)  # one detection per image: a finds 1 of its 3 objects
    r = evaluate(gt, found + [det("b", 1, [100, 100, 110, 110], 0.95)])  # 100 px, unmatched: small only
    assert r["map"] == pytest.approx(5 / 6)  # the 5 hits come after one miss: precision 5/6 at every recall
    # small objects (400, 1024, c's 500) are hits 1, 4 and 5 after the miss: precision 1/2, 2/3, 3/4, interpolated
    # to 3/4 at every recall; the medium and large hits in between match objects out of range: ignored
    assert r["map_small"] == pytest.approx(3 / 4)
    assert r["map_medium"] == pytest.approx(1.0) and r["map_large"] == pytest.approx(1.0)  # the miss is out of range
    assert r["mar_1"] == pytest.approx(2 / 5)  # b's one detection is now the miss
    assert r["mar_100"] == pytest.approx(1.0)
    assert evaluate(Dataset([rec("c", [[0, 0, 50, 50]], [0], areas=[500.0])], ["x"]), found[-1:])["map_medium"] is None
    with pytest.raises(DataError, match=r"image 'c' box 0: area nan is not a finite, non-negative number"):
        evaluate(Dataset([rec("c", [[0, 0, 50, 50]], [0], areas=[np.nan])], ["x"]), [])


def test_parity_through_a_written_coco_file(tmp_path):
    pytest.importorskip("pycocotools", reason="parity tests need pycocotools (pip install -e .[test])")
    gt, preds = _sized_case(np.random.default_rng(123))
    gt = gt.with_records([ImageRecord(r.image_id, r.path, r.width, r.height, r.boxes, r.labels, coco_id=r.coco_id,
                                      areas=r.areas)
                          for r in gt])  # plain COCO: no crowd, no difficult; mask areas kept through the file
    write_coco(gt, tmp_path / "gt.json")
    (tmp_path / "preds.json").write_text(json.dumps(preds))
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(str(tmp_path / "gt.json"))
        ev = COCOeval(coco_gt, coco_gt.loadRes(str(tmp_path / "preds.json")), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    assert main(["evaluate", "--gt", str(tmp_path / "gt.json"), "--pred", str(tmp_path / "preds.json"), "--json",
                 "--out", str(tmp_path / "r.json")]) == 0
    r = json.loads((tmp_path / "r.json").read_text())
    from classic_loc.evaluation import COCO_SUMMARY

    assert [r[key] for key, *_ in COCO_SUMMARY] == pytest.approx(list(ev.stats), abs=1e-9)
    assert any(a != w * h for a, (_, _, w, h) in ((ann["area"], ann["bbox"])
                                                  for ann in json.loads((tmp_path / "gt.json").read_text())["annotations"]))


# ------------------------------------------------------------- bad predictions
@pytest.mark.parametrize("pred, message", [
    ({"image_id": "nope", "category_id": "cat", "bbox": [0, 0, 1, 1], "score": 1}, r"\[0\]: image_id 'nope' is not in the ground truth .*; use the image's file stem"),
    ({"image_id": "img1", "category_id": "bird", "bbox": [0, 0, 1, 1], "score": 1}, r"\[0\]: unknown class 'bird'; use a class name \(cat, dog\)"),
    ({"image_id": "img1", "category_id": 7, "bbox": [0, 0, 1, 1], "score": 1}, r"\[0\]: unknown category_id 7; use a category id"),
    ({"image_id": "img1", "category_id": 1, "bbox": [0, 0, 0, 1], "score": 1}, r"\[0\]: box .* width or height <= 0; write boxes"),
    # json.dumps writes NaN as the non-standard literal NaN, which the file reader refuses where it stands
    ({"image_id": "img1", "category_id": 1, "bbox": [0, 0, float("nan"), 1], "score": 1},
     r"preds.json: line 1 column \d+: NaN is not a finite number"),
    ({"image_id": "img1", "category_id": 1, "bbox": [0, 0, 2, 1]}, r"\[0\]: a result needs image_id, category_id, bbox and score"),
    ({"image_id": "img1", "category_id": 1, "bbox": [0, 0, 2], "score": 1}, r"\[0\]: bbox \[0, 0, 2\] is not 4 numbers"),
    ({"image_id": "img1", "category_id": 1, "bbox": [0, 0, 2, 2], "score": "high"}, r"\[0\]: score 'high' is not a finite number"),
])
def test_bad_predictions_give_one_line_errors(hand_case, tmp_path, pred, message):
    gt, _ = hand_case
    path = tmp_path / "preds.json"
    path.write_text(json.dumps([pred]))
    with pytest.raises(DataError, match=message) as info:
        read_predictions(str(path), gt)
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)


def test_a_nan_box_in_a_parsed_list_is_refused_as_a_box(hand_case):
    gt, _ = hand_case
    pred = [{"image_id": "img1", "category_id": 1, "bbox": [0, 0, float("nan"), 1], "score": 1}]
    with pytest.raises(DataError, match=r"^predictions: \[0\]: box .* not finite"):
        read_predictions(pred, gt)


def test_malformed_prediction_files(hand_case, tmp_path):
    gt, _ = hand_case
    bad = tmp_path / "bad.json"
    bad.write_text('[{"image_id": "img1",\n "score": }]')
    with pytest.raises(DataError, match=r"bad.json: line 2 column \d+: malformed JSON .*; fix the predictions file"):
        read_predictions(str(bad), gt)
    obj = tmp_path / "obj.json"
    obj.write_text('{"images": []}')
    with pytest.raises(DataError, match=r"obj.json: a COCO results file must be a JSON list"):
        read_predictions(str(obj), gt)


def test_cli_evaluate_table_json_and_errors(hand_case, tmp_path, capsys):
    gt, preds = hand_case
    write_coco(gt, tmp_path / "gt.json")
    (tmp_path / "p.json").write_text(json.dumps(preds))
    assert main(["evaluate", "--gt", str(tmp_path / "gt.json"), "--pred", str(tmp_path / "p.json"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert KEYS <= set(out) and out["accuracy"] == 0.5 and out["loc_accuracy"] == 0.25
    assert main(["evaluate", "--gt", str(tmp_path / "gt.json"), "--pred", str(tmp_path / "p.json"),
                 "--iou", "0.6"]) == 0
    table = capsys.readouterr().out
    assert "loc_accuracy    0.000" in table and "accuracy        0.500" in table and "confusion" in table
    (tmp_path / "q.json").write_text(json.dumps([dict(preds[0], image_id="ghost")]))
    assert main(["evaluate", "--gt", str(tmp_path / "gt.json"), "--pred", str(tmp_path / "q.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "ghost" in err and "q.json" in err and "\n" not in err


def test_curves_precision_recall_by_hand():
    """Two objects; detections TP (0.9), FP (0.8), TP (0.7): precision 1 up to recall 0.5, then 2/3."""
    gt = Dataset([ImageRecord("a", None, 100, 100, [[0, 0, 10, 10], [50, 50, 60, 60]], [0, 0])], ["cat"])
    preds = [{"image_id": "a", "category_id": "cat", "bbox": b, "score": s}
             for b, s in (([0, 0, 10, 10], 0.9), ([20, 20, 10, 10], 0.8), ([50, 50, 10, 10], 0.7))]
    r = evaluate(gt, preds, curves=True)
    c = r["curves"]
    assert len(c["recall"]) == 101 and c["recall"][50] == 0.5
    p = np.array(c["precision50"]["cat"])
    np.testing.assert_allclose(p[:51], 1.0)
    np.testing.assert_allclose(p[51:], 2 / 3, rtol=1e-5)
    assert r["map50"] == pytest.approx(p.mean(), abs=1e-6)
    assert c["main_iou"] == [1.0]  # the top prediction on the (tied, first) largest object
    assert "curves" not in evaluate(gt, preds)


def test_package_evaluate_is_the_function_even_after_the_module_is_imported():
    import subprocess
    import sys

    code = ("import classic_loc.workflow, classic_loc.evaluation; from classic_loc import evaluate; "
            "print(callable(evaluate) and evaluate.__name__ == 'evaluate')")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "True"


# ------------------------------------------------------------- the seed notes' y-vectors
def test_yvectors_by_hand():
    gt = Dataset([rec("a", [[37.5, 25, 62.5, 75]], [0]), rec("b", [[0, 0, 50, 50]], [1]), rec("c", [], [])],
                 ["cat", "dog"])
    doc = {"format": "yvector", "classes": ["dog", "cat"],  # the file's own class order
           "predictions": {"a": [0.9, 0.5, 0.5, 0.5, 0.25, 0.2, 0.8],  # cat (the second c), box exact
                           "b": [0.3, 0.25, 0.25, 0.5, 0.5, 1.0, 0.0],  # p_c < 0.5: "no object"
                           "c": [0.7, 0.5, 0.5, 0.2, 0.2, 1.0, 0.0]}}  # an object where there is none
    preds = read_predictions(doc, gt)
    np.testing.assert_allclose(preds[0].boxes, [[37.5, 25, 62.5, 75]])
    assert preds[0].labels.tolist() == [0] and preds[0].scores.tolist() == [pytest.approx(0.9 * 0.8)]
    assert len(preds[1].scores) == 0 and preds[2].labels.tolist() == [1]
    r = evaluate(gt, doc)
    assert r["accuracy"] == pytest.approx(0.5) and r["loc_accuracy"] == pytest.approx(0.5)
    assert r["presence_accuracy"] == pytest.approx(1 / 3)  # a right, b missed, c a false object
    bad = dict(doc, predictions={"a": [0.9, 0.5, 0.5]})
    with pytest.raises(DataError, match=r"image 'a': the y-vector has 3 finite numbers or fewer, not 5 \+ 2"):
        read_predictions(bad, gt)
    with pytest.raises(DataError, match="needs 'classes'"):
        read_predictions({"format": "yvector", "predictions": {}}, gt)


def test_predict_yvectors_round_trip_through_evaluate(trained, voc, tmp_path, capsys):
    """predict --format yvector writes each image's main detection; evaluate reads it back: the same figures as
    scoring the main detections (those of p_c >= 0.5) directly."""
    from classic_loc import Localizer, load_dataset

    test = load_dataset(voc, split="test")
    out = tmp_path / "y.json"
    assert main(["predict", "--model", str(trained), *[r.path for r in test], "--format", "yvector", "--out",
                 str(out), "--quiet"]) == 0
    doc = json.loads(out.read_text())
    assert doc["format"] == "yvector" and len(doc["predictions"]) == len(test)
    model = Localizer.load(trained)
    direct = {}
    for r in test:
        d = model.detect(r.path)
        direct[r.image_id] = d[:1] if len(d) and d.scores[0] >= 0.5 else d[:0]
    want, got = evaluate(test, direct), evaluate(test, str(out))
    for key in ("accuracy", "loc_accuracy", "mean_iou", "presence_accuracy", "map50"):
        assert got[key] == pytest.approx(want[key], abs=1e-4), key
    assert main(["predict", "--model", str(trained), test[0].path, "--format", "yvector", "--draw",
                 str(tmp_path / "d")]) == 2
    assert "cannot be combined with --draw" in capsys.readouterr().err
