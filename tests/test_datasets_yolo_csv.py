"""The YOLO and CSV readers: layouts, exact box conversion, and every user-data error."""

import os
import re

import cv2
import numpy as np
import pytest

from classic_loc.datasets import load_dataset
from classic_loc.datasets.csvfile import read_csv
from classic_loc.datasets.yolo import read_yolo
from classic_loc.errors import DataError, DataWarning


def _image(path, width=64, height=48):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    assert cv2.imwrite(str(path), np.zeros((height, width, 3), np.uint8))


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def _error(fn, *args, **kwargs):
    """The DataError raised by ``fn``, checked to be a single line."""
    with pytest.raises(DataError) as info:
        fn(*args, **kwargs)
    assert "\n" not in str(info.value)
    return info.value


def _skipped(fn, *args, count=1, **kwargs):
    """``fn(..., skip_bad=True)``, checked to warn that ``count`` items were skipped."""
    with pytest.warns(DataWarning, match=rf"skipped {count} ") as record:
        result = fn(*args, skip_bad=True, **kwargs)
    assert len(record) == 1
    return result


# ----------------------------------------------------------------------------- YOLO

def _yolo(root, labels, split="train", classes="cat\ndog\n", sizes=None):
    """images/<split>/<stem>.jpg (64x48) with labels/<split>/<stem>.txt; a label of None writes no file."""
    sub = split or ""
    for stem, text in labels.items():
        _image(os.path.join(root, "images", sub, stem + ".jpg"), *(sizes or {}).get(stem, (64, 48)))
        if text is not None:
            _write(os.path.join(root, "labels", sub, stem + ".txt"), text)
    os.makedirs(os.path.join(root, "labels", sub), exist_ok=True)
    if classes is not None:
        _write(os.path.join(root, "classes.txt"), classes)
    return root


def test_yolo_split_folders_exact_boxes(tmp_path):
    _yolo(tmp_path, {"c": "", "a": "0 0.5 0.5 0.25 0.5\n1 0.25 0.75 0.5 0.5\n", "b": None})
    ds = read_yolo(tmp_path)
    assert [r.image_id for r in ds] == ["a", "b", "c"]
    assert [r.coco_id for r in ds] == [1, 2, 3]
    assert ds.classes == ("cat", "dog") and ds.format == "yolo"
    a = ds[0]
    assert (a.width, a.height) == (64, 48)
    assert a.boxes.tolist() == [[24.0, 12.0, 40.0, 36.0], [0.0, 24.0, 32.0, 48.0]]
    assert a.labels.tolist() == [0, 1]
    assert ds[1].n_objects == 0 and ds[2].n_objects == 0
    assert a.path == os.path.join(str(tmp_path), "images", "train", "a.jpg")


def test_yolo_uses_each_image_size(tmp_path):
    _yolo(tmp_path, {"a": "0 0.5 0.5 0.5 0.5\n"}, sizes={"a": (100, 20)})
    assert read_yolo(tmp_path)[0].boxes.tolist() == [[25.0, 5.0, 75.0, 15.0]]


def test_yolo_exporter_rounding_is_clipped(tmp_path):
    _yolo(tmp_path, {"a": "0 0.9 0.5 0.200001 1.000001\n"})
    assert read_yolo(tmp_path)[0].boxes[0].tolist() == pytest.approx([51.2, 0.0, 64.0, 48.0])


def test_yolo_flat_layout_with_split_file(tmp_path):
    _yolo(tmp_path, {"a": "0 0.5 0.5 0.25 0.5\n", "b": "1 0.5 0.5 0.5 0.5\n", "c": None}, split=None)
    _write(tmp_path / "val.txt", "images/c.jpg\n\nb.jpg\n./images/a.jpg\n")
    _write(tmp_path / "train.txt", "a\n")
    assert [r.image_id for r in read_yolo(tmp_path, "val")] == ["a", "b", "c"]
    train = read_yolo(tmp_path, "train")
    assert [r.image_id for r in train] == ["a"] and train[0].boxes.tolist() == [[24.0, 12.0, 40.0, 36.0]]
    everything = read_yolo(tmp_path, split=None)
    assert [r.image_id for r in everything] == ["a", "b", "c"]
    assert everything.counts()["per_class"] == {"cat": 1, "dog": 1}


def test_yolo_split_file_mirrors_image_folders_in_labels(tmp_path):
    _yolo(tmp_path, {"a": "1 0.5 0.5 0.25 0.5\n"}, split="2017")
    _write(tmp_path / "train.txt", "./images/2017/a.jpg\n")
    ds = read_yolo(tmp_path, "train")
    assert ds[0].labels.tolist() == [1]


def test_yolo_orphan_label_files_are_ignored(tmp_path):
    _yolo(tmp_path, {"a": "0 0.5 0.5 0.25 0.5\n"})
    _write(tmp_path / "labels" / "train" / "ghost.txt", "0 0.5 0.5 0.25 0.5\n")
    assert [r.image_id for r in read_yolo(tmp_path)] == ["a"]


def test_yolo_split_none_with_split_folders_asks_for_a_split(tmp_path):
    _yolo(tmp_path, {"a": ""})
    err = _error(read_yolo, tmp_path, split=None)
    assert "images" in err.file and "split='train'" in str(err)


def test_yolo_unknown_split_lists_the_available_ones(tmp_path):
    _yolo(tmp_path, {"a": ""})
    with pytest.raises(DataError, match=r"no split 'val'.*choose one of \['train'\]"):
        read_yolo(tmp_path, "val")
    _yolo(tmp_path / "flat", {"a": ""}, split=None)
    with pytest.raises(DataError, match=r"no split 'val'.*pass split=None"):
        read_yolo(tmp_path / "flat", "val")


def test_yolo_missing_folders(tmp_path):
    with pytest.raises(DataError, match=r"images: no images folder; put the images in images/<split>/"):
        read_yolo(tmp_path, classes=["cat"])
    _image(tmp_path / "images" / "train" / "a.jpg")
    with pytest.raises(DataError, match=r"labels.train: no labels folder; put one <image stem>.txt"):
        read_yolo(tmp_path, classes=["cat"])


def test_yolo_classes_from_obj_names_and_argument(tmp_path):
    _yolo(tmp_path, {"a": "1 0.5 0.5 0.25 0.5\n"}, classes=None)
    _write(tmp_path / "obj.names", "person\ncar\n")
    assert read_yolo(tmp_path).classes == ("person", "car")
    assert read_yolo(tmp_path, classes=["x", "y"]).classes == ("x", "y")


def test_yolo_without_class_list(tmp_path):
    _yolo(tmp_path, {"a": ""}, classes=None)
    err = _error(read_yolo, tmp_path)
    assert err.kind == "missing classes" and "add classes.txt" in str(err) and "pass classes" in str(err)


@pytest.mark.parametrize("text", [
    "path: .\ntrain: images/train\nnames:\n  - cat\n  - 'dog'  # a comment\n  - \"hot dog\"\nnc: 3\n",
    "names:\n- cat\n- dog\n- hot dog\n",
    "nc: 3\nnames: ['cat', \"dog\", hot dog]  # inline\n",
    "names: [cat,\n        dog,\n        'hot dog']\nval: x\n",
    "names:\n  1: dog\n  0: cat\n  2: 'hot dog'\nval: y\n",
    "names: {0: cat, 1: dog, 2: hot dog}\n",
], ids=["block", "block-column-0", "inline", "inline-multiline", "mapping", "flow-mapping"])
def test_yolo_data_yaml_names(tmp_path, text):
    _yolo(tmp_path, {"a": "2 0.5 0.5 0.25 0.5\n"}, classes=None)
    _write(tmp_path / "data.yaml", text)
    ds = read_yolo(tmp_path)
    assert ds.classes == ("cat", "dog", "hot dog") and ds[0].labels.tolist() == [2]


_NAMES = "write names: as a list"
_SYNTAX = r"fix the YAML \(an Ultralytics data\.yaml"


@pytest.mark.parametrize("text, problem, fix", [
    ("nc: 2\n", "no 'names:' entry", _NAMES),
    ("names:\n  0: cat\n  2: dog\n", "names: is not a list nor a mapping", _NAMES),
    ("names: 5\n", "cannot read names: 5", _NAMES),
    ("names: [cat, dog\n", r"line 2: is not valid YAML: expected ',' or ']'", _SYNTAX),
    ("names: []\n", "no class names", _NAMES),
    ("names: [cat, '']\n", "an empty one", _NAMES),
    ("nc: 3\nnames: [cat, dog]\n", "nc: says 3 classes but names: has 2", "make nc the number of names"),
    ("- cat\n- dog\n", "is not a YAML mapping", _SYNTAX),
    ("names: [cat]\ntrain: !!python/object:os.system ls\n", "is not valid YAML", _SYNTAX),  # safe loader only
])
def test_yolo_bad_data_yaml(tmp_path, text, problem, fix):
    _yolo(tmp_path, {"a": ""}, classes=None)
    _write(tmp_path / "data.yaml", text)
    with pytest.raises(DataError, match=rf"data\.yaml: .*{problem}.*; {fix}") as info:
        read_yolo(tmp_path)
    assert "\n" not in str(info.value)


def _labelled(root, rel_image, text):
    """An image at root/rel_image and its Ultralytics label file (the last /images/ made /labels/)."""
    _image(os.path.join(root, rel_image))
    _write(os.path.join(root, os.path.splitext(rel_image.replace("images/", "labels/"))[0] + ".txt"), text)


def test_ultralytics_data_yaml_splits(tmp_path):
    """train/val/test entries as folders, .txt lists and lists of those, relative to path:; the val split
    usable; given as the YAML file or found in the folder."""
    root = tmp_path / "ds"
    _labelled(root, "images/train/a.jpg", "0 0.5 0.5 0.25 0.5\n")
    _labelled(root, "images/train/sub/b.jpg", "1 0.5 0.5 0.5 0.5\n")
    _labelled(root, "images/val/c.jpg", "1 0.25 0.25 0.5 0.5\n")
    _labelled(root, "extra/images/d.jpg", "")
    _write(root / "lists" / "test.txt", "./../images/val/c.jpg\nextra/images/d.jpg\n\n")
    _write(tmp_path / "cfg" / "data.yaml",
           "path: ../ds\ntrain: images/train\nval: [images/val]\ntest: lists/test.txt\nnames:\n  0: cat\n  1: dog\n")
    yaml_path = tmp_path / "cfg" / "data.yaml"
    train = load_dataset(yaml_path, split="train")
    assert train.format == "yolo" and train.classes == ("cat", "dog")
    assert [r.image_id for r in train] == ["a", "b"] and [r.labels.tolist() for r in train] == [[0], [1]]
    np.testing.assert_allclose(train[0].boxes, [[24, 12, 40, 36]])  # 64x48: cx 32, cy 24, w 16, h 24
    val = load_dataset(yaml_path, split="val")
    assert [r.image_id for r in val] == ["c"]
    np.testing.assert_allclose(val[0].boxes, [[0, 0, 32, 24]])
    test = load_dataset(yaml_path, split="test")
    assert [r.image_id for r in test] == ["c", "d"] and test[1].n_objects == 0
    _error_kind = _error(load_dataset, yaml_path, split="other")
    assert "no split 'other'" in str(_error_kind) and "['train', 'val', 'test']" in str(_error_kind)
    # the YAML inside the dataset folder: found there for the splits it has
    _write(root / "data.yaml", "train: images/train\nval: images/val\nnames: [cat, dog]\n")
    assert [r.image_id for r in load_dataset(root, split="val")] == ["c"]
    _write(root / "data.yaml", "train: images/train\nval: images/nothere\nnames: [cat, dog]\n")
    err = _error(load_dataset, root, split="val")
    assert "data.yaml: val: 'images/nothere': no such folder or .txt list of images" in str(err)


@pytest.mark.parametrize("line, problem, fix", [
    ("0 0.5 0.5 0.25", "4 fields instead of 5", "one box per line as 'class cx cy w h'"),
    ("0 0.1 0.1 0.2 0.1 0.3 0.3", "7 fields instead of 5", "segmentation polygons are not supported"),
    ("0 0.5 x 0.25 0.5", "'x' is not a number", "one box per line"),
    ("cat 0.5 0.5 0.25 0.5", "'cat' is not a number", "one box per line"),
    ("2 0.5 0.5 0.25 0.5", "class index 2 is out of range for 2 classes", "from 0 to 1 or add the class to .*classes.txt"),
    ("-1 0.5 0.5 0.25 0.5", "class index -1 is out of range", "from 0 to 1"),
    ("1.5 0.5 0.5 0.25 0.5", "class index '1.5' is not an integer", "0-based index"),
    ("0 0.5 0.5 0 0.5", "box size w=0 h=0.5 is not positive", "positive fractions"),
    ("0 0.5 0.5 0.25 -0.5", "is not positive", "positive fractions"),
    ("0 0.9 0.5 0.4 0.5", "lies outside the 64x48 image", "clip the box"),
    ("0 32 24 16 24", "not normalised to", "divide cx and w by the image width"),
])
def test_yolo_bad_label_line(tmp_path, line, problem, fix):
    _yolo(tmp_path, {"a": f"1 0.5 0.5 0.25 0.5\n\n{line}\n0 0.5 0.5 0.25 0.5\n", "b": "0 0.5 0.5 0.5 0.5\n"})
    with pytest.raises(DataError, match=rf"a\.txt: line 3: [^;]*{problem}.*; .*{fix}") as info:
        read_yolo(tmp_path)
    assert "\n" not in str(info.value)
    ds = _skipped(read_yolo, tmp_path)
    assert [r.image_id for r in ds] == ["a", "b"]
    assert ds[0].labels.tolist() == [1, 0] and ds[1].n_objects == 1


def test_yolo_skip_bad_counts_every_bad_line(tmp_path):
    _yolo(tmp_path, {"a": "0 0.5 0.5 0.25\n9 0.5 0.5 0.25 0.5\n0 0.5 0.5 0.25 0.5\n"})
    with pytest.warns(DataWarning, match=r"skipped 1 bad class, 1 malformed line \(first: .*line 1"):
        ds = read_yolo(tmp_path, skip_bad=True)
    assert ds[0].n_objects == 1


def test_yolo_duplicate_stems(tmp_path):
    _yolo(tmp_path, {"a": "0 0.5 0.5 0.25 0.5\n"})
    _image(tmp_path / "images" / "train" / "a.png")
    err = _error(read_yolo, tmp_path)
    assert err.kind == "duplicate id" and "image 'a'" in str(err) and "unique file name" in str(err)
    ds = _skipped(read_yolo, tmp_path)
    assert [os.path.basename(r.path) for r in ds] == ["a.jpg"]


def test_yolo_split_file_missing_image(tmp_path):
    _yolo(tmp_path, {"a": "0 0.5 0.5 0.25 0.5\n"}, split=None)
    _write(tmp_path / "labels" / "gone.txt", "0 0.5 0.5 0.25 0.5\n")
    _write(tmp_path / "train.txt", "a.jpg\ngone.jpg\n")
    err = _error(read_yolo, tmp_path)
    assert err.kind == "missing image"
    assert re.search(r"train\.txt: line 2: image 'gone\.jpg' is missing.*; add the image or remove its line", str(err))
    assert [r.image_id for r in _skipped(read_yolo, tmp_path)] == ["a"]


@pytest.mark.parametrize("entry, problem", [
    ("../outside.jpg", "points outside the dataset folder"),
    ("images/../../outside.jpg", "points outside the dataset folder"),
    ("ABSOLUTE", "is empty or absolute"),
])
def test_yolo_split_file_path_traversal_is_refused(tmp_path, entry, problem):
    root = tmp_path / "ds"
    _yolo(root, {"a": ""}, split=None)
    _image(tmp_path / "outside.jpg")
    entry = str(tmp_path / "outside.jpg") if entry == "ABSOLUTE" else entry
    _write(root / "train.txt", f"a\n{entry}\n")
    err = _error(read_yolo, root)
    assert err.kind == "unsafe path" and "train.txt: line 2: " in str(err) and problem in str(err)
    assert [r.image_id for r in _skipped(read_yolo, root)] == ["a"]


# ----------------------------------------------------------------------------- CSV

def _csv(folder, text, images=("a.jpg", "b.jpg", "c.jpg"), name="train.csv"):
    for image in images:
        _image(os.path.join(folder, image))
    _write(os.path.join(folder, name), text)
    return os.path.join(folder, name)


def test_csv_rows_give_exact_boxes_in_first_appearance_order(tmp_path):
    path = _csv(tmp_path, "c.jpg,dog,5.5,6,20,47.5\nb.jpg,,,,,\n\nc.jpg,cat,0,0,64,48\na.jpg,cat,1,2,30,40\n")
    ds = read_csv(path)
    assert [r.image_id for r in ds] == ["c", "b", "a"] and [r.coco_id for r in ds] == [1, 2, 3]
    assert ds.classes == ("cat", "dog") and ds.format == "csv"
    assert ds[0].boxes.tolist() == [[5.5, 6.0, 20.0, 47.5], [0.0, 0.0, 64.0, 48.0]]
    assert ds[0].labels.tolist() == [1, 0]
    assert ds[1].n_objects == 0 and (ds[1].width, ds[1].height) == (64, 48)
    assert ds[2].boxes.tolist() == [[1.0, 2.0, 30.0, 40.0]]


def test_csv_header_and_size_columns(tmp_path):
    path = _csv(tmp_path, "image,label,x1,y1,x2,y2,width,height\na.jpg,cat,1,2,300,400,640,480\nb.jpg,,,,,,,\n")
    ds = read_csv(path)
    assert (ds[0].width, ds[0].height) == (640, 480) and ds[0].boxes.tolist() == [[1, 2, 300, 400]]
    assert (ds[1].width, ds[1].height) == (64, 48)  # empty size cells: read from the image


def test_csv_header_in_tensorflow_column_order(tmp_path):
    path = _csv(tmp_path, "filename,width,height,class,xmin,ymin,xmax,ymax\na.jpg,64,48,cat,1,2,30,40\n")
    ds = read_csv(path)
    assert ds.classes == ("cat",) and ds[0].boxes.tolist() == [[1, 2, 30, 40]]


def test_csv_header_without_a_needed_column(tmp_path):
    path = _csv(tmp_path, "image,label,left,top,x2,y2\na.jpg,cat,1,2,30,40\n")
    with pytest.raises(DataError, match=r"train\.csv: line 1: the header has no x1, y1 column; name the columns"):
        read_csv(path)


def test_csv_folder_with_split_files(tmp_path):
    _csv(tmp_path, "a.jpg,cat,1,2,30,40\n")
    _csv(tmp_path, "b.jpg,dog,1,2,30,40\n", name="val.csv")
    assert [r.image_id for r in read_csv(tmp_path)] == ["a"]
    assert [r.image_id for r in read_csv(tmp_path, "val")] == ["b"]
    assert [r.image_id for r in read_csv(tmp_path / "val.csv", split="ignored")] == ["b"]
    with pytest.raises(DataError, match=r"no test\.csv; choose a split among \['train', 'val'\]"):
        read_csv(tmp_path, "test")
    with pytest.raises(DataError, match=r"no such file or folder; give a \.csv file"):
        read_csv(tmp_path / "nothing")


def test_csv_classes_from_file_and_argument(tmp_path):
    path = _csv(tmp_path, "a.jpg,cat,1,2,30,40\n")
    _write(tmp_path / "classes.txt", "dog\ncat\n")
    ds = read_csv(path)
    assert ds.classes == ("dog", "cat") and ds[0].labels.tolist() == [1]
    assert read_csv(path, classes=["cat"]).classes == ("cat",)


@pytest.mark.parametrize("row, problem, fix", [
    ("a.jpg,cat,1,2,30", "5 columns instead of 6", "one box per row as image,label,x1,y1,x2,y2"),
    ("a.jpg,cat,1,2,30,40,7", "7 columns instead of 6", "one box per row"),
    ("a.jpg,cat,1,two,30,40", "y1 is 'two', not a number", "numbers in pixels"),
    ("a.jpg,bird,1,2,30,40", "unknown class name 'bird'", r"use one of the dataset's classes \(cat, dog\)"),
    ("a.jpg,cat,30,2,30,40", "has x2 <= x1", "positive width and height"),
    ("a.jpg,cat,1,40,30,40", "has y2 <= y1", "positive width and height"),
    ("a.jpg,cat,1,2,65,40", "lies outside the 64x48 image", "clip the box"),
    ("a.jpg,,1,2,30,40", "a box without a label", "give the class name"),
    ("gone.jpg,cat,1,2,30,40", "image file .*gone.jpg is missing", "add the image or remove its entry"),
])
def test_csv_bad_row(tmp_path, row, problem, fix):
    path = _csv(tmp_path, f"a.jpg,dog,1,2,30,40\n\n{row}\nb.jpg,cat,0,0,10,10\n")
    with pytest.raises(DataError, match=rf"train\.csv: line 3: [^;]*{problem}.*; .*{fix}") as info:
        read_csv(path, classes=["cat", "dog"])
    assert "\n" not in str(info.value)
    ds = _skipped(read_csv, path, classes=["cat", "dog"])
    assert [r.image_id for r in ds] == ["a", "b"] and ds[0].labels.tolist() == [1]


def test_csv_bad_size_columns(tmp_path):
    path = _csv(tmp_path, "image,label,x1,y1,x2,y2,width,height\na.jpg,cat,1,2,30,40,64.5,48\n")
    with pytest.raises(DataError, match=r"line 2: image size 64.5x48 is not two positive integers; write the width"):
        read_csv(path)


def test_csv_missing_image_is_counted_once(tmp_path):
    path = _csv(tmp_path, "gone.jpg,cat,1,2,30,40\ngone.jpg,cat,1,2,30,40\na.jpg,cat,1,2,30,40\n")
    ds = _skipped(read_csv, path, count=1)
    assert [r.image_id for r in ds] == ["a"]


def test_csv_duplicate_stems(tmp_path):
    path = _csv(tmp_path, "a.jpg,cat,1,2,30,40\nsub/a.jpg,cat,1,2,30,40\na.jpg,dog,1,2,30,40\n",
                images=("a.jpg", "sub/a.jpg"))
    with pytest.raises(DataError, match=r"train\.csv: image 'a': duplicate image id; give every image a unique"):
        read_csv(path)
    ds = _skipped(read_csv, path)
    assert len(ds) == 1 and ds[0].labels.tolist() == [0, 1]


@pytest.mark.parametrize("name, problem", [
    ("../outside.jpg", "points outside the dataset folder"),
    ("sub/../../outside.jpg", "points outside the dataset folder"),
    ("ABSOLUTE", "is empty or absolute"),
])
def test_csv_path_traversal_is_refused(tmp_path, name, problem):
    _image(tmp_path / "outside.jpg")
    name = str(tmp_path / "outside.jpg") if name == "ABSOLUTE" else name
    path = _csv(tmp_path / "ds", f"a.jpg,cat,1,2,30,40\n{name},cat,1,2,30,40\n")
    err = _error(read_csv, path)
    assert err.kind == "unsafe path" and "train.csv: line 2: " in str(err) and problem in str(err)
    assert "relative" in err.fix
    assert [r.image_id for r in _skipped(read_csv, path)] == ["a"]


def test_csv_quoted_fields_and_line_numbers(tmp_path):
    path = _csv(tmp_path, 'image,label,x1,y1,x2,y2\n"a.jpg","hot, dog",1,2,30,40\nb.jpg,cat,1,2,3\n')
    with pytest.raises(DataError, match=r"line 3: 5 columns"):
        read_csv(path)
    assert _skipped(read_csv, path).classes == ("hot, dog",)


def test_csv_not_utf8(tmp_path):
    path = tmp_path / "train.csv"
    path.write_bytes(b"a.jpg,caf\xe9,1,2,30,40\n")
    with pytest.raises(DataError, match=r"train\.csv: the CSV file is not UTF-8 text; save it as UTF-8"):
        read_csv(path)
