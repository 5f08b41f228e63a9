import json
import os
import warnings

import cv2
import numpy as np
import pytest

from classic_loc import load_dataset
from classic_loc.datasets import Dataset, ImageRecord, detect_format, read_coco, read_voc, write_coco, write_voc
from classic_loc.errors import DataError, DataWarning
from classic_loc.images import read_image

# the counts in ../shared/data/README.md: images, boxes, difficult, empty images, per class
SHARED_COUNTS = {
    ("caltech101_subset", "train"): (1422, 1422, 0, 0, {"airplane": 559, "face": 304, "motorcycle": 559}),
    ("caltech101_subset", "test"): (610, 610, 0, 0, {"airplane": 240, "face": 131, "motorcycle": 239}),
    ("pennfudan", "train"): (119, 311, 56, 0, {"person": 311}),
    ("pennfudan", "test"): (51, 112, 22, 0, {"person": 112}),
    ("cmu_mit_faces", "train"): (91, 358, 0, 9, {"face": 358}),
    ("cmu_mit_faces", "test"): (39, 153, 0, 4, {"face": 153}),
}


@pytest.mark.parametrize("name, split", list(SHARED_COUNTS))
def test_shared_sets_load_with_their_readme_counts(shared_data, name, split):
    ds = load_dataset(shared_data / name, split=split)
    c = ds.counts()
    assert (c["images"], c["boxes"], c["difficult"], c["empty_images"], c["per_class"]) == SHARED_COUNTS[name, split]
    assert ds.format == "voc"
    for r in ds:
        assert np.all(r.boxes[:, 2] > r.boxes[:, 0]) and np.all(r.boxes[:, :2] >= 0)
        assert np.all(r.boxes[:, 2] <= r.width) and np.all(r.boxes[:, 3] <= r.height)


def test_shared_split_images_are_disjoint_and_decode(shared_data):
    train = load_dataset(shared_data / "pennfudan", split="train")
    test = load_dataset(shared_data / "pennfudan", split="test")
    assert not {r.image_id for r in train} & {r.image_id for r in test}
    img = test.image(0)
    assert img.shape[:2] == (test[0].height, test[0].width) and img.dtype == np.uint8


# ------------------------------------------------------------- a tiny VOC folder
def make_voc(root, objects_xml, image_id="img1", size=(40, 30), filename=None, classes=("cat", "dog"),
             split_ids=None):
    (root / "Annotations").mkdir(parents=True, exist_ok=True)
    (root / "JPEGImages").mkdir(exist_ok=True)
    (root / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
    w, h = size
    cv2.imwrite(str(root / "JPEGImages" / f"{image_id}.jpg"), np.full((h, w, 3), 128, np.uint8))
    (root / "Annotations" / f"{image_id}.xml").write_text(
        f"<annotation><filename>{filename or image_id + '.jpg'}</filename>"
        f"<size><width>{w}</width><height>{h}</height><depth>3</depth></size>{objects_xml}</annotation>")
    (root / "ImageSets" / "Main" / "train.txt").write_text("\n".join(split_ids or [image_id]) + "\n")
    if classes:
        (root / "classes.txt").write_text("\n".join(classes) + "\n")
    return root


def obj(name, xmin, ymin, xmax, ymax, difficult=0):
    return (f"<object><name>{name}</name><difficult>{difficult}</difficult><bndbox><xmin>{xmin}</xmin>"
            f"<ymin>{ymin}</ymin><xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox></object>")


def test_voc_pixels_become_continuous_coordinates(tmp_path):
    make_voc(tmp_path, obj("dog", 1, 1, 10, 20) + obj("cat", 5, 6, 40, 30, difficult=1))
    ds = read_voc(tmp_path, "train")
    r = ds[0]
    assert ds.classes == ("cat", "dog")
    assert r.boxes.tolist() == [[0, 0, 10, 20], [4, 5, 40, 30]]  # (xmin-1, ymin-1, xmax, ymax)
    assert r.labels.tolist() == [1, 0] and r.difficult.tolist() == [False, True]
    assert (r.width, r.height, r.coco_id) == (40, 30, 1)


def test_voc_and_coco_round_trips(tmp_path):
    for name in ("src", "empty"):
        cv2.imwrite(str(tmp_path / f"{name}.png"), np.zeros((50, 60), np.uint8))
    recs = [ImageRecord("src", str(tmp_path / "src.png"), 60, 50, [[0, 0, 10, 20], [2.5, 3.25, 59.5, 50]], [1, 0],
                        difficult=[True, False]),
            ImageRecord("empty", str(tmp_path / "empty.png"), 60, 50, [], [])]
    ds = Dataset(recs, ["cat", "dog"], category_ids=[3, 7])
    write_voc(ds, tmp_path / "voc", split="val")
    back = read_voc(tmp_path / "voc", "val")
    assert back.classes == ds.classes and [r.image_id for r in back] == ["src", "empty"]
    for a, b in zip(ds, back):
        np.testing.assert_array_equal(a.boxes, b.boxes)
        np.testing.assert_array_equal(a.labels, b.labels)
        np.testing.assert_array_equal(a.difficult, b.difficult)
    write_coco(ds, tmp_path / "gt.json")
    doc = json.loads((tmp_path / "gt.json").read_text())
    assert doc["annotations"][0]["bbox"] == [0, 0, 10, 20] and doc["annotations"][0]["category_id"] == 7
    assert [c["id"] for c in doc["categories"]] == [3, 7]
    coco = read_coco(tmp_path / "gt.json", require_images=False)
    assert coco.classes == ds.classes and coco.category_ids == (3, 7)
    for a, b in zip(ds, coco):
        np.testing.assert_array_equal(a.boxes, b.boxes)
        np.testing.assert_array_equal(a.difficult, b.difficult)
        assert a.coco_id == b.coco_id and not b.crowd.any()


def test_load_dataset_detects_formats(tmp_path):
    make_voc(tmp_path / "v", obj("cat", 1, 1, 5, 5))
    assert detect_format(tmp_path / "v") == "voc"
    ds = load_dataset(tmp_path / "v", split="train")
    write_coco(ds, tmp_path / "v" / "JPEGImages" / "gt.json")  # images next to the json
    assert detect_format(tmp_path / "v" / "JPEGImages" / "gt.json") == "coco"
    coco = load_dataset(tmp_path / "v" / "JPEGImages" / "gt.json")
    assert coco[0].path.endswith("img1.jpg") and coco.image(0).shape == (30, 40, 3)
    (tmp_path / "nothing").mkdir()
    with pytest.raises(DataError, match="cannot tell the dataset format; pass format="):
        load_dataset(tmp_path / "nothing")
    with pytest.raises(DataError, match="no such file or folder"):
        load_dataset(tmp_path / "missing")


# ------------------------------------------------------------- bad VOC input
def _raises(root, match, **kw):
    with pytest.raises(DataError, match=match) as info:
        read_voc(root, "train", **kw)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_voc_bad_boxes(tmp_path):
    make_voc(tmp_path / "a", obj("cat", 10, 1, 9, 5))  # inclusive pixels: xmax = xmin - 1 is empty
    _raises(tmp_path / "a", r"img1.xml: object 1 \(cat\): box .* has x2 <= x1; fix the coordinates")
    make_voc(tmp_path / "b", obj("cat", 1, 1, 41, 5))
    _raises(tmp_path / "b", r"img1.xml: object 1 \(cat\): box .* lies outside the 40x30 image; clip the box")
    make_voc(tmp_path / "c", obj("cat", 1, "x", 4, 5))
    _raises(tmp_path / "c", r"img1.xml: object 1: <ymin> is 'x', not a number; write a number")


def test_voc_unknown_class_malformed_xml_and_entities(tmp_path):
    make_voc(tmp_path / "a", obj("bird", 1, 1, 5, 5))
    _raises(tmp_path / "a", r"img1.xml: object 1: unknown class name 'bird'; use one of the dataset's classes \(cat, dog\)")
    make_voc(tmp_path / "b", obj("cat", 1, 1, 5, 5))
    (tmp_path / "b" / "Annotations" / "img1.xml").write_text("<annotation><size>")
    _raises(tmp_path / "b", r"img1.xml: malformed XML .*; fix or regenerate")
    make_voc(tmp_path / "c", obj("cat", 1, 1, 5, 5))
    (tmp_path / "c" / "Annotations" / "img1.xml").write_text(
        '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
        "<annotation><filename>&lol2;</filename></annotation>")
    _raises(tmp_path / "c", r"img1.xml: the XML uses a forbidden construct .*; remove DTDs and entity")


def test_voc_paths_cannot_leave_the_dataset(tmp_path):
    (tmp_path / "secret.jpg").write_bytes(b"x")
    make_voc(tmp_path / "a", obj("cat", 1, 1, 5, 5), filename="../../secret.jpg")
    _raises(tmp_path / "a", r"<filename>: image file name '../../secret.jpg' points outside the dataset folder")
    make_voc(tmp_path / "b", obj("cat", 1, 1, 5, 5), filename="/etc/passwd")
    _raises(tmp_path / "b", r"image file name '/etc/passwd' is empty or absolute; give the image path relative")


def test_voc_missing_images_splits_and_duplicates(tmp_path):
    make_voc(tmp_path / "a", obj("cat", 1, 1, 5, 5))
    (tmp_path / "a" / "JPEGImages" / "img1.jpg").unlink()
    _raises(tmp_path / "a", r"img1.xml: image 'img1': image file .*img1.jpg is missing; add the image")
    make_voc(tmp_path / "b", obj("cat", 1, 1, 5, 5), split_ids=["img1", "img1"])
    _raises(tmp_path / "b", r"train.txt: image 'img1': duplicate image id; give every image a unique")
    make_voc(tmp_path / "c", obj("cat", 1, 1, 5, 5), split_ids=["img1", "img2"])
    _raises(tmp_path / "c", r"img2.xml: cannot read the annotation .*; add the XML file or remove the id")
    with pytest.raises(DataError, match=r"test.txt: no split 'test'; choose one of \['train'\]"):
        read_voc(tmp_path / "a", "test")


def test_skip_bad_turns_errors_into_a_counted_warning(tmp_path):
    make_voc(tmp_path, obj("cat", 1, 1, 5, 5) + obj("cat", 9, 1, 3, 5) + obj("bird", 1, 1, 5, 5) + obj("dog", 1, 1, 50, 5))
    with pytest.warns(DataWarning, match=r"skipped 1 bad box, 1 box outside image, 1 unknown class \(first: .*x2 <= x1"):
        ds = read_voc(tmp_path, "train", skip_bad=True)
    assert ds[0].boxes.tolist() == [[0, 0, 5, 5]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_voc(tmp_path / "ok", obj("cat", 1, 1, 5, 5))
        read_voc(tmp_path / "ok", "train", skip_bad=True)  # nothing skipped: no warning


# ------------------------------------------------------------- bad COCO input
def _coco(tmp_path, **changes):
    doc = {"images": [{"id": 1, "file_name": "a.jpg", "width": 40, "height": 30}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 5, "bbox": [1, 2, 10, 10], "iscrowd": 0}],
           "categories": [{"id": 5, "name": "cat"}]}
    doc.update(changes)
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize("changes, message", [
    ({"annotations": [{"id": 1, "image_id": 9, "category_id": 5, "bbox": [1, 2, 3, 4]}]},
     r"annotations\[0\]: image_id 9 is not in 'images'; add the image"),
    ({"annotations": [{"id": 1, "image_id": 1, "category_id": 6, "bbox": [1, 2, 3, 4]}]},
     r"annotations\[0\]: category_id 6 is not in 'categories'; use one of \[5\]"),
    ({"annotations": [{"id": 1, "image_id": 1, "category_id": 5, "bbox": [1, 2, 3]}]},
     r"annotations\[0\]: bbox \[1, 2, 3\] is not 4 numbers"),
    ({"annotations": [{"id": 1, "image_id": 1, "category_id": 5, "bbox": [1, 2, 0, 4]}]},
     r"annotations\[0\]: box .* has x2 <= x1"),
    ({"images": [{"id": 1, "file_name": "a.jpg", "width": 40, "height": 30},
                 {"id": 1, "file_name": "b.jpg", "width": 40, "height": 30}]},
     r"image 1: duplicate image id"),
    ({"images": [{"id": 1, "file_name": "a.jpg"}]}, r"images\[0\] \(a.jpg\): missing or non-positive width/height"),
    ({"categories": "cat"}, r"gt.json: missing or non-list 'categories'"),
])
def test_coco_bad_annotations(tmp_path, changes, message):
    with pytest.raises(DataError, match=message):
        read_coco(_coco(tmp_path, **changes), require_images=False)


def test_coco_images_are_required_unless_evaluating(tmp_path):
    path = _coco(tmp_path)
    with pytest.raises(DataError, match=r"gt.json: cannot find the folder holding the images .*; put the images"):
        read_coco(path)
    ds = read_coco(path, require_images=False)
    assert ds[0].boxes.tolist() == [[1, 2, 11, 12]] and ds[0].path is None and ds.category_ids == (5,)
    (tmp_path / "gt.json").write_text('{"images": [')
    with pytest.raises(DataError, match=r"gt.json: line 1 column \d+: malformed JSON"):
        read_coco(tmp_path / "gt.json", require_images=False)


def test_undecodable_and_missing_images(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match=r"bad.jpg: cannot decode the image; replace it"):
        read_image(bad)
    with pytest.raises(DataError, match=r"nothere.jpg: cannot read the image"):
        read_image(tmp_path / "nothere.jpg")
    gray = tmp_path / "g.png"
    cv2.imwrite(str(gray), np.arange(12, dtype=np.uint8).reshape(3, 4))
    assert read_image(gray).shape == (3, 4)
    rgb = tmp_path / "c.png"
    bgr = np.zeros((2, 2, 3), np.uint8)
    bgr[..., 0] = 255  # blue in OpenCV's BGR order
    cv2.imwrite(str(rgb), bgr)
    assert read_image(rgb)[0, 0].tolist() == [0, 0, 255]  # RGB order in the package


def test_data_errors_survive_pickling_so_worker_processes_report_them():
    import pickle

    from classic_loc.errors import DataError, ModelFileError

    for cls in (DataError, ModelFileError):
        err = cls("a/b.jpg", "object 2", "cannot decode the image", "replace the file", kind="undecodable image")
        back = pickle.loads(pickle.dumps(err))
        assert type(back) is cls
        assert str(back) == str(err) == "a/b.jpg: object 2: cannot decode the image; replace the file"
        assert (back.file, back.item, back.problem, back.fix, back.kind) == (
            "a/b.jpg", "object 2", "cannot decode the image", "replace the file", "undecodable image")


def test_a_coco_file_apart_from_its_images(voc, tmp_path, capsys):
    """An instances JSON kept in another folder than its images: image_root (--images) says where they are."""
    from classic_loc.cli import main

    test = load_dataset(voc, split="test")
    ann = tmp_path / "annotations" / "instances_test.json"
    write_coco(test, ann)
    with pytest.raises(DataError, match="cannot find the folder holding the images"):
        load_dataset(ann)
    got = load_dataset(ann, image_root=voc / "JPEGImages")
    assert [r.image_id for r in got] == [r.image_id for r in test]
    assert all(os.path.samefile(a.path, b.path) for a, b in zip(got, test))
    with pytest.raises(DataError, match=r"an image folder is given for a voc data set; give --images"):
        load_dataset(voc, split="test", image_root=voc / "JPEGImages")
    with pytest.raises(DataError, match="no such folder of images"):
        load_dataset(ann, image_root=tmp_path / "nowhere")
    preds = tmp_path / "p.json"
    preds.write_text("[]")
    assert main(["evaluate", "--gt", str(ann), "--images", str(voc / "JPEGImages"), "--pred", str(preds),
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_images"] == len(test)
