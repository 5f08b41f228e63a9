"""Datasets in the formats users already have, read into one :class:`Dataset` type.

Only this subpackage knows file formats. Every reader converts its boxes to the
package convention (float ``x1, y1, x2, y2``, continuous pixels, see
:mod:`classic_loc.boxes`) and reports bad input as a one-line
:class:`~classic_loc.errors.DataError`.
"""

import os

from ..errors import DataError
from ._dataset import Dataset, ImageRecord
from .coco import read_coco, write_coco
from .csvfile import read_csv
from .voc import read_voc, write_voc
from .yolo import read_yolo

__all__ = ["Dataset", "ImageRecord", "load_dataset", "detect_format", "FORMATS",
           "read_voc", "read_coco", "read_yolo", "read_csv", "write_voc", "write_coco"]

FORMATS = ("voc", "coco", "yolo", "csv")


def detect_format(path):
    """Guess the format of a dataset path: ``"voc"``, ``"coco"``, ``"yolo"`` or ``"csv"``."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DataError(path, "", "no such file or folder", "check the dataset path", kind="missing file")
    if os.path.isfile(path):
        fmt = {".json": "coco", ".csv": "csv", ".yaml": "yolo", ".yml": "yolo"}.get(os.path.splitext(path)[1].lower())
        if fmt:
            return fmt
    elif not os.path.isdir(path):
        raise DataError(path, "", "is neither a regular file nor a folder (a FIFO or device?)",
                        "give the dataset folder or its annotation file", kind="not a file")
    else:
        entries = set(os.listdir(path))
        if "Annotations" in entries:
            return "voc"
        if "labels" in entries:
            return "yolo"
        if "annotations" in entries or any(e.endswith(".json") for e in entries):
            return "coco"
        if any(e.endswith(".csv") for e in entries):
            return "csv"
    raise DataError(path, "", "cannot tell the dataset format",
                    "pass format= (--format) voc, coco, yolo or csv", kind="unknown format")


def load_dataset(path, split="train", format="auto", skip_bad=False, classes=None, require_images=True,
                 image_root=None):
    """Read a dataset in Pascal VOC, COCO, YOLO or CSV layout.

    Parameters
    ----------
    path : str or path-like
        A VOC folder (``Annotations/``, ``JPEGImages/``, ``ImageSets/Main/``), a COCO
        instances ``.json`` file or folder, a YOLO folder (``images/``, ``labels/``,
        ``classes.txt``) or Ultralytics ``data.yaml``, or a ``.csv`` file or folder of
        ``<split>.csv`` files.
    split : str or None
        Which split to read (``ImageSets/Main/<split>.txt``, ``images/<split>/``,
        ``<split>.csv``, ``instances_<split>.json``); ignored when ``path`` is a file.
        None reads every image of a VOC folder.
    format : {"auto", "voc", "coco", "yolo", "csv"}
    skip_bad : bool
        Turn data errors into a :class:`~classic_loc.errors.DataWarning` with counts,
        skipping the bad boxes or images.
    classes : sequence of str, optional
        Fix the class order (VOC, YOLO, CSV); default: the dataset's class file.
    require_images : bool
        COCO only: when False the image files need not exist (evaluation only).
    image_root : str or path-like, optional
        COCO only: the folder the ``file_name`` entries are relative to, for an instances
        ``.json`` kept apart from its images (default: found next to the file).

    Returns
    -------
    Dataset

    Examples
    --------
    >>> ds = load_dataset("../shared/data/pennfudan", split="test")  # doctest: +SKIP
    >>> len(ds), ds.classes  # doctest: +SKIP
    (51, ('person',))
    """
    fmt = detect_format(path) if format == "auto" else format
    if image_root is not None:
        if fmt != "coco":
            raise DataError(image_root, "", f"an image folder is given for a {fmt} data set",
                            "give --images (image_root) with a COCO instances file only", kind="usage")
        if not os.path.isdir(image_root):
            raise DataError(image_root, "", "no such folder of images",
                            "give the folder the file_name entries of the COCO file are relative to",
                            kind="missing folder")
    if fmt == "voc":
        return read_voc(path, split, classes=classes, skip_bad=skip_bad)
    if fmt == "coco":
        return read_coco(path, split, skip_bad=skip_bad, require_images=require_images, image_root=image_root)
    if fmt == "yolo":
        return read_yolo(path, split, classes=classes, skip_bad=skip_bad)
    if fmt == "csv":
        return read_csv(path, split, classes=classes, skip_bad=skip_bad)
    raise DataError(path, "", f"unknown format {format!r}", f"use 'auto' or one of {', '.join(FORMATS)}",
                    kind="unknown format")
