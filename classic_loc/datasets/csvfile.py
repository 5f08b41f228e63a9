"""CSV box lists: one row ``image,label,x1,y1,x2,y2`` per box.

The coordinates are the package's own and are read as they are: ``x1, y1, x2, y2``
in continuous pixel coordinates, the top-left corner of the image at ``(0, 0)``
and a box's width ``x2 - x1`` (no ``+1``). A row with an empty label and empty
coordinates is an image without objects. Image paths are relative to the CSV's
folder. An optional header row names the columns (``image``/``filename``/``path``,
``label``/``class``, ``x1``/``xmin`` ...); with ``width`` and ``height`` columns
the image sizes are taken from the file instead of the image headers.
"""

import csv
import io
import os

from ..errors import DataError
from ._common import (MAX_DECLARED_SIDE, Problems, check_box, check_classes, check_image_file, class_index,
                      duplicate_error, image_size, read_lines, read_text, safe_join)
from ._dataset import Dataset, ImageRecord

__all__ = ["read_csv"]

_ALIASES = {"image": ("image", "filename", "path"), "label": ("label", "class"), "x1": ("x1", "xmin"),
            "y1": ("y1", "ymin"), "x2": ("x2", "xmax"), "y2": ("y2", "ymax"),
            "width": ("width",), "height": ("height",)}
_COORDS = ("x1", "y1", "x2", "y2")
_ROW_FIX = ("write one box per row as image,label,x1,y1,x2,y2 "
            "(label and coordinates empty for an image without objects)")


def _is_number(text):
    try:
        float(text)
        return True
    except ValueError:
        return False


def _csv_file(path, split):
    """The CSV file: ``path`` itself, or ``<split>.csv`` in the folder ``path``."""
    if os.path.isfile(path) or (os.path.lexists(path) and not os.path.isdir(path)):
        return path  # a FIFO or device is refused by read_text, not blocked on
    if not os.path.isdir(path):
        raise DataError(path, "", "no such file or folder",
                        "give a .csv file or a folder holding <split>.csv", kind="missing file")
    csv_path = os.path.join(path, f"{split}.csv")
    if split is not None and os.path.isfile(csv_path):
        return csv_path
    have = sorted(f[:-4] for f in os.listdir(path) if f.endswith(".csv"))
    raise DataError(path, "", f"no {split}.csv" if split is not None else "no split named",
                    f"choose a split among {have} or give the .csv file itself" if have
                    else "add <split>.csv to the folder or give the .csv file itself", kind="missing split")


def _columns(header, file, item):
    """Column index of each known column name in a header row."""
    columns = {}
    for k, name in enumerate(header):
        for key, aliases in _ALIASES.items():
            if name.lower() in aliases:
                columns.setdefault(key, k)
    missing = [key for key in ("image", "label") + _COORDS if key not in columns]
    if missing:
        raise DataError(file, item, f"the header has no {', '.join(missing)} column",
                        "name the columns image,label,x1,y1,x2,y2 (and optionally width,height)",
                        kind="malformed header")
    return columns


def _size(row, columns, path, file, item):
    """(width, height) from the row's width and height columns, else from the image header."""
    if "width" not in columns or "height" not in columns or not (row[columns["width"]] and row[columns["height"]]):
        return image_size(path, file, item)
    text = f"{row[columns['width']]}x{row[columns['height']]}"
    try:
        width, height = float(row[columns["width"]]), float(row[columns["height"]])
    except ValueError:
        width = height = 0.0
    if not (0 < width <= MAX_DECLARED_SIDE and 0 < height <= MAX_DECLARED_SIDE and width.is_integer()
            and height.is_integer()):
        raise DataError(file, item, f"image size {text} is not two positive integers",
                        "write the width and height in pixels, or leave them empty to read them from the image",
                        kind="malformed row")
    return int(width), int(height)


def read_csv(path, split="train", classes=None, skip_bad=False):
    """Read a CSV box list.

    Parameters
    ----------
    path : str
        A .csv file (``split`` is then ignored) or a folder holding ``<split>.csv``.
    split : str
        Name of the CSV file in the folder ``path``.
    classes : sequence of str, optional
        Class order; default ``classes.txt`` next to the CSV, else the sorted names found.
    skip_bad : bool
        Skip bad rows and images with a warning instead of raising :class:`DataError`.

    Returns
    -------
    Dataset
        Records in the order of the images' first rows.
    """
    path = os.fspath(path)
    csv_path = _csv_file(path, split)
    folder = os.path.dirname(os.path.abspath(csv_path))
    problems = Problems(skip_bad)
    classes_file = os.path.join(folder, "classes.txt")
    if classes is None and os.path.lexists(classes_file):
        classes = check_classes(read_lines(classes_file, "classes"), classes_file)
    fixed_classes = classes is not None
    classes = list(classes or [])
    reader = csv.reader(io.StringIO(read_text(csv_path, "CSV")))
    try:
        rows = [(f"line {reader.line_num}", [c.strip() for c in row]) for row in reader]
    except csv.Error as exc:
        raise DataError(csv_path, f"line {reader.line_num}", f"malformed CSV ({exc})",
                        "fix the quoting of the row", kind="malformed row") from None
    rows = [(item, row) for item, row in rows if any(row)]
    columns = dict(zip(("image", "label") + _COORDS, range(6)))
    n_columns = 6
    if rows and rows[0][1][0].lower() in _ALIASES["image"] and not any(map(_is_number, rows[0][1][2:6])):
        item, header = rows.pop(0)
        columns, n_columns = _columns(header, csv_path, item), len(header)
    images, ids, bad = {}, set(), set()  # images: image file -> [image_id, width, height, boxes, names]
    for item, row in rows:
        try:
            if len(row) != n_columns:
                raise DataError(csv_path, item, f"{len(row)} columns instead of {n_columns}", _ROW_FIX,
                                kind="malformed row")
            name = row[columns["image"]]
            image_path = safe_join(folder, name, csv_path, item)
            if image_path in bad:
                continue  # its image was reported already
            if image_path not in images:
                try:
                    image_id = os.path.splitext(os.path.basename(name))[0]
                    if image_id in ids:
                        raise duplicate_error(csv_path, image_id)
                    check_image_file(image_path, csv_path, item)  # a folder, FIFO or device is refused
                    images[image_path] = [image_id, *_size(row, columns, image_path, csv_path, item), [], []]
                    ids.add(image_id)
                except DataError:
                    bad.add(image_path)
                    raise
            label, coords = row[columns["label"]], [row[columns[key]] for key in _COORDS]
            if not label and not any(coords):
                continue  # an image without objects
            if not label:
                raise DataError(csv_path, item, "a box without a label",
                                "give the class name, or leave the label and all coordinates empty "
                                "for an image without objects", kind="malformed row")
            for key, value in zip(_COORDS, coords):
                if not _is_number(value):
                    raise DataError(csv_path, item, f"{key} is {value!r}, not a number",
                                    "write the coordinates as numbers in pixels", kind="malformed row")
            _, width, height, boxes, names = images[image_path]
            box = check_box([float(v) for v in coords], width, height, csv_path, item)
            if fixed_classes:
                class_index(label, classes, csv_path, item)
            boxes.append(box)
            names.append(label)
        except DataError as err:
            problems.report(err)
    if not fixed_classes:
        classes = sorted({label for *_, names in images.values() for label in names})
    records = [ImageRecord(image_id, image_path, width, height, boxes=boxes,
                           labels=[classes.index(label) for label in names], coco_id=k + 1)
               for k, (image_path, (image_id, width, height, boxes, names)) in enumerate(images.items())]
    problems.warn(csv_path)
    return Dataset(records, classes, root=csv_path, format="csv")
