"""How a prediction's image_id names an image (Dataset.match_image_id), and evaluate's own parameters."""

import json
import math
from dataclasses import replace

import cv2
import numpy as np
import pytest

from classic_loc.cli import main
from classic_loc.datasets import Dataset, ImageRecord, read_coco, read_voc, write_coco, write_voc
from classic_loc.errors import DataError
from classic_loc.evaluation import evaluate, read_predictions


def _voc_like(stems, folder="/data/voc", fmt="voc"):
    """Records as a VOC reader makes them: paths under JPEGImages, coco_id = position."""
    return Dataset([ImageRecord(s, f"{folder}/JPEGImages/{s}.jpg", 100, 100, [[10, 10, 50 + k, 60]], [k % 2],
                                coco_id=k + 1) for k, s in enumerate(stems)], ["cat", "dog"], root=folder, format=fmt)


def _perfect(ds, ids):
    """One exact prediction per image, its image_id taken from ``ids``."""
    out = []
    for rec, image_id in zip(ds, ids):
        x1, y1, x2, y2 = rec.boxes[0].tolist()
        out.append({"image_id": image_id, "category_id": ds.category_ids[int(rec.labels[0])],
                    "bbox": [x1, y1, x2 - x1, y2 - y1], "score": 0.9})
    return out


# ------------------------------------------------------------- the bug: Ultralytics-style integer ids
def test_integer_ids_from_numeric_stems_score_perfect_predictions_as_perfect(tmp_path):
    # stems whose numbers differ from their positions: the old rule (integer = position) scored this 0.0
    stems = ["000123", "000007", "004200"]
    root = tmp_path / "voc"
    (root / "JPEGImages").mkdir(parents=True)
    records = []
    for k, s in enumerate(stems):
        cv2.imwrite(str(root / "JPEGImages" / f"{s}.jpg"), np.full((100, 100, 3), 128, np.uint8))
        records.append(ImageRecord(s, str(root / "JPEGImages" / f"{s}.jpg"), 100, 100, [[10, 10, 50 + k, 60]], [k % 2]))
    write_voc(Dataset(records, ["cat", "dog"]), root, split="test")
    gt = read_voc(str(root), split="test")
    assert gt.format == "voc" and not gt.own_coco_ids
    ints = [int(r.image_id) for r in gt]
    assert sorted(ints) == [7, 123, 4200]
    r = evaluate(gt, _perfect(gt, ints))
    assert (r["map50"], r["map"], r["accuracy"], r["mean_iou"]) == pytest.approx((1.0, 1.0, 1.0, 1.0), abs=1e-9)
    # positions (what the old rule read integers as) are not image ids of a VOC set
    with pytest.raises(DataError, match=r"image_id 1 is not in the ground truth .*no image has this number"):
        evaluate(gt, _perfect(gt, [1, 2, 3]))
    # the same through the command line
    (tmp_path / "p.json").write_text(json.dumps(_perfect(gt, ints)))
    assert main(["evaluate", "--gt", str(root), "--split", "test", "--pred", str(tmp_path / "p.json"), "--json",
                 "--out", str(tmp_path / "r.json")]) == 0
    assert json.loads((tmp_path / "r.json").read_text())["map50"] == pytest.approx(1.0, abs=1e-9)


def test_every_form_of_an_id_names_the_same_image():
    gt = _voc_like(["000123", "a", "b"])
    forms = ["JPEGImages/000123.jpg", "./JPEGImages/000123.jpg", "JPEGImages\\000123.jpg", "000123.jpg",
             "000123", 123, np.int64(123), np.uint16(123), "123", "0123", "run1/cam/000123.jpg", "x/000123",
             "elsewhere/JPEGImages/000123.jpg"]
    assert [gt.match_image_id(f) for f in forms] == [0] * len(forms)
    assert [gt.match_image_id(f) for f in ("a", "a.jpg", "JPEGImages/b.jpg", "z/b.jpg")] == [1, 1, 2, 2]
    # and every reader form agrees: the list, the mapping, a file
    r_list = evaluate(gt, _perfect(gt, [123, "a.jpg", "JPEGImages/b.jpg"]))
    mapping = {p["image_id"]: {"boxes": [[p["bbox"][0], p["bbox"][1], p["bbox"][0] + p["bbox"][2],
                                          p["bbox"][1] + p["bbox"][3]]], "labels": [k % 2], "scores": [0.9]}
               for k, p in enumerate(_perfect(gt, [np.int32(123), "a", "run/b.jpg"]))}
    assert evaluate(gt, mapping) == r_list and r_list["map50"] == pytest.approx(1.0, abs=1e-9)


def test_ambiguous_integer_between_stems_000123_and_123():
    gt = _voc_like(["000123", "123", "c"])
    for value in (123, np.int64(123), "0123", "00123"):
        with pytest.raises(DataError, match=r"image_id .*123.* matches '/data/voc/JPEGImages/000123.jpg' and "
                                            r"'/data/voc/JPEGImages/123.jpg' by the integer form of a numeric stem; "
                                            r"write the full file stem") as info:
            gt.match_image_id(value, "p.json", "[4]")
        assert str(info.value).startswith("p.json: [4]: image_id") and info.value.kind == "ambiguous image"
        with pytest.raises(DataError, match="matches"):
            gt.index_of(value)  # ambiguity is never "not found"
    # a string decided by an earlier rule is not ambiguous: the stem "123" matches exactly
    assert gt.match_image_id("123") == 1 and gt.match_image_id("000123") == 0
    assert gt.match_image_id("123.jpg") == 1 and gt.match_image_id("d/000123.jpg") == 0
    with pytest.raises(DataError, match=r"\[0\]: image_id 123 matches"):
        evaluate(gt, _perfect(gt, [123, "123", "c"]))


def test_rule_order_first_matching_rule_decides():
    # a file name rule beats a stem rule: image 1's stem is literally "c.jpg" (its file is c.jpg.png)
    gt = Dataset([ImageRecord("c", "/d/c.jpg", 10, 10), ImageRecord("c.jpg", "/d/c.jpg.png", 10, 10),
                  ImageRecord("7", "/d/7.jpg", 10, 10), ImageRecord("007", "/d/sub/007.jpg", 10, 10)],
                 ["x"], root="/d", format="csv")
    assert gt.match_image_id("c.jpg") == 0  # file name of image 0, before the stem of image 1
    assert gt.match_image_id("c.jpg.png") == 1
    assert gt.match_image_id("7") == 2  # stem rule, before the (ambiguous) integer rule
    assert gt.match_image_id("sub/007.jpg") == 3  # relative path
    with pytest.raises(DataError, match="by the integer form"):
        gt.match_image_id(7)
    # relative path to the dataset folder of a file-rooted set (CSV, COCO): the file's folder
    csv = Dataset([ImageRecord("a", "/data/set/imgs/a.png", 10, 10)], ["x"], root="/data/set/labels.csv", format="csv")
    assert csv.match_image_id("imgs/a.png") == 0
    assert csv._name_tables()["rel"] == {"imgs/a.png": [0]}


def test_unknown_ids_name_the_id_and_the_fix():
    gt = _voc_like(["a", "b"])
    with pytest.raises(DataError) as info:
        gt.match_image_id("ghost", "p.json", "[3]")
    assert str(info.value) == ("p.json: [3]: image_id 'ghost' is not in the ground truth (/data/voc); use the "
                               "image's file stem, file name or path relative to the dataset folder (an integer: "
                               "a numeric stem, or the COCO id when the ground truth is COCO), and check --gt "
                               "and --split")
    assert gt.index_of("ghost") is None
    with pytest.raises(DataError, match=r"image_id 5 is not in the ground truth \(/data/voc\): no image has this "
                                        r"number as its file stem; integer ids match numeric file stems \(123 for "
                                        r"000123.jpg\) and this ground truth has none: write the image's file stem"):
        gt.match_image_id(5)
    assert gt.index_of(10 ** 5000) is None  # a huge integer: not found, and the message stays short
    with pytest.raises(DataError, match=r"image_id <an integer of about 5001 digits> is not"):
        gt.match_image_id(10 ** 5000)


@pytest.mark.parametrize("value, problem", [
    (True, "image_id True is a boolean"), (False, "image_id False is a boolean"),
    (np.bool_(True), "image_id True is a boolean"), (1.0, "image_id 1.0 is a floating-point number"),
    (float("nan"), "image_id nan is a floating-point number"), (np.float32(2), "image_id 2.0 is a floating-point"),
    (None, "image_id None is a NoneType, not a string or an integer"),
    ({"id": 1}, r"image_id \{'id': 1\} is a dict, not a string"), ([1], r"image_id \[1\] is a list"),
])
def test_ids_of_other_types_are_refused(value, problem):
    for gt in (_voc_like(["1", "2"]), read_coco_like()):
        with pytest.raises(DataError, match=problem) as info:
            gt.match_image_id(value, "p.json", "[0]")
        assert info.value.kind == "malformed prediction"


def read_coco_like():
    return Dataset([ImageRecord("1", None, 10, 10, coco_id=2), ImageRecord("2", None, 10, 10, coco_id=1)], ["x"],
                   root="gt.json", format="coco")


# ------------------------------------------------------------- COCO ground truth: integers are its own ids only
def test_coco_ground_truth_integers_are_its_image_ids_only(tmp_path):
    src = Dataset([ImageRecord(s, None, 100, 100, [[10, 10, 50 + k, 60]], [k % 2], coco_id=cid)
                   for k, (s, cid) in enumerate([("000001", 501), ("000002", 77), ("000003", 9)])], ["cat", "dog"])
    write_coco(src, tmp_path / "gt.json")
    gt = read_coco(str(tmp_path / "gt.json"), require_images=False)
    assert gt.own_coco_ids and [r.coco_id for r in gt] == [501, 77, 9]
    assert [gt.match_image_id(v) for v in (501, np.int64(77), 9)] == [0, 1, 2]
    # the integer 1 is the numeric stem of 000001.jpg, but for COCO ground truth integers are COCO ids only
    with pytest.raises(DataError, match=r"image_id 1 is not a COCO image id of the ground truth \(.*gt.json\); "
                                        r"use the image's COCO id"):
        gt.match_image_id(1)
    # strings still go by the name rules, including the integer form of a numeric stem
    assert [gt.match_image_id(v) for v in ("000001", "000003", "3")] == [0, 2, 2]
    r = evaluate(gt, _perfect(gt, [501, 77, 9]))
    assert r["map50"] == pytest.approx(1.0, abs=1e-9)
    assert evaluate(gt, _perfect(gt, ["000001", "000002", "000003"])) == r


def test_coco_file_name_matches_when_the_images_are_not_found():
    # COCO read with require_images=False has no path; the annotation's file_name still names the image
    gt = Dataset([ImageRecord("000001", None, 10, 10, coco_id=5, file_name="train/000001.jpg"),
                  ImageRecord("b", "/elsewhere/b.png", 10, 10, coco_id=6, file_name="./val\\b.png")],
                 ["x"], root="/c/gt.json", format="coco")
    assert [gt.match_image_id(v) for v in ("train/000001.jpg", "000001.jpg", "run/000001.jpg", "1", 5)] == [0] * 5
    assert [gt.match_image_id(v) for v in ("val/b.png", "b.png", "b", 6)] == [1] * 4
    assert gt._name_tables()["rel"] == {"train/000001.jpg": [0], "val/b.png": [1]}


def test_own_coco_ids_follow_the_records_and_survive_subset_and_with_records():
    plain = Dataset([ImageRecord("a", None, 10, 10), ImageRecord("b", None, 10, 10)], ["x"])
    assert not plain.own_coco_ids and [r.coco_id for r in plain] == [1, 2]  # numbered by position only
    given = Dataset([ImageRecord("a", None, 10, 10, coco_id=40), ImageRecord("b", None, 10, 10, coco_id=30)], ["x"])
    assert given.own_coco_ids and given.match_image_id(30) == 1
    assert given.subset([1]).own_coco_ids and given.subset([1]).match_image_id(30) == 0
    assert given.with_records(list(given)).own_coco_ids
    voc = _voc_like(["000005", "000006", "000007"])
    sub = voc.subset([2, 0])
    assert not sub.own_coco_ids and [r.coco_id for r in sub] == [3, 1]
    assert sub.match_image_id(5) == 1 and sub.match_image_id(7) == 0  # stems, not the kept coco ids 3 and 1
    assert not voc.holdout_split(0.5)[1].own_coco_ids
    assert Dataset(list(given), ["x"], own_coco_ids=False).match_image_id("a") == 0


def test_tables_are_built_once_per_dataset_and_scale():
    n = 20000
    ds = Dataset([ImageRecord(f"{k:06d}", f"/v/JPEGImages/{k:06d}.jpg", 10, 10) for k in range(n)], ["x"],
                 root="/v", format="voc")
    assert ds._tables is None
    ds.match_image_id(5)
    tables = ds._tables
    assert [ds.match_image_id(k) for k in range(0, n, 997)] == list(range(0, n, 997))
    assert ds._tables is tables  # not rebuilt per lookup
    assert len(tables[2]["num"]) == n and len(tables[2]["rel"]) == n


def test_mapping_keys_naming_the_same_image_are_refused():
    gt = _voc_like(["000123", "b"])
    one = {"boxes": [[0, 0, 5, 5]], "labels": [0], "scores": [0.5]}
    with pytest.raises(DataError, match=r"predictions: image 123: names the same image as the key '000123'; give "
                                        r"the predictions of each image under one key"):
        read_predictions({"000123": one, 123: one}, gt)


# ------------------------------------------------------------- evaluate's iou_threshold and its result
@pytest.mark.parametrize("value, problem", [
    (float("nan"), "nan is not in"), (float("inf"), "inf is not in"), (-float("inf"), "-inf is not in"),
    (0, "0 is not in"), (0.0, "0.0 is not in"), (-1, "-1 is not in"), (1.5, "1.5 is not in"),
    (1 + 1e-12, "1.000000000001 is not in"), (10 ** 400, "<an integer of about 401 digits> is not in"), (True, "True is not a number"),
    ("0.5", "'0.5' is not a number"), (None, "None is not a number"), ([0.5], r"\[0.5\] is not a number"),
    (np.float64("nan"), "nan is not in"),
])
def test_bad_iou_thresholds_are_refused_before_reading_predictions(tmp_path, value, problem):
    gt = _voc_like(["a"])
    with pytest.raises(DataError, match=r"^evaluate: iou_threshold: " + problem + r".*; give an IoU threshold in "
                                        r"\(0, 1\], e.g. 0.5$"):
        evaluate(gt, str(tmp_path / "missing.json"), iou_threshold=value)  # not a missing-file error


def test_good_iou_thresholds_are_floats_in_the_result():
    gt = _voc_like(["a"])
    preds = _perfect(gt, ["a"])
    for value, want in ((1, 1.0), (np.float32(0.25), 0.25), (np.int64(1), 1.0), (1e-9, 1e-9)):
        r = evaluate(gt, preds, iou_threshold=value)
        assert type(r["iou_threshold"]) is float and r["iou_threshold"] == want
    assert evaluate(gt, preds, iou_threshold=1)["loc_accuracy"] == 1.0  # exact box: IoU 1 >= 1


def test_cli_evaluate_iou_nan_is_refused_and_writes_nothing(tmp_path, capsys):
    gt = _voc_like(["a"])
    write_coco(gt, tmp_path / "gt.json")
    (tmp_path / "p.json").write_text(json.dumps(_perfect(gt, ["a"])))
    for bad in ("nan", "inf", "1.5", "-1", "0"):
        assert main(["evaluate", "--gt", str(tmp_path / "gt.json"), "--pred", str(tmp_path / "p.json"),
                     "--iou", bad, "--out", str(tmp_path / "r.json")]) == 2
        err = capsys.readouterr().err.strip()  # refused by the command line before any file is read
        assert err.startswith("error: classic-loc evaluate: argument --iou: ") and "(0, 1]" in err
        assert "\n" not in err
        assert not (tmp_path / "r.json").exists()


def test_non_finite_ground_truth_built_in_python_is_refused():
    gt = Dataset([ImageRecord("a", None, 10, 10, [[0, 0, 5, 5], [0, 0, np.inf, 5]], [0, 0])], ["x"], root="mem")
    with pytest.raises(DataError, match=r"^mem: image 'a' box 1: ground-truth box \[0, 0, inf, 5\] is not finite"):
        evaluate(gt, [])
    huge = Dataset([ImageRecord("a", None, 10, 10, [[0, 0, 1e200, 1e200]], [0])], ["x"])
    with pytest.raises(DataError, match=r"ground truth: image 'a' box 0: .* too large"):
        evaluate(huge, [])
    inverted = Dataset([ImageRecord("a", None, 10, 10), ImageRecord("b", None, 10, 10, [[0, 0, 5, 5], [6, 0, 5, 5]],
                                                                    [0, 0])], ["x"])
    with pytest.raises(DataError, match=r"^ground truth: image 'b' box 1: ground-truth box \[6, 0, 5, 5\] is not "
                                        r"finite, inverted or too large; fix the annotation"):
        evaluate(inverted, [])
    point = Dataset([ImageRecord("a", None, 10, 10, [[5, 5, 5, 5]], [0])], ["x"])  # degenerate but allowed
    assert evaluate(point, [])["n_with_object"] == 1


def test_extreme_valid_boxes_give_finite_json():
    gt = _voc_like(["a", "b"])
    preds = [{"image_id": "a", "category_id": 1, "bbox": [-1e150, -1e150, 1e150, 1e150], "score": 1e308},
             {"image_id": "b", "category_id": 2, "bbox": [1e-300, 0, 1e-3, 1e-3], "score": -1e308}]
    r = evaluate(gt, preds, curves=True)
    text = json.dumps(r, allow_nan=False)  # raises on NaN or inf
    assert "NaN" not in text and math.isfinite(r["mean_iou"]) and r["mean_iou"] < 1e-200
    with pytest.raises(DataError, match=r"\[0\]: box .* too large \(its area is not a finite number\)"):
        evaluate(gt, [dict(preds[0], bbox=[0, 0, 1e200, 1e200])])
    with pytest.raises(DataError, match=r"\[0\]: box \[0, 0, 1e\+308, inf\] is not finite"):
        evaluate(gt, [dict(preds[0], bbox=[0, 0, 1e308, 1e308 * 10])])


def test_parity_with_pycocotools_for_integer_coco_ids_given_as_numpy_ints():
    pytest.importorskip("pycocotools")
    from test_evaluate import _pycocotools, _random_case

    gt, preds = _random_case(np.random.default_rng(7), ties=False)
    ours = evaluate(gt, [dict(p, image_id=np.int64(p["image_id"])) for p in preds])
    ref = _pycocotools(gt, preds)
    assert [ours["map"], ours["map50"], ours["map75"]] == pytest.approx(list(ref.stats[:3]), abs=1e-9)


def test_replace_keeps_records_valid_for_matching():
    gt = _voc_like(["000001"])
    moved = gt.with_records([replace(gt[0], path="/data/voc/other/000001.png")])
    assert moved.match_image_id("other/000001.png") == 0 and moved.match_image_id("000001.png") == 0
    with pytest.raises(DataError, match="not in the ground truth"):
        moved.match_image_id("JPEGImages/000001.jpg")  # full path and its last component 000001.jpg: neither


def test_coco_ground_truth_read_without_its_images_matches_file_names(tmp_path):
    from classic_loc.datasets import read_coco
    from classic_loc.evaluation import evaluate

    doc = {"images": [{"id": 0, "file_name": "train/000123.jpg", "width": 20, "height": 10}],
           "categories": [{"id": 3, "name": "cat"}],
           "annotations": [{"id": 1, "image_id": 0, "category_id": 3, "bbox": [2, 1, 8, 6]}]}
    (tmp_path / "gt.json").write_text(json.dumps(doc))
    gt = read_coco(str(tmp_path / "gt.json"), require_images=False)
    assert gt[0].coco_id == 0 and gt[0].file_name == "train/000123.jpg"  # id 0 is kept, not renumbered
    for image_id in ("train/000123.jpg", "000123.jpg", "000123", 0):
        preds = [{"image_id": image_id, "category_id": 3, "bbox": [2, 1, 8, 6], "score": 0.9}]
        assert evaluate(gt, preds)["map50"] == pytest.approx(1.0), image_id
    with pytest.raises(DataError, match="123"):  # a COCO ground truth: integers are its own ids only
        evaluate(gt, [{"image_id": 123, "category_id": 3, "bbox": [2, 1, 8, 6], "score": 0.9}])


def test_coco_ids_given_for_some_records_only_are_refused_and_pixels_need_a_file():
    with pytest.raises(ValueError, match="give it for all or none"):
        Dataset([ImageRecord("a", None, 10, 10, coco_id=0), ImageRecord("b", None, 10, 10)], ["cat"])
    ds = Dataset([ImageRecord("a", None, 10, 10)], ["cat"], root="gt.json")
    with pytest.raises(DataError, match=r"^gt.json: image 'a': the image has no file"):
        ds.image(0)


def test_two_ids_that_resolve_to_one_image_are_an_error_not_a_merge():
    # predict a/ b/ writes a/img.jpg and b/img.jpg; a ground truth holding one img.jpg must not take both
    gt = _voc_like(["img"])
    a, b = _perfect(gt, ["a/img.jpg"])[0], _perfect(gt, ["b/img.jpg"])[0]
    assert evaluate(gt, [a])["loc_accuracy"] == 1.0  # alone, the last part of the path matches
    with pytest.raises(DataError) as info:
        evaluate(gt, [a, dict(b, score=0.95)])
    assert str(info.value) == ("predictions: [1]: image_id 'b/img.jpg' names the same image (img) as image_id "
                               "'a/img.jpg' of result [0]; give each image one id (the images of two folders cannot "
                               "share one ground-truth image)")
    with pytest.raises(DataError, match=r"\[1\]: image_id 'img.jpg' names the same image \(img\) as image_id "
                                         r"'a/img.jpg' of result \[0\]"):
        evaluate(gt, [a, dict(a, image_id="img.jpg")])  # a direct match and a last-part match: refused too
    # the same id many times, and two exact spellings of one image, are one image
    many = [dict(a, bbox=[10, 10, 40, 50 - k]) for k in range(3)]
    assert len(read_predictions(many, gt)[0].boxes) == 3
    numbered = _voc_like(["000123"])
    p = _perfect(numbered, [123])[0]
    both = [p, dict(p, image_id=np.int64(123)), dict(p, image_id="000123.jpg"), dict(p, image_id="000123")]
    assert len(read_predictions(both, numbered)[0].boxes) == 4
