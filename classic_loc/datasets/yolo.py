"""YOLO (Darknet / ultralytics) folders: one ``<stem>.txt`` label file per image.

Two layouts are read:

- ``images/<split>/`` with ``labels/<split>/<stem>.txt``;
- flat ``images/`` with ``labels/<stem>.txt``, and an optional ``<split>.txt`` at the
  root listing the split's images (paths relative to the root, file names or stems);
  ``split=None`` reads every image of the flat layout.

Each label line is ``class cx cy w h``: the 0-based class index, then the box centre
and size divided by the image width and height. It becomes the package's
``((cx - w/2) W, (cy - h/2) H, (cx + w/2) W, (cy + h/2) H)`` with the image size read
from the image header. An image without a label file, or with an empty one, has no
objects. Class names come from ``classes.txt``, ``obj.names`` or the ``names:`` of
``data.yaml`` (read without a YAML library: a block list, an inline list or an
index mapping).
"""

import os
import re

import numpy as np

from ..errors import DataError
from ..images import printable
from ._common import (IMAGE_EXTENSIONS, Problems, check_box, check_classes, check_inside, check_name,
                      duplicate_error, image_size, read_lines, read_text, safe_join)
from ._dataset import Dataset, ImageRecord

__all__ = ["read_yolo"]

# normalised coordinates may overshoot [0, 1] by this much (exporters round to 6
# digits); they are clipped. Anything further out is an error.
_ROUNDING = 1e-5
_LINE_FIX = ("write one box per line as 'class cx cy w h', the class index then 4 numbers "
             "normalised to [0, 1] (segmentation polygons are not supported)")
_NAMES_FIX = "write names: as a list ('- a' lines or [a, b]) or a mapping ('0: a' lines), or add classes.txt"


def _unquote(text):
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def _yaml_names(path):
    """Class names from the ``names:`` of a data.yaml: ``- a`` lines, ``[a, b]`` or ``0: a`` lines."""
    lines = [re.sub(r"(^|\s)#.*", "", ln).rstrip() for ln in read_text(path, "data.yaml").split("\n")]
    start = next((k for k, ln in enumerate(lines) if ln.startswith("names:")), None)
    if start is None:
        raise DataError(path, "", "no 'names:' entry", _NAMES_FIX, kind="missing classes")
    item = f"line {start + 1}"
    value = lines[start][len("names:"):].strip()
    if value.startswith("["):  # inline list, possibly over several lines
        end = start
        while "]" not in value and end + 1 < len(lines):
            end += 1
            value += " " + lines[end].strip()
        if not value.endswith("]"):
            raise DataError(path, item, "the names: [...] list is not closed", _NAMES_FIX, kind="malformed classes")
        names = [_unquote(t) for t in re.findall(r"""'[^']*'|"[^"]*"|[^,\s][^,]*""", value[1:-1])]
    elif value:
        raise DataError(path, item, f"cannot read names: {value!r}", _NAMES_FIX,
                        kind="malformed classes")
    else:
        block = []
        for ln in lines[start + 1:]:
            if ln and not ln[0].isspace() and not ln.startswith("-"):
                break  # the next top-level key
            if ln.strip():
                block.append(ln.strip())
        if all(b.startswith("-") for b in block):
            names = [_unquote(b[1:]) for b in block]
        else:
            try:
                mapping = {int(key): _unquote(name) for key, name in (b.split(":", 1) for b in block)}
            except ValueError:
                mapping = {}
            if sorted(mapping) != list(range(len(block))):
                raise DataError(path, item, "names: is not a list nor a mapping from 0, 1, 2 ... to names",
                                _NAMES_FIX, kind="malformed classes")
            names = [mapping[k] for k in range(len(block))]
    if not names or not all(names):
        raise DataError(path, item, "names: holds no class names or an empty one", _NAMES_FIX,
                        kind="malformed classes")
    return names


def _read_classes(root):
    """(class names, the file they came from) from classes.txt, obj.names or data.yaml."""
    for name in ("classes.txt", "obj.names"):
        path = os.path.join(root, name)
        if os.path.lexists(path):
            check_inside(path, root, path, "", "class list")
            return check_classes(read_lines(path, "classes"), path), path
    path = os.path.join(root, "data.yaml")
    if os.path.lexists(path):
        check_inside(path, root, path, "", "class list")
        return check_classes(_yaml_names(path), path), path
    raise DataError(root, "", "no class list (classes.txt, obj.names or data.yaml)",
                    "add classes.txt with one class name per line in class-index order, or pass classes",
                    kind="missing classes")


def _image_files(folder):
    """[(item, file name)] of the images in ``folder``, sorted."""
    names = sorted(f for f in os.listdir(folder)
                   if os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS and not os.path.isdir(os.path.join(folder, f)))
    return [(f"image {printable(f)!r}", f) for f in names]  # a FIFO or device is refused when read


def _split_entries(root, split):
    """(images folder, labels folder, split file or None, [(item, name)]) of the split's images."""
    images, labels = os.path.join(root, "images"), os.path.join(root, "labels")
    if not os.path.isdir(images):
        raise DataError(images, "", "no images folder",
                        "put the images in images/<split>/ (or images/) and their label files in "
                        "labels/<split>/ (or labels/)", kind="missing folder")
    splits = sorted(d for d in os.listdir(images) if os.path.isdir(os.path.join(images, d)))
    if split is None:
        if splits:
            raise DataError(images, "", f"holds the split folders {splits}",
                            f"name the split to read, e.g. split={splits[0]!r}", kind="missing split")
        return images, labels, None, _image_files(images)
    if split in splits:
        images, labels = os.path.join(images, split), os.path.join(labels, split)
        return images, labels, None, _image_files(images)
    split_file = os.path.join(root, f"{split}.txt")
    if os.path.isfile(split_file):
        lines = read_text(split_file, "split").split("\n")
        return images, labels, split_file, [(f"line {n}", ln.strip()) for n, ln in enumerate(lines, 1) if ln.strip()]
    have = splits + sorted(f[:-4] for f in os.listdir(root) if f.endswith(".txt") and f != "classes.txt")
    raise DataError(root, "", f"no split {split!r} (neither images/{split}/ nor {split}.txt)",
                    (f"choose one of {have}" if have else f"add images/{split}/ or {split}.txt")
                    + ("" if splits else " or pass split=None to read every image"), kind="missing split")


def _find_image(root, images, name, split_file, item):
    """Image of a split-file line: a path relative to the root, a file name in images/ or a stem."""
    path = safe_join(root, name, split_file, item)
    if os.path.lexists(path) and not os.path.isdir(path):
        return path
    for candidate in [name] + [name + ext for ext in IMAGE_EXTENSIONS]:
        path = safe_join(images, candidate, split_file, item, within=root)
        if os.path.lexists(path) and not os.path.isdir(path):
            return path
    raise DataError(split_file, item, f"image {name!r} is missing (not in the dataset folder nor in images/)",
                    "add the image or remove its line from the split file", kind="missing image")


def _parse_line(line, n_classes, width, height, path, item, classes_file):
    """(class index, xyxy pixel box) of one label line."""
    fields = line.split()
    if len(fields) != 5:
        raise DataError(path, item, f"{len(fields)} fields instead of 5", _LINE_FIX, kind="malformed line")
    values = []
    for field in fields:
        try:
            values.append(float(field))
        except ValueError:
            raise DataError(path, item, f"{field!r} is not a number", _LINE_FIX, kind="malformed line") from None
    cls, cx, cy, w, h = values
    if not cls.is_integer():
        raise DataError(path, item, f"class index {fields[0]!r} is not an integer",
                        "write the class as its 0-based index in the class list", kind="bad class")
    if not 0 <= cls < n_classes:
        raise DataError(path, item, f"class index {int(cls)} is out of range for {n_classes} classes",
                        f"use an index from 0 to {n_classes - 1} or add the class to {classes_file}",
                        kind="bad class")
    if not (w > 0 and h > 0):
        raise DataError(path, item, f"box size w={w:g} h={h:g} is not positive",
                        "write the box width and height as positive fractions of the image size", kind="bad box")
    if max(cx, cy, w, h) > 1 + _ROUNDING:
        raise DataError(path, item, f"box {cx:g} {cy:g} {w:g} {h:g} is not normalised to [0, 1]",
                        "divide cx and w by the image width and cy and h by its height", kind="bad box")
    box = np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
    clipped = np.clip(box, 0.0, 1.0)
    box = np.where(np.abs(box - clipped) <= _ROUNDING, clipped, box)
    return int(cls), check_box(box * [width, height, width, height], width, height, path, item)


def _read_labels(path, n_classes, width, height, classes_file, problems):
    """[(class index, box)] of a label file; bad lines go to ``problems``."""
    objects = []
    for n, line in enumerate(read_text(path, "label").split("\n"), 1):
        if line.strip():
            try:
                objects.append(_parse_line(line, n_classes, width, height, path, f"line {n}", classes_file))
            except DataError as err:
                problems.report(err)
    return objects


def read_yolo(root, split="train", classes=None, skip_bad=False):
    """Read a YOLO (Darknet / ultralytics) folder.

    Parameters
    ----------
    root : str
        The folder holding ``images/`` and ``labels/`` (and the class list).
    split : str or None
        ``images/<split>/`` or, in the flat layout, the ``<split>.txt`` list of images;
        None reads every image of the flat layout.
    classes : sequence of str, optional
        Class names in class-index order; default ``classes.txt``, ``obj.names`` or
        ``data.yaml`` at the root.
    skip_bad : bool
        Skip bad label lines and images with a warning instead of raising :class:`DataError`.

    Returns
    -------
    Dataset
        Records sorted by image id (the file stem).
    """
    root = os.fspath(root)
    problems = Problems(skip_bad)
    if classes is None:
        classes, classes_file = _read_classes(root)
    else:
        classes_file = "the classes argument"
    classes = list(classes)
    images, labels, split_file, entries = _split_entries(root, split)
    if not os.path.isdir(labels):
        raise DataError(labels, "", "no labels folder",
                        f"put one <image stem>.txt label file per image in {labels} "
                        "(an image without objects needs none)", kind="missing folder")
    found = {}
    for item, name in entries:
        try:
            if split_file:
                path = _find_image(root, images, name, split_file, item)
            else:
                path = os.path.join(images, check_name(name, images, item))
            check_inside(path, root, split_file or images, item, folder=images)
            image_id = os.path.splitext(os.path.basename(path))[0]
            if image_id in found:
                raise duplicate_error(split_file or images, image_id)
            width, height = image_size(path, split_file or images, item)
            # labels/ mirrors images/ as in ultralytics: images/x/a.jpg -> labels/x/a.txt
            rel = os.path.relpath(os.path.realpath(path), os.path.realpath(images))
            if rel.startswith(".."):
                rel = os.path.basename(path)
            label_path = os.path.join(labels, os.path.splitext(rel)[0] + ".txt")
            objects = []
            if os.path.lexists(label_path):  # a folder, FIFO or device is refused by read_text
                check_inside(label_path, root, label_path, "", "label file", folder=labels)
                objects = _read_labels(label_path, len(classes), width, height, classes_file, problems)
            found[image_id] = (path, width, height, objects)
        except DataError as err:
            problems.report(err)
    records = []
    for k, image_id in enumerate(sorted(found)):
        path, width, height, objects = found[image_id]
        records.append(ImageRecord(image_id, path, width, height, boxes=[o[1] for o in objects],
                                   labels=[o[0] for o in objects], coco_id=k + 1))
    problems.warn(root)
    return Dataset(records, classes, root=root, format="yolo")
