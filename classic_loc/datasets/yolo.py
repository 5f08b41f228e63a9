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
``data.yaml`` (a list, or a mapping from 0, 1, 2 ... to names).

An Ultralytics ``data.yaml`` (read with PyYAML's safe loader) also gives the splits: given as the
dataset path, or found in the folder with an entry for the split asked (``train``, ``val``,
``test``), its ``path:`` is the root (relative to the YAML file's folder; default that folder) and
each split entry is a folder of images (searched with its subfolders), a ``.txt`` list of image
paths (``./x`` relative to the list's folder, other relative paths to the root), or a list of
those. An image's label file is found as Ultralytics does: its path with the last ``/images/``
replaced by ``/labels/`` and the extension by ``.txt``.
"""

import os

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


_YAML_FIX = "fix the YAML (an Ultralytics data.yaml: path, train, val, test, names)"


def _load_data_yaml(path):
    """The mapping of a data.yaml (PyYAML's safe loader); DataError naming the line for bad YAML."""
    import yaml

    text = read_text(path, "data.yaml")
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
        raise DataError(path, f"line {mark.line + 1}" if mark else "", f"is not valid YAML: {problem}", _YAML_FIX,
                        kind="malformed classes") from None
    if not isinstance(doc, dict):
        raise DataError(path, "", "is not a YAML mapping of keys to values", _YAML_FIX, kind="malformed classes")
    return doc


def _yaml_names(path, doc=None):
    """Class names from the ``names:`` of a data.yaml: a list, or a mapping from 0, 1, 2 ... to names."""
    doc = _load_data_yaml(path) if doc is None else doc
    if "names" not in doc:
        raise DataError(path, "", "no 'names:' entry", _NAMES_FIX, kind="missing classes")
    value = doc["names"]
    if isinstance(value, dict):
        if sorted(value, key=str) != sorted(range(len(value)), key=str) or not all(isinstance(k, int) for k in value):
            raise DataError(path, "names", "is not a list nor a mapping from 0, 1, 2 ... to names", _NAMES_FIX,
                            kind="malformed classes")
        value = [value[k] for k in range(len(value))]
    if not isinstance(value, list):
        raise DataError(path, "names", f"cannot read names: {value!r}", _NAMES_FIX, kind="malformed classes")
    if not value or not all(isinstance(v, (str, int, float)) and not isinstance(v, bool) and str(v).strip()
                            for v in value):
        raise DataError(path, "names", "holds no class names or an empty one", _NAMES_FIX, kind="malformed classes")
    names = [str(v).strip() for v in value]
    nc = doc.get("nc")
    if nc is not None and nc != len(names):
        raise DataError(path, "nc", f"says {nc!r} classes but names: has {len(names)}",
                        "make nc the number of names, or leave it out", kind="malformed classes")
    return names


def _yaml_file(root):
    """The data.yaml ``root`` is, or holds (None without one)."""
    if os.path.isfile(root) and root.lower().endswith((".yaml", ".yml")):
        return root
    for name in ("data.yaml", "data.yml"):
        path = os.path.join(root, name)
        if os.path.isdir(root) and os.path.lexists(path):
            check_inside(path, root, path, "", "data.yaml")
            return path
    return None


def _yaml_images(path, doc, split):
    """[(item, image path)] of ``split`` in a data.yaml: folders, .txt lists, or lists of those."""
    base = os.path.dirname(os.path.abspath(path))
    root = doc.get("path")
    if root is not None and not isinstance(root, str):
        raise DataError(path, "path", f"{root!r} is not a folder path", _YAML_FIX, kind="malformed file")
    root = base if not root else os.path.join(base, os.path.expanduser(root))
    value = doc[split]
    entries = value if isinstance(value, list) else [value]
    out = []
    for entry in entries:
        if not isinstance(entry, str) or not entry.strip():
            raise DataError(path, split, f"{entry!r} is not a folder or .txt list of images", _YAML_FIX,
                            kind="malformed file")
        where = os.path.join(root, os.path.expanduser(entry.strip()))
        if os.path.isdir(where):
            for folder, dirs, files in os.walk(where):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                out += [(f"image {printable(f)!r}", os.path.join(folder, f)) for f in sorted(files)
                        if os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS and not f.startswith(".")]
        elif os.path.isfile(where) and where.lower().endswith(".txt"):
            lines = read_text(where, "image list").split("\n")
            for n, line in enumerate(lines, 1):
                name = check_name(line, where, f"line {n}") if line.strip() else ""
                if not name:
                    continue
                full = (os.path.join(os.path.dirname(where), name[2:]) if name.startswith("./")
                        else os.path.join(root, name))
                out.append((f"{printable(os.path.basename(where))} line {n}", full))
        else:
            raise DataError(path, split, f"{printable(entry)!r}: no such folder or .txt list of images "
                            f"(looked for {printable(where)})",
                            "give a folder of images or a .txt list of image paths, relative to path:",
                            kind="missing folder")
    return out


def _label_path(image):
    """Ultralytics' label file of an image: the last /images/ of its path made /labels/, the extension .txt."""
    image = os.path.abspath(image)
    a, b = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    path = b.join(image.rsplit(a, 1)) if a in image else os.path.join(os.path.dirname(image), "labels",
                                                                        os.path.basename(image))
    return os.path.splitext(path)[0] + ".txt"


def _read_classes(root):
    """(class names, the file they came from) from classes.txt, obj.names or data.yaml."""
    for name in ("classes.txt", "obj.names"):
        path = os.path.join(root, name)
        if os.path.lexists(path):
            check_inside(path, root, path, "", "class list")
            return check_classes(read_lines(path, "classes"), path), path
    path = _yaml_file(root)
    if path is not None:
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
    yaml_path = _yaml_file(root)
    if yaml_path is not None:
        doc = _load_data_yaml(yaml_path)
        if split in doc and doc[split] is not None:
            return _read_yaml_split(yaml_path, doc, split, classes, classes_file, problems)
        if yaml_path == root:  # the YAML was given: it must have the split
            have = [k for k in ("train", "val", "test") if doc.get(k) is not None]
            raise DataError(yaml_path, "", f"no split {split!r}", f"choose one of {have}" if have else
                            "add train: (and val:, test:) entries: folders or .txt lists of images",
                            kind="missing split")
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
    return _records(found, classes, root, problems)


def _read_yaml_split(yaml_path, doc, split, classes, classes_file, problems):
    """The split of an Ultralytics data.yaml (see the module docstring)."""
    found = {}
    for item, path in _yaml_images(yaml_path, doc, split):
        try:
            image_id = os.path.splitext(os.path.basename(path))[0]
            if image_id in found:
                raise duplicate_error(yaml_path, image_id)
            width, height = image_size(path, yaml_path, item)
            label_path = _label_path(path)
            objects = []
            if os.path.lexists(label_path):  # a folder, FIFO or device is refused by read_text
                objects = _read_labels(label_path, len(classes), width, height, classes_file, problems)
            found[image_id] = (path, width, height, objects)
        except DataError as err:
            problems.report(err)
    return _records(found, classes, yaml_path, problems)


def _records(found, classes, root, problems):
    records = []
    for k, image_id in enumerate(sorted(found)):
        path, width, height, objects = found[image_id]
        records.append(ImageRecord(image_id, path, width, height, boxes=[o[1] for o in objects],
                                   labels=[o[0] for o in objects], coco_id=k + 1))
    problems.warn(root)
    return Dataset(records, classes, root=root, format="yolo")
