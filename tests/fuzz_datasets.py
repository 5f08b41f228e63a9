"""Fuzz targets for the four annotation readers (not collected by pytest: no ``test_`` prefix).

``TARGETS = {name: (strategy, run)}``: ``strategy`` draws one input, ``run(example, workdir)``
writes it under the empty folder ``workdir`` and reads it. ``run`` returns normally for a
valid Dataset (checked against the Dataset invariants), raises DataError for a clear
refusal; anything else is a crash. tests/test_fuzz_datasets.py runs a few hundred examples
per target, benchmarks/fuzz.py ten thousand.

The inputs mix fully random structures, byte flips and truncations of a valid file, one
field of a valid file replaced by a random value (every JSON type, NaN, inf, huge and
negative numbers, text with NUL and odd unicode), and nesting thousands of levels deep.
For VOC, YOLO and CSV the input is a small folder holding one valid 16x16 PNG. The extra
target "image" feeds mutated JPEG/PNG/BMP/TIFF/WebP/PNM files to image_size and read_image and
checks that the header size agrees with the decoded one.
"""

import json
import os
import warnings

import cv2
import numpy as np
from hypothesis import strategies as st

from classic_loc.datasets import Dataset, read_coco, read_csv, read_voc, read_yolo
from classic_loc.errors import DataWarning

__all__ = ["TARGETS"]

_PNG = cv2.imencode(".png", np.full((16, 16, 3), 90, np.uint8))[1].tobytes()
W = H = 16


# --------------------------------------------------------------------------- building blocks
_ODD_TEXT = ["", " ", "\x00", "a\x00b", "\n", "a\nb", "\r", "\t", "\ud800", "\udcff", "\u202e", "\ufeff", "é",
             "../../x", "/etc/passwd", "C:\\x", "\\\\server\\x", "..", ".", "a/../../b", "~", "*", "%s", "{}",
             "nan", "NaN", "inf", "-inf", "Infinity", "1e999", "-1e999", "1e308", "-0", "0x10", "1_000",
             "99999999999999999999999999", "-5", "0", "1", "0.5", "1.0", "3.7", "true", "null", "[]"]
_ODD_NUMBERS = [0, -0.0, 1, -1, 0.5, 1e-300, 1e300, -1e300, 2 ** 63, -2 ** 63, 2 ** 64, 10 ** 30, 16, 17, 15.9999,
                float("nan"), float("inf"), float("-inf"), True, False]

odd_text = st.one_of(st.sampled_from(_ODD_TEXT), st.text(max_size=12),
                     st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF), max_size=8))
numbers = st.one_of(st.sampled_from(_ODD_NUMBERS), st.integers(-10 ** 20, 10 ** 20),
                    st.floats(allow_nan=True, allow_infinity=True), st.integers(-3, 40))
scalars = st.one_of(st.none(), st.booleans(), numbers, odd_text)
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=5),
                                                            st.dictionaries(odd_text, inner, max_size=5)),
                           max_leaves=20)
# text that replaces one field of a text format: numbers as written, odd strings, random bytes' text
field_text = st.one_of(odd_text, numbers.map(lambda v: repr(v) if isinstance(v, float) else str(v)),
                       st.integers(-20, 60).map(str), st.floats(-5, 60).map(lambda v: f"{v:.3f}"))


def _dumps(value):
    """JSON text of ``value`` as a careless tool writes it (NaN and Infinity kept)."""
    return json.dumps(value, allow_nan=True)


@st.composite
def mutated(draw, data):
    """``data`` (bytes) with a few random byte flips, insertions, deletions or a truncation."""
    data = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "dup"]))
        k = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[k] = draw(st.integers(0, 255))
        elif op == "insert":
            data[k:k] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete" and data:
            del data[k:k + draw(st.integers(1, 8))]
        elif op == "truncate":
            del data[k:]
        elif op == "dup":
            data[k:k] = data[k:k + draw(st.integers(1, 40))]
    return bytes(data)


def deep(n, opener="[", closer="]"):
    return opener * n + closer * n


# --------------------------------------------------------------------------- dataset invariants
def check_dataset(ds):
    """The invariants of a Dataset a reader may return: raise AssertionError (a crash) if broken."""
    assert isinstance(ds, Dataset)
    assert all(isinstance(c, str) and c for c in ds.classes) and len(set(ds.classes)) == len(ds.classes)
    for r in ds:
        assert isinstance(r.width, int) and isinstance(r.height, int) and r.width > 0 and r.height > 0
        assert r.boxes.shape == (len(r.labels), 4) and r.boxes.dtype == np.float64
        assert np.all(np.isfinite(r.boxes)), r.boxes
        if len(r.boxes):
            assert np.all(r.boxes[:, 2] > r.boxes[:, 0]) and np.all(r.boxes[:, 3] > r.boxes[:, 1])
            assert np.all(r.boxes[:, :2] >= 0) and np.all(r.boxes[:, 2] <= r.width) and np.all(r.boxes[:, 3] <= r.height)
            assert np.all((r.labels >= 0) & (r.labels < len(ds.classes)))
        if r.path is not None:
            assert os.path.isfile(r.path)
        str(r.image_id).encode("utf-8")  # ids are valid text


def _read(reader, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        check_dataset(reader(*args, **kwargs))


def _write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass"))


# --------------------------------------------------------------------------- COCO
def _coco_doc():
    return {"images": [{"id": 1, "file_name": "a.png", "width": W, "height": H},
                       {"id": 2, "file_name": "b.png", "width": W, "height": H}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 3, "bbox": [1, 2, 10, 9], "area": 90,
                             "iscrowd": 0, "segmentation": [[1, 2, 11, 2, 11, 11]]},
                            {"id": 2, "image_id": 2, "category_id": 4, "bbox": [0, 0, 16, 16], "iscrowd": 1,
                             "segmentation": {"counts": [0, 256], "size": [16, 16]}}],
            "categories": [{"id": 3, "name": "cat"}, {"id": 4, "name": "dog"}]}


_COCO_PATHS = [(), ("images",), ("annotations",), ("categories",), ("images", 0), ("annotations", 0),
               ("categories", 0)]
_COCO_PATHS += [("images", 0, k) for k in ("id", "file_name", "width", "height")]
_COCO_PATHS += [("annotations", 0, k) for k in ("image_id", "category_id", "bbox", "iscrowd", "segmentation",
                                                "area", "difficult", "ignore")]
_COCO_PATHS += [("annotations", 1, "bbox", k) for k in range(4)] + [("categories", 1, k) for k in ("id", "name")]


def _replace(doc, path, value):
    if not path:
        return value
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return doc


@st.composite
def coco_examples(draw):
    kind = draw(st.sampled_from(["random", "field", "field", "bytes", "deep", "numbers", "valid"]))
    doc = _coco_doc()
    if kind == "random":
        text = _dumps(draw(json_values))
    elif kind == "field":
        text = _dumps(_replace(doc, draw(st.sampled_from(_COCO_PATHS)), draw(json_values)))
    elif kind == "bytes":
        return draw(mutated(_dumps(doc).encode())), draw(st.booleans())
    elif kind == "deep":
        n = draw(st.sampled_from([50, 99, 100, 101, 500, 999, 1000, 3000, 20000]))
        text = _dumps(doc).replace('"area": 90', '"area": ' + deep(n), 1) if draw(st.booleans()) else deep(n)
    elif kind == "numbers":
        bbox = [draw(numbers) for _ in range(4)]
        doc["annotations"][0]["bbox"] = bbox
        doc["images"][0]["width"] = draw(st.one_of(st.just(W), numbers))
        text = _dumps(doc)
    else:
        text = _dumps(doc)
    return text.encode("utf-8", "surrogatepass"), draw(st.booleans())


def run_coco(example, workdir):
    data, require_images = example
    _write(os.path.join(workdir, "gt.json"), data)
    _write(os.path.join(workdir, "a.png"), _PNG)
    _write(os.path.join(workdir, "b.png"), _PNG)
    _read(read_coco, os.path.join(workdir, "gt.json"), require_images=require_images)


# --------------------------------------------------------------------------- VOC
_VOC_FIELDS = ["filename", "width", "height", "name", "xmin", "ymin", "xmax", "ymax", "difficult"]


def _voc_xml(values=None, extra=""):
    v = dict(filename="img1.png", width=W, height=H, name="cat", xmin=2, ymin=3, xmax=12, ymax=16, difficult=0)
    v.update(values or {})
    return (f"<annotation><filename>{v['filename']}</filename><size><width>{v['width']}</width>"
            f"<height>{v['height']}</height><depth>3</depth></size><object><name>{v['name']}</name>"
            f"<difficult>{v['difficult']}</difficult><bndbox><xmin>{v['xmin']}</xmin><ymin>{v['ymin']}</ymin>"
            f"<xmax>{v['xmax']}</xmax><ymax>{v['ymax']}</ymax></bndbox></object>{extra}</annotation>")


def _xml_escape(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_VOC_ODD = ['<?xml version="1.0" encoding="latin-1"?>', '<?xml version="1.0" encoding="nonsense"?>',
            '<?xml version="1.0" encoding="utf-16"?>', '<!DOCTYPE a [<!ENTITY e "x">]>',
            '<!DOCTYPE a SYSTEM "file:///etc/passwd">', "<?pi x?>", "<!-- c -->", "\ufeff", ""]


@st.composite
def voc_examples(draw):
    kind = draw(st.sampled_from(["field", "field", "bytes", "tags", "deep", "random", "split", "valid"]))
    split, classes = "img1\n", draw(st.sampled_from([None, "cat\ndog\n", "cat\ncat\n", "\n", "c\x00t\n"]))
    if kind == "field":
        fields = draw(st.lists(st.sampled_from(_VOC_FIELDS), min_size=1, max_size=3, unique=True))
        values = {f: draw(field_text) for f in fields}
        raw = draw(st.booleans())  # unescaped text may break the XML itself
        xml = _voc_xml({f: (t if raw else _xml_escape(t)) for f, t in values.items()})
    elif kind == "bytes":
        return draw(mutated(_voc_xml().encode())), split, classes
    elif kind == "tags":
        extra = draw(st.sampled_from(["<object/>", "<object><name>cat</name></object>", "<size/>",
                                      "<object><bndbox/></object>", "<object><name>dog</name><bndbox><xmin>1"
                                      "</xmin><xmin>2</xmin></bndbox></object>", "<filename/>", "<x:y xmlns:x='u'/>"]))
        xml = draw(st.sampled_from(_VOC_ODD)) + _voc_xml(extra=extra)
    elif kind == "deep":
        n = draw(st.sampled_from([100, 1000, 10000, 50000]))
        xml = _voc_xml(extra="<a>" * n + "</a>" * n)
    elif kind == "random":
        xml = draw(st.text(max_size=200))
    elif kind == "split":
        xml = _voc_xml()
        split = draw(st.sampled_from(["../../x\n", "/etc/passwd\n", "img1\nimg1\n", "img1 1\n", "a\x00b\n",
                                      "\udcff\n", "Annotations/../img1\n", "../Annotations/img1\n", "\n\n",
                                      "img1\r\n", "\ufeffimg1\n", "img2\n", "JPEGImages\n"]))
    else:
        xml = _voc_xml()
    return xml.encode("utf-8", "surrogatepass"), split.encode("utf-8", "surrogatepass"), classes


def run_voc(example, workdir):
    xml, split, classes = example
    _write(os.path.join(workdir, "Annotations", "img1.xml"), xml)
    _write(os.path.join(workdir, "JPEGImages", "img1.png"), _PNG)
    _write(os.path.join(workdir, "ImageSets", "Main", "train.txt"), split)
    if classes is not None:
        _write(os.path.join(workdir, "classes.txt"), classes)
    _read(read_voc, workdir, "train", skip_bad=len(xml) % 2 == 1)


# --------------------------------------------------------------------------- YOLO
_YAML = ["names: [cat, dog]\n", "names:\n  - cat\n  - dog\n", "names:\n  0: cat\n  1: dog\n", "names: [cat\n",
         "names:\n  0: cat\n  5: dog\n", "names:\n  x: cat\n", "names: {0: cat}\n", "names:\n", "names: ['', a]\n",
         "names:\n  -\n", "names:\n  99999999999999999999999999999: a\n", "nc: 2\n", "names: [a, a]\n",
         "names:\n  0 cat\n"]


@st.composite
def yolo_examples(draw):
    kind = draw(st.sampled_from(["field", "field", "bytes", "random", "classes", "valid"]))
    label = "0 0.5 0.5 0.25 0.5\n1 0.25 0.75 0.5 0.5\n"
    classes, yaml = "cat\ndog\n", None
    if kind == "field":
        parts = label.split()
        for _ in range(draw(st.integers(1, 3))):
            parts[draw(st.integers(0, len(parts) - 1))] = draw(field_text)
        label = " ".join(parts[:5]) + "\n" + " ".join(parts[5:]) + "\n"
    elif kind == "bytes":
        label = draw(mutated(label.encode()))
    elif kind == "random":
        label = draw(st.text(max_size=80))
    elif kind == "classes":
        classes = draw(st.one_of(st.none(), st.sampled_from(["", "\n", "cat\ncat\n", "a\x00\n"]), st.text(max_size=20)))
        if classes is None:
            yaml = draw(st.one_of(st.sampled_from(_YAML), st.text(max_size=60).map(lambda t: "names:" + t)))
    layout = draw(st.sampled_from(["split", "flat", "list"]))
    listing = draw(st.sampled_from(["a.png\n", "images/a.png\n", "a\n", "../a.png\n", "/etc/passwd\n", "a\x00\n",
                                    "a.png\na.png\n", "\n", "missing\n"])) if layout == "list" else None
    return layout, label, classes, yaml, listing


def run_yolo(example, workdir):
    layout, label, classes, yaml, listing = example
    sub = "train" if layout == "split" else ""
    _write(os.path.join(workdir, "images", sub, "a.png"), _PNG)
    _write(os.path.join(workdir, "labels", sub, "a.txt"), label)
    if classes is not None:
        _write(os.path.join(workdir, "classes.txt"), classes)
    if yaml is not None:
        _write(os.path.join(workdir, "data.yaml"), yaml)
    if listing is not None:
        _write(os.path.join(workdir, "train.txt"), listing)
    _read(read_yolo, workdir, None if layout == "flat" else "train", skip_bad=len(label) % 2 == 1)


# --------------------------------------------------------------------------- CSV
_CSV_VALID = "image,label,x1,y1,x2,y2,width,height\na.png,cat,1,2,11,12,16,16\na.png,dog,0,0,16,16,,\nb.png,,,,,,,\n"


@st.composite
def csv_examples(draw):
    kind = draw(st.sampled_from(["field", "field", "bytes", "random", "valid"]))
    text = _CSV_VALID
    if kind == "field":
        rows = [ln.split(",") for ln in text.strip().split("\n")]
        for _ in range(draw(st.integers(1, 3))):
            r = draw(st.integers(0, len(rows) - 1))
            c = draw(st.integers(0, len(rows[r]) - 1))
            rows[r][c] = draw(field_text)
        text = "\n".join(",".join(r) for r in rows) + "\n"
    elif kind == "bytes":
        text = draw(mutated(text.encode()))
    elif kind == "random":
        text = draw(st.text(alphabet=st.sampled_from(',"\n\r x0.1a-\x00é'), max_size=120))
    classes = draw(st.sampled_from([None, None, "cat\ndog\n", "cat\n", "cat\ncat\n"]))
    return text, classes


def run_csv(example, workdir):
    text, classes = example
    _write(os.path.join(workdir, "train.csv"), text)
    _write(os.path.join(workdir, "a.png"), _PNG)
    _write(os.path.join(workdir, "b.png"), _PNG)
    if classes is not None:
        _write(os.path.join(workdir, "classes.txt"), classes)
    _read(read_csv, os.path.join(workdir, "train.csv"), skip_bad=len(text) % 2 == 1)


TARGETS = {
    "coco": (coco_examples(), run_coco),
    "voc": (voc_examples(), run_voc),
    "yolo": (yolo_examples(), run_yolo),
    "csv": (csv_examples(), run_csv),
}


# --------------------------------------------------------------------------- images (decoder and header reader)
def _image_seeds():
    img = np.zeros((12, 20, 3), np.uint8)
    img[:, :5] = 200
    seeds = [cv2.imencode(ext, img)[1].tobytes() for ext in (".jpg", ".png", ".bmp", ".tif", ".webp", ".ppm")]
    seeds.append(cv2.imencode(".pgm", img[..., 0])[1].tobytes())
    seeds.append(cv2.imencode(".png", np.zeros((12, 20), np.uint16) + 999)[1].tobytes())
    # a JPEG with an EXIF orientation of 6 (APP1 written by hand: IFD0 with one SHORT entry)
    tiff = b"MM\x00*\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03\x00\x00\x00\x01\x00\x06\x00\x00\x00\x00\x00\x00"
    app1 = b"\xff\xe1" + (len(tiff) + 8).to_bytes(2, "big") + b"Exif\x00\x00" + tiff
    seeds.append(seeds[0][:2] + app1 + seeds[0][2:])
    return seeds


_IMAGE_SEEDS = _image_seeds()


@st.composite
def image_examples(draw):
    seed = draw(st.sampled_from(_IMAGE_SEEDS))
    return draw(st.one_of(st.just(seed), mutated(seed), mutated(seed[:64]).map(lambda head: head + seed[64:])))


def run_image(example, workdir):
    """image_size and read_image agree whenever both succeed; otherwise DataError."""
    from classic_loc.images import image_size, read_image

    path = os.path.join(workdir, "x.img")
    _write(path, example)
    size = image_size(path)
    img = read_image(path)
    assert img.dtype == np.uint8 and img.ndim in (2, 3)
    assert size == (img.shape[1], img.shape[0]), (size, img.shape)


TARGETS["image"] = (image_examples(), run_image)
