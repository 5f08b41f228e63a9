"""Fuzz targets for the predictions reader (classic_loc.evaluation), see tests/test_fuzz_predictions.py.

``TARGETS = {"predictions_json": ..., "predictions_mapping": ...}``: each example is scored by
``evaluate`` against one of two small fixed in-memory ground truths (3 images, 2 classes, no image
files are read): a VOC-like one (integer ids are numeric stems) and a COCO one read without its
images (path None, file_name kept; integer ids are its own COCO ids).
``run`` returns for a valid result (whose JSON must then be finite), raises DataError for a refusal.
Imported by benchmarks/fuzz.py, which runs 10,000 examples of each.
"""

import json
import types

import numpy as np
from hypothesis import strategies as st

from classic_loc.datasets import Dataset, ImageRecord
from classic_loc.evaluation import evaluate

_BOXES = ([[10, 10, 50, 60], [60, 20, 90, 40]], [[5, 5, 30, 30]], [])
_STEMS = ("000007", "cat_img", "000123")


def _ground_truths():
    def records(coco):
        return [ImageRecord(stem, None if coco else f"gt/JPEGImages/{stem}.jpg", 100, 100, boxes, [k % 2] * len(boxes),
                            coco_id=(101 + 10 * k) if coco else None, file_name=f"train/{stem}.jpg" if coco else None)
                for k, (stem, boxes) in enumerate(zip(_STEMS, _BOXES))]

    return {"voc": Dataset(records(False), ["cat", "dog"], root="gt", format="voc"),
            "coco": Dataset(records(True), ["cat", "dog"], category_ids=[3, 8], root="gt.json", format="coco")}


GT = _ground_truths()
GOOD_IDS = {"voc": list(_STEMS) + [7, 123, "7", "000007.jpg", "run/a/000123.jpg", "cat_img.jpg", np.int64(123)],
            "coco": list(_STEMS) + [101, 111, 121, "train/000123.jpg", "000007.jpg", "7", np.int32(111)]}
GOOD_CATS = {"voc": [1, 2, "cat", "dog"], "coco": [3, 8, "cat", "dog"]}
ANY_IDS = sorted({repr(v): v for ids in GOOD_IDS.values() for v in ids}.values(), key=repr)

_odd_text = st.sampled_from(["", "\x00", "a\x00b", "\u202e", "\ud7ff", "\U0001f600", "é" * 3, "../..", "/", "\\",
                             "NaN", "Infinity", "1e999", "0", "-1", " 7 ", "7.0", "0x7", "٣", "²"])
_numbers = st.one_of(
    st.integers(), st.integers(min_value=-(10 ** 400), max_value=10 ** 400), st.floats(),
    st.sampled_from([0, -0.0, 1e-300, 5e-324, 1e308, -1e308, 1.7976931348623157e308, 10 ** 30, 2 ** 63, -2 ** 63,
                     float("nan"), float("inf"), float("-inf")]))
_scalars = st.one_of(st.none(), st.booleans(), _numbers, st.text(max_size=12), _odd_text)
_ious = st.integers(0, 9).flatmap(lambda k: st.one_of(st.floats(), st.integers(-2, 2), _scalars) if k == 0
                                   else st.sampled_from([0.5, 0.75, 1, 0.1]) if k < 8 else st.floats(1e-6, 1))
json_values = st.recursive(_scalars, lambda kids: st.one_of(
    st.lists(kids, max_size=5), st.dictionaries(st.text(max_size=8), kids, max_size=4)), max_leaves=12)


@st.composite
def valid_results(draw, gt, max_size=8):
    """A valid COCO results list for ground truth ``gt`` (now and then an id or category of the other one)."""
    ids, cats = GOOD_IDS[gt], GOOD_CATS[gt]
    if draw(st.integers(0, 19)) == 0:
        ids, cats = ANY_IDS, GOOD_CATS["voc"] + GOOD_CATS["coco"]
    out = []
    for _ in range(draw(st.integers(0, max_size))):
        x, y = draw(st.floats(-20, 120)), draw(st.floats(-20, 120))
        w, h = draw(st.floats(0.5, 80)), draw(st.floats(0.5, 80))
        out.append({"image_id": draw(st.sampled_from(ids)), "category_id": draw(st.sampled_from(cats)),
                    "bbox": [x, y, w, h], "score": draw(st.floats(0, 1))})
    return out


def _json_safe(value):
    return int(value) if isinstance(value, np.integer) else value


@st.composite
def mutated_results(draw, gt):
    """A valid list with one field, entry or the whole list replaced, extra keys, or deep nesting."""
    results = [{k: _json_safe(v) for k, v in r.items()} for r in draw(valid_results(gt))]
    kind = draw(st.sampled_from(["field", "field", "entry", "extra", "drop", "deep", "whole", "none"]))
    if results and kind in ("field", "entry", "extra", "drop", "deep"):
        k = draw(st.integers(0, len(results) - 1))
        key = draw(st.sampled_from(["image_id", "category_id", "bbox", "score"]))
        if kind == "field":
            results[k][key] = draw(st.one_of(json_values, st.lists(_numbers, min_size=4, max_size=4)))
        elif kind == "entry":
            results[k] = draw(json_values)
        elif kind == "extra":
            results[k].update(draw(st.dictionaries(st.text(max_size=6), json_values, max_size=3)))
        elif kind == "drop":
            del results[k][key]
        else:
            results[k][key] = "__DEEP__"
    elif kind == "whole":
        results = draw(json_values)
    return results


def _to_text(value, depth):
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (ValueError, TypeError):  # an integer too long for str(): write it by hand
        text = "[1" + "0" * 5000 + "]"
    return text.replace('"__DEEP__"', "[" * depth + "1" + "]" * depth)


@st.composite
def prediction_files(draw):
    """(ground truth name, iou_threshold, file bytes) for predictions_json."""
    gt = draw(st.sampled_from(sorted(GT)))
    iou = draw(_ious)
    depth = draw(st.sampled_from([2, 50, 3000, 20000]))
    data = _to_text(draw(mutated_results(gt)), depth).encode("utf-8", "surrogatepass")
    how = draw(st.sampled_from(["as is"] * 5 + ["flip", "truncate", "prefix", "random"]))
    if how == "flip" and data:
        data = bytearray(data)
        for _ in range(draw(st.integers(1, 4))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        data = bytes(data)
    elif how == "truncate":
        data = data[:draw(st.integers(0, len(data)))]
    elif how == "prefix":
        data = draw(st.sampled_from([b"\xef\xbb\xbf", b"\xff\xfe", b"  ", b"\x00"])) + data
    elif how == "random":
        data = draw(st.binary(max_size=64))
    return gt, iou, data


def run_json(example, workdir):
    gt, iou, data = example
    path = workdir / "predictions.json"
    path.write_bytes(data)
    _check(evaluate(GT[gt], str(path), iou_threshold=iou))


# ------------------------------------------------------------- the mapping form
def _arrays(n):
    """Arrays and array-likes of every dtype and shape, about ``n`` long."""
    shapes = st.sampled_from([(n,), (n, 4), (4,), (n, 5), (n, 2, 2), (0,), (0, 4), (), (1, 1, 4), (n, 0)])
    dtypes = st.sampled_from([np.float64, np.float32, np.float16, np.int64, np.uint8, np.int8, bool, complex,
                              "U5", "S3", object, "datetime64[s]"])

    @st.composite
    def array(draw):
        shape, dtype = draw(shapes), draw(dtypes)
        size = int(np.prod(shape))
        if dtype is object:
            flat = draw(st.lists(st.one_of(_numbers, _scalars), min_size=size, max_size=size))
            arr = np.empty(size, dtype=object)
            arr[:] = flat
            return arr.reshape(shape)
        values = draw(st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=size, max_size=size))
        return np.asarray(values).reshape(shape).astype(dtype)

    return st.one_of(array(), json_values, st.lists(st.lists(_numbers, min_size=4, max_size=4), max_size=n + 1))


@st.composite
def valid_mapping_entry(draw):
    """{"boxes", "labels", "scores"} of a few valid boxes, as lists or arrays."""
    n = draw(st.integers(0, 4))
    boxes = []
    for _ in range(n):
        x, y = draw(st.floats(-20, 120)), draw(st.floats(-20, 120))
        boxes.append([x, y, x + draw(st.floats(0.5, 80)), y + draw(st.floats(0.5, 80))])
    labels = draw(st.lists(st.sampled_from([0, 1, "cat", "dog"]), min_size=n, max_size=n))
    scores = draw(st.lists(st.floats(0, 1), min_size=n, max_size=n))
    as_array = draw(st.booleans())
    if as_array:
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        labels = np.asarray(labels) if labels else np.zeros(0, dtype=np.int64)
        scores = np.asarray(scores, dtype=draw(st.sampled_from([np.float64, np.float32])))
    return {"boxes": boxes, "labels": labels, "scores": scores}


@st.composite
def prediction_mappings(draw):
    """(ground truth name, iou_threshold, mapping) for predictions_mapping."""
    gt = draw(st.sampled_from(sorted(GT)))
    iou = draw(_ious)
    good = st.sampled_from(GOOD_IDS[gt])
    keys = draw(st.lists(st.one_of(good, good, good, _scalars, st.tuples(st.integers())), max_size=4, unique_by=repr))
    mapping = {}
    for key in keys:
        try:
            hash(key)
        except TypeError:
            continue
        entry = draw(valid_mapping_entry())
        kind = draw(st.sampled_from(["valid", "valid", "field", "missing", "object", "object missing", "random"]))
        if kind == "field":
            entry[draw(st.sampled_from(["boxes", "labels", "scores"]))] = draw(_arrays(draw(st.integers(0, 3))))
        elif kind == "missing":
            del entry[draw(st.sampled_from(["boxes", "labels", "scores"]))]
        elif kind == "object":
            entry = types.SimpleNamespace(**entry)
        elif kind == "object missing":
            del entry[draw(st.sampled_from(["boxes", "labels", "scores"]))]
            entry = types.SimpleNamespace(**entry)
        elif kind == "random":
            entry = draw(json_values)
        mapping[key] = entry
    if draw(st.integers(0, 9)) == 0:
        return gt, iou, draw(st.one_of(json_values, st.builds(object)))  # not a mapping at all
    return gt, iou, mapping


def run_mapping(example, workdir):
    gt, iou, mapping = example
    _check(evaluate(GT[gt], mapping, iou_threshold=iou))


def _check(result):
    json.dumps(result, allow_nan=False)  # a ValueError here (NaN or inf in the result) is a crash


TARGETS = {
    "predictions_json": (prediction_files(), run_json),
    "predictions_mapping": (prediction_mappings(), run_mapping),
}
