"""COCO instances JSON: ``images``, ``annotations`` (``bbox`` = x, y, w, h), ``categories``.

Classes are the categories in increasing id order, as pycocotools lists them.
``iscrowd`` boxes are kept with their flag (AP ignores them as pycocotools
does); a non-standard ``difficult`` or ``ignore`` key of 1 marks a VOC-style
difficult box. :func:`write_coco` writes ground truth in the same format.
"""

import json
import math
import os
import warnings

import numpy as np

from .._fileio import atomic_write_text
from ..boxes import box_convert
from ..errors import DataError, DataWarning
from ..images import open_regular
from ._common import (MAX_DECLARED_SIDE, Problems, check_box, check_name, duplicate_error, image_size,
                      safe_join)
from ._dataset import Dataset, ImageRecord

__all__ = ["read_coco", "write_coco", "find_coco_file"]


#: JSON nested deeper than this (arrays and objects) is refused: COCO files need 4 levels.
MAX_JSON_DEPTH = 100
_CHUNK = 1 << 24


class _NonFinite(ValueError):
    def __init__(self, token):
        super().__init__(token)
        self.token = token


def _refuse_constant(token):
    raise _NonFinite(token)


def _finite_float(token):
    value = float(token)
    if not math.isfinite(value):  # 1e999 overflows to inf
        raise _NonFinite(token)
    return value


def json_depth(raw):
    """Deepest nesting of arrays and objects in the bytes of a valid JSON document.

    Brackets inside strings do not count. Vectorised over chunks, so a file of hundreds
    of megabytes costs about a second and little memory.
    """
    data = raw.replace(b"\\\\", b"").replace(b'\\"', b"")  # escapes: every remaining quote delimits a string
    parity, depth, deepest = 0, 0, 0
    for start in range(0, len(data), _CHUNK):
        a = np.frombuffer(data, np.uint8, count=min(_CHUNK, len(data) - start), offset=start)
        in_string = np.bitwise_xor.accumulate((a == 34).view(np.uint8)) ^ parity
        parity = int(in_string[-1])
        opens = (a == 91) | (a == 123)
        pos = np.flatnonzero((opens | (a == 93) | (a == 125)) & (in_string == 0))
        if len(pos):
            levels = depth + np.cumsum(np.where(opens[pos], 1, -1))
            deepest = max(deepest, int(levels.max()))
            depth = int(levels[-1])
    return deepest


def _where(text, token):
    """"line L column C" of the first ``token`` in ``text`` (for a message), or ""."""
    k = text.find(token)
    if k < 0:
        return ""
    line = text.count("\n", 0, k) + 1
    return f"line {line} column {k - (text.rfind(chr(10), 0, k) + 1) + 1}"


def load_json(path, what):
    """Parse a JSON file strictly; every problem is one DataError naming the file.

    Refused: malformed JSON (with its line and column), text that is not UTF-8, a folder
    or FIFO, nesting deeper than :data:`MAX_JSON_DEPTH`, and the non-standard constants
    ``NaN``, ``Infinity`` and ``-Infinity`` (and numbers such as ``1e999`` that overflow to
    infinity), which Python's json module would otherwise accept: a box or score that is
    not a finite number is never read as one.
    """
    try:
        with open_regular(path, f"{what} file") as fh:
            raw = fh.read()
    except OSError as exc:
        raise DataError(path, "", f"cannot read the {what} file ({exc.strerror})",
                        "check the path", kind="missing file") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(path, "", f"the {what} file is not UTF-8 text", "save it as UTF-8 JSON",
                        kind="malformed file") from None
    fix = f"fix the {what} file so that it is valid JSON"
    try:
        doc = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        raise DataError(path, f"line {exc.lineno} column {exc.colno}", f"malformed JSON ({exc.msg})",
                        fix, kind="malformed file") from None
    except _NonFinite as exc:
        raise DataError(path, _where(text, exc.token), f"{exc.token} is not a finite number (not standard JSON)",
                        "write finite numbers (or leave the entry out)", kind="malformed file") from None
    except RecursionError:
        raise DataError(path, "", f"JSON nested deeper than {MAX_JSON_DEPTH} levels",
                        "write a flat COCO-style file", kind="malformed file") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise DataError(path, "", f"malformed JSON ({exc})", fix, kind="malformed file") from None
    if json_depth(raw) > MAX_JSON_DEPTH:
        raise DataError(path, "", f"JSON nested deeper than {MAX_JSON_DEPTH} levels",
                        "write a flat COCO-style file", kind="malformed file")
    return doc


def find_coco_file(root, split):
    """The annotation JSON of ``split`` inside a COCO-style folder."""
    names = [f"annotations/instances_{split}.json", f"annotations/{split}.json",
             f"instances_{split}.json", f"{split}.json"]
    for name in names:
        if os.path.isfile(os.path.join(root, name)):
            return os.path.join(root, name)
    raise DataError(root, f"split {split!r}", "no COCO annotation file for this split",
                    f"add one of {names} or pass the JSON file itself", kind="missing split")


def _image_root(json_path, split, file_names, image_root):
    if image_root is not None:
        return os.fspath(image_root)
    here = os.path.dirname(os.path.abspath(json_path))
    up = os.path.dirname(here)
    candidates = [here, os.path.join(here, "images")]
    if split:
        candidates += [os.path.join(here, "images", split), os.path.join(here, split),
                       os.path.join(up, "images", split), os.path.join(up, split)]
    candidates += [os.path.join(up, "images"), up]
    probe = [f for f in file_names[:5] if f and not os.path.isabs(f)]
    for folder in candidates:
        if probe and all(os.path.isfile(os.path.join(folder, f)) for f in probe):
            return folder
    return None


_INT64 = 1 << 63


def _require(obj, key, kind_of, path, item):
    if key not in obj:
        raise DataError(path, item, f"missing key {key!r}", f"give every {kind_of} a {key!r}",
                        kind="malformed annotation")
    return obj[key]


def _entries(doc, key, path):
    """The list ``doc[key]``; DataError if it is missing, not a list, or holds a non-object."""
    value = doc.get(key)
    if not isinstance(value, list):
        raise DataError(path, "", f"missing or non-list {key!r}", f"add a {key!r} list to the COCO file",
                        kind="malformed file")
    return value


def _object(entry, path, item, kind_of):
    if not isinstance(entry, dict):
        raise DataError(path, item, f"{_short(entry)} is not a JSON object",
                        f"write every {kind_of} as an object {{...}}", kind="malformed annotation")
    return entry


def _short(value):
    text = json.dumps(value) if isinstance(value, (dict, list, str)) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _int_id(value, key, path, item):
    """An integer id (COCO ids are integers); DataError for another type, a bool or out of range."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise DataError(path, item, f"{key} {_short(value)} is not an integer",
                        f"write {key} as an integer (COCO ids are integers)", kind="malformed annotation")
    if not -_INT64 <= value < _INT64:
        raise DataError(path, item, f"{key} {_short(value)} is out of the 64-bit integer range",
                        "renumber the ids with integers below 2**63", kind="malformed annotation")
    return value


def _is_number(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def _flag(ann, key, path, item):
    value = ann.get(key, 0)
    if value is None:
        return False
    if value not in (0, 1) or not isinstance(value, (int, float)):  # True/False compare equal to 1/0
        raise DataError(path, item, f"{key} {_short(value)} is not 0 or 1", f"write {key} as 0 or 1",
                        kind="malformed annotation")
    return bool(value)


def _size(im, path, item):
    sizes = []
    for key in ("width", "height"):
        v = im.get(key)
        if not _is_number(v) or not float(v).is_integer() or not 0 < v <= MAX_DECLARED_SIDE:
            raise DataError(path, item, "missing or non-positive width/height" if not _is_number(v) or v <= 0
                            else f"{key} {_short(v)} is not a whole number of pixels up to {MAX_DECLARED_SIDE}",
                            "give every image its size in pixels (positive integers)", kind="malformed annotation")
        sizes.append(int(v))
    return sizes


def _check_extras(ann, path, item):
    """Keys classic_loc does not use must still have their COCO types: a broken file is refused whole."""
    seg = ann.get("segmentation")
    if seg is not None and not isinstance(seg, (list, dict)):
        raise DataError(path, item, f"segmentation {_short(seg)} is neither polygons (a list) nor RLE (an object)",
                        "write segmentation as [[x, y, ...]] or {\"counts\", \"size\"}, or leave it out",
                        kind="malformed annotation")
    if isinstance(seg, list) and not all(isinstance(p, list) and all(_is_number(v) for v in p) for p in seg):
        raise DataError(path, item, "segmentation polygons are not lists of finite numbers",
                        "write segmentation as [[x1, y1, x2, y2, ...], ...], or leave it out",
                        kind="malformed annotation")
    area = ann.get("area")
    if area is not None and not (_is_number(area) and area >= 0):
        raise DataError(path, item, f"area {_short(area)} is not a non-negative number",
                        "write area as a number or leave it out", kind="malformed annotation")


def read_coco(path, split=None, skip_bad=False, require_images=True, image_root=None):
    """Read a COCO instances JSON file (or the file of ``split`` in a COCO folder).

    Parameters
    ----------
    path : str
        A ``.json`` file, or a folder with ``annotations/instances_<split>.json``.
    split : str, optional
        Used to find the JSON in a folder and the image folder next to it.
    skip_bad : bool
        Skip bad annotations and images with a warning instead of raising.
    require_images : bool
        When False, image files need not exist (``path`` is None): enough to
        evaluate predictions against the annotations alone.
    image_root : str, optional
        Folder the ``file_name`` entries are relative to; found automatically
        next to the JSON file otherwise. No ``file_name`` may leave it (symbolic
        links resolved). With ``require_images`` each image's size is read from its
        header (as shown, EXIF orientation applied); a ``width``/``height`` that differs
        is reported in one DataWarning and the real size is used.

    Every field is checked for its COCO type: ids are integers, ``bbox`` four finite
    numbers with a positive width and height, ``width``/``height`` positive integers,
    ``file_name`` a relative path of printable characters, ``iscrowd`` 0 or 1,
    ``segmentation`` polygons or RLE. A problem is one :class:`DataError` naming the
    entry (``images[3]``, ``annotations[12]``).
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        path = find_coco_file(path, split)
    doc = load_json(path, "COCO annotation")
    if not isinstance(doc, dict):
        raise DataError(path, "", "a COCO file must be a JSON object with images, annotations and categories",
                        "write a COCO instances file (a results list is read with --pred, not --gt)",
                        kind="malformed file")
    doc_images, doc_anns, doc_cats = (_entries(doc, key, path) for key in ("images", "annotations", "categories"))
    problems = Problems(skip_bad)

    cats = {}
    for k, cat in enumerate(doc_cats):
        item = f"categories[{k}]"
        cat = _object(cat, path, item, "category")
        cid = _int_id(_require(cat, "id", "category", path, item), "id", path, item)
        name = _require(cat, "name", "category", path, item)
        if not isinstance(name, str) or not name.strip() or not name.isprintable():
            raise DataError(path, item, f"category name {_short(name)} is not a non-empty printable string",
                            "give every category a name", kind="malformed file")
        if cid in cats or name in cats.values():
            raise DataError(path, item, f"duplicate category id {cid} or name {name!r}",
                            "give every category a unique id and name", kind="malformed file")
        cats[cid] = name
    cat_ids = sorted(cats)
    classes = [cats[c] for c in cat_ids]
    label_of = {c: k for k, c in enumerate(cat_ids)}

    images, seen_stems, mismatches = {}, set(), []
    names = [im.get("file_name") for im in doc_images if isinstance(im, dict)]
    names = [n for n in names if isinstance(n, str) and n.isprintable() and "\x00" not in n]
    root = _image_root(path, split, names, image_root)
    if root is None and require_images and doc_images:
        raise DataError(path, "", "cannot find the folder holding the images named in file_name",
                        "put the images next to the JSON (or in images/<split>/) or pass image_root",
                        kind="missing image")
    for k, im in enumerate(doc_images):
        item = f"images[{k}]"
        try:
            im = _object(im, path, item, "image")
            iid = _int_id(_require(im, "id", "image", path, item), "id", path, item)
            name = check_name(_require(im, "file_name", "image", path, item), path, item)
            item = f"{item} ({name})"
            stem = os.path.splitext(os.path.basename(name))[0]
            w, h = _size(im, path, item)
            if iid in images or stem in seen_stems:
                raise duplicate_error(path, stem if stem in seen_stems else iid)
            file_path = None
            if root is not None:
                file_path = safe_join(root, name, path, item)
                if require_images:
                    real = image_size(file_path, path, item)  # header only, as the image is shown
                    if real != (w, h):
                        mismatches.append((item, file_path, (w, h), real))
                        w, h = real
                elif not os.path.isfile(file_path):
                    file_path = None  # not there (evaluation only): no path to a missing file; file_name still matches
            seen_stems.add(stem)
            images[iid] = dict(stem=stem, name=name, path=file_path, w=w, h=h, boxes=[], labels=[], difficult=[],
                               crowd=[], areas=[])
        except DataError as err:
            problems.report(err)

    if mismatches:
        item, file_path, (dw, dh), (w, h) = mismatches[0]
        more = f" (and {len(mismatches) - 1} more images)" if len(mismatches) > 1 else ""
        warnings.warn(f"{path}: {item}: width/height say {dw}x{dh} but the image {file_path} is {w}x{h}; "
                      f"the image's real size is used{more}", DataWarning, stacklevel=2)

    for k, ann in enumerate(doc_anns):
        item = f"annotations[{k}]"
        try:
            ann = _object(ann, path, item, "annotation")
            iid = _int_id(_require(ann, "image_id", "annotation", path, item), "image_id", path, item)
            cid = _int_id(_require(ann, "category_id", "annotation", path, item), "category_id", path, item)
            bbox = _require(ann, "bbox", "annotation", path, item)
            if iid not in images:
                raise DataError(path, item, f"image_id {iid!r} is not in 'images'",
                                "add the image or remove the annotation", kind="unknown image")
            if cid not in label_of:
                raise DataError(path, item, f"category_id {cid!r} is not in 'categories'",
                                f"use one of {cat_ids[:20]} or add the category", kind="unknown class")
            if not isinstance(bbox, list) or len(bbox) != 4 or not all(map(_is_number, bbox)):
                raise DataError(path, item, f"bbox {_short(bbox)} is not 4 numbers",
                                "write bbox as [x, y, width, height], 4 finite numbers", kind="bad box")
            crowd = _flag(ann, "iscrowd", path, item)
            difficult = _flag(ann, "difficult", path, item) or _flag(ann, "ignore", path, item)
            _check_extras(ann, path, item)
            im = images[iid]
            box = check_box(box_convert([[float(v) for v in bbox]], "xywh", "xyxy")[0], im["w"], im["h"], path, item)
            im["boxes"].append(box)
            im["labels"].append(label_of[cid])
            im["crowd"].append(crowd)
            im["difficult"].append(difficult)
            # the annotation's area decides its size range, as in pycocotools (a mask's area for a segmented object)
            area = ann.get("area")
            im["areas"].append(float(area) if area is not None else float(bbox[2]) * float(bbox[3]))
        except DataError as err:
            problems.report(err)

    records = [ImageRecord(im["stem"], im["path"], im["w"], im["h"], boxes=np.reshape(im["boxes"], (-1, 4)),
                           labels=im["labels"], difficult=im["difficult"], crowd=im["crowd"], coco_id=iid,
                           file_name=im["name"], areas=im["areas"])
               for iid, im in images.items()]
    problems.warn(path)
    return Dataset(records, classes, category_ids=cat_ids, root=path, format="coco")


def to_coco(dataset):
    """The COCO ground-truth document of ``dataset`` as a dict.

    Image ids are the records' ``coco_id``; categories keep ``dataset.category_ids``; each
    object's ``area`` is the record's (the box's area unless a COCO file gave another).
    A difficult box is written with ``"difficult": 1`` (pycocotools does not
    know this key; classic_loc's evaluator ignores such boxes like VOC does).
    """
    images, anns = [], []
    for rec in dataset:
        name = os.path.basename(rec.path) if rec.path else rec.image_id + ".jpg"
        images.append({"id": rec.coco_id, "file_name": name, "width": rec.width, "height": rec.height})
        for box, label, diff, crowd, area in zip(box_convert(rec.boxes, "xyxy", "xywh"), rec.labels, rec.difficult,
                                                 rec.crowd, rec.areas):
            ann = {"id": len(anns) + 1, "image_id": rec.coco_id, "category_id": dataset.category_ids[label],
                   "bbox": [float(v) for v in box], "area": float(area), "iscrowd": int(crowd)}
            if diff:
                ann["difficult"] = 1
            anns.append(ann)
    cats = [{"id": cid, "name": name, "supercategory": "object"}
            for cid, name in zip(dataset.category_ids, dataset.classes)]
    return {"images": images, "annotations": anns, "categories": cats}


def write_coco(dataset, path):
    """Write ``dataset``'s ground truth as a COCO instances JSON file, atomically."""
    atomic_write_text(path, json.dumps(to_coco(dataset)))
    return os.fspath(path)
