"""COCO instances JSON: ``images``, ``annotations`` (``bbox`` = x, y, w, h), ``categories``.

Classes are the categories in increasing id order, as pycocotools lists them.
``iscrowd`` boxes are kept with their flag (AP ignores them as pycocotools
does); a non-standard ``difficult`` or ``ignore`` key of 1 marks a VOC-style
difficult box. :func:`write_coco` writes ground truth in the same format.
"""

import json
import os

import numpy as np

from .._fileio import atomic_write_text
from ..boxes import box_convert
from ..errors import DataError
from ._common import Problems, check_box, check_image_file, duplicate_error, safe_join
from ._dataset import Dataset, ImageRecord

__all__ = ["read_coco", "write_coco", "find_coco_file"]


def load_json(path, what):
    """Parse a JSON file; a DataError names the line and column of a syntax error."""
    try:
        with open(path, encoding="utf-8-sig") as fh:
            return json.load(fh)
    except json.JSONDecodeError as exc:
        raise DataError(path, f"line {exc.lineno} column {exc.colno}", f"malformed JSON ({exc.msg})",
                        f"fix the {what} file so that it is valid JSON", kind="malformed file") from None
    except UnicodeDecodeError:
        raise DataError(path, "", f"the {what} file is not UTF-8 text", "save it as UTF-8 JSON",
                        kind="malformed file") from None
    except OSError as exc:
        raise DataError(path, "", f"cannot read the {what} file ({exc.strerror})",
                        "check the path", kind="missing file") from None


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


def _require(obj, key, kind_of, path, item):
    if not isinstance(obj, dict) or key not in obj:
        raise DataError(path, item, f"missing key {key!r}", f"give every {kind_of} a {key!r}",
                        kind="malformed annotation")
    return obj[key]


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
        next to the JSON file otherwise.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        path = find_coco_file(path, split)
    doc = load_json(path, "COCO annotation")
    if not isinstance(doc, dict):
        raise DataError(path, "", "a COCO file must be a JSON object with images, annotations and categories",
                        "write a COCO instances file (a results list is read with --pred, not --gt)",
                        kind="malformed file")
    for key in ("images", "annotations", "categories"):
        if not isinstance(doc.get(key), list):
            raise DataError(path, "", f"missing or non-list {key!r}", f"add a {key!r} list to the COCO file",
                            kind="malformed file")
    problems = Problems(skip_bad)

    cats = {}
    for k, cat in enumerate(doc["categories"]):
        item = f"categories[{k}]"
        cid, name = _require(cat, "id", "category", path, item), str(_require(cat, "name", "category", path, item))
        if cid in cats or name in cats.values():
            raise DataError(path, item, f"duplicate category id {cid} or name {name!r}",
                            "give every category a unique id and name", kind="malformed file")
        cats[cid] = name
    cat_ids = sorted(cats)
    classes = [cats[c] for c in cat_ids]
    label_of = {c: k for k, c in enumerate(cat_ids)}

    images, seen_stems = {}, set()
    names = [str(im.get("file_name", "")) if isinstance(im, dict) else "" for im in doc["images"]]
    root = _image_root(path, split, names, image_root)
    if root is None and require_images and names:
        raise DataError(path, "", "cannot find the folder holding the images named in file_name",
                        "put the images next to the JSON (or in images/<split>/) or pass image_root",
                        kind="missing image")
    for k, im in enumerate(doc["images"]):
        item = f"images[{k}]"
        try:
            iid = _require(im, "id", "image", path, item)
            name = str(_require(im, "file_name", "image", path, item))
            stem = os.path.splitext(os.path.basename(name))[0]
            w, h = im.get("width"), im.get("height")
            if not isinstance(w, (int, float)) or not isinstance(h, (int, float)) or w <= 0 or h <= 0:
                raise DataError(path, f"{item} ({name})", "missing or non-positive width/height",
                                "give every image its size in pixels", kind="malformed annotation")
            if iid in images or stem in seen_stems:
                raise duplicate_error(path, stem if stem in seen_stems else iid)
            file_path = None
            if root is not None:
                file_path = safe_join(root, name, path, f"{item} ({name})")
                if require_images:
                    check_image_file(file_path, path, f"{item} ({name})")
            seen_stems.add(stem)
            images[iid] = dict(stem=stem, path=file_path, w=int(w), h=int(h), boxes=[], labels=[],
                               difficult=[], crowd=[])
        except DataError as err:
            problems.report(err)

    for k, ann in enumerate(doc["annotations"]):
        item = f"annotations[{k}]"
        try:
            iid = _require(ann, "image_id", "annotation", path, item)
            cid = _require(ann, "category_id", "annotation", path, item)
            bbox = _require(ann, "bbox", "annotation", path, item)
            if iid not in images:
                raise DataError(path, item, f"image_id {iid!r} is not in 'images'",
                                "add the image or remove the annotation", kind="unknown image")
            if cid not in label_of:
                raise DataError(path, item, f"category_id {cid!r} is not in 'categories'",
                                f"use one of {cat_ids} or add the category", kind="unknown class")
            if not isinstance(bbox, list) or len(bbox) != 4 or not all(isinstance(v, (int, float)) for v in bbox):
                raise DataError(path, item, f"bbox {bbox!r} is not 4 numbers",
                                "write bbox as [x, y, width, height]", kind="bad box")
            im = images[iid]
            box = check_box(box_convert([bbox], "xywh", "xyxy")[0], im["w"], im["h"], path, item)
            im["boxes"].append(box)
            im["labels"].append(label_of[cid])
            im["crowd"].append(bool(ann.get("iscrowd", 0)))
            im["difficult"].append(bool(ann.get("difficult", 0) or ann.get("ignore", 0)))
        except DataError as err:
            problems.report(err)

    records = [ImageRecord(im["stem"], im["path"], im["w"], im["h"], boxes=np.reshape(im["boxes"], (-1, 4)),
                           labels=im["labels"], difficult=im["difficult"], crowd=im["crowd"], coco_id=int(iid))
               for iid, im in images.items()]
    problems.warn(path)
    return Dataset(records, classes, category_ids=cat_ids, root=path, format="coco")


def to_coco(dataset):
    """The COCO ground-truth document of ``dataset`` as a dict.

    Image ids are the records' ``coco_id``; categories keep ``dataset.category_ids``.
    A difficult box is written with ``"difficult": 1`` (pycocotools does not
    know this key; classic_loc's evaluator ignores such boxes like VOC does).
    """
    images, anns = [], []
    for rec in dataset:
        name = os.path.basename(rec.path) if rec.path else rec.image_id + ".jpg"
        images.append({"id": rec.coco_id, "file_name": name, "width": rec.width, "height": rec.height})
        for box, label, diff, crowd in zip(box_convert(rec.boxes, "xyxy", "xywh"), rec.labels, rec.difficult,
                                           rec.crowd):
            ann = {"id": len(anns) + 1, "image_id": rec.coco_id, "category_id": dataset.category_ids[label],
                   "bbox": [float(v) for v in box], "area": float(box[2] * box[3]), "iscrowd": int(crowd)}
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
