"""Helpers every reader shares: error collection, box checks, safe paths, image sizes."""

import os
import warnings
from collections import Counter

import numpy as np

from ..errors import DataError, DataWarning

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm")
# boxes may overshoot the image by this much (float noise from normalised or
# scaled coordinates); they are clipped. Anything further out is an error.
BORDER_TOLERANCE = 1e-3


class Problems:
    """Collects data errors: raises the first one, or with ``skip_bad`` counts them.

    Readers call :meth:`report` with a :class:`DataError` and then skip the item
    themselves when it returns (it only returns when ``skip_bad`` is true).
    """

    def __init__(self, skip_bad=False):
        self.skip_bad = skip_bad
        self.counts = Counter()
        self.first = None

    def report(self, error):
        if not self.skip_bad:
            raise error
        self.counts[error.kind] += 1
        if self.first is None:
            self.first = str(error)

    def warn(self, where):
        if self.counts:
            what = ", ".join(f"{n} {kind}{'s' if n > 1 else ''}" for kind, n in sorted(self.counts.items()))
            warnings.warn(f"{where}: skipped {what} (first: {self.first})", DataWarning, stacklevel=3)


def check_box(box, width, height, file, item):
    """Validate one xyxy box against its image; return it clipped within the tolerance.

    Raises DataError for non-finite values, x2 <= x1, y2 <= y1 or a box outside the image.
    """
    box = np.asarray(box, dtype=np.float64)
    if not np.all(np.isfinite(box)):
        raise DataError(file, item, f"box {box.tolist()} has a non-finite coordinate",
                        "write finite numbers", kind="bad box")
    x1, y1, x2, y2 = box
    if x2 <= x1 or y2 <= y1:
        raise DataError(file, item, f"box (x1={x1:g}, y1={y1:g}, x2={x2:g}, y2={y2:g}) has "
                        f"{'x2 <= x1' if x2 <= x1 else 'y2 <= y1'}",
                        "fix the coordinates so that the box has a positive width and height", kind="bad box")
    tol = BORDER_TOLERANCE
    if width and height and (x1 < -tol or y1 < -tol or x2 > width + tol or y2 > height + tol):
        raise DataError(file, item, f"box (x1={x1:g}, y1={y1:g}, x2={x2:g}, y2={y2:g}) lies outside "
                        f"the {width}x{height} image", "clip the box to the image or fix the image size",
                        kind="box outside image")
    if width and height:
        box = np.array([max(x1, 0.0), max(y1, 0.0), min(x2, width), min(y2, height)])
    return box


def safe_join(root, name, file, item):
    """Join ``name`` to ``root``, refusing absolute names and names that leave ``root``."""
    name = str(name).strip()
    root_real = os.path.realpath(root)
    if not name or os.path.isabs(name) or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise DataError(file, item, f"image file name {name!r} is empty or absolute",
                        "give the image path relative to the dataset folder", kind="unsafe path")
    full = os.path.realpath(os.path.join(root_real, name))
    if os.path.commonpath([root_real, full]) != root_real:
        raise DataError(file, item, f"image file name {name!r} points outside the dataset folder {root}",
                        "keep images inside the dataset folder and use relative paths", kind="unsafe path")
    return full


def check_image_file(path, file, item):
    """Raise DataError when ``path`` is not an existing file."""
    if not os.path.isfile(path):
        raise DataError(file, item, f"image file {path} is missing",
                        "add the image or remove its entry from the annotations", kind="missing image")


def image_size(path, file, item):
    """(width, height) read from the image header without decoding the pixels."""
    check_image_file(path, file, item)
    try:
        from PIL import Image

        with Image.open(path) as im:
            return int(im.width), int(im.height)
    except Exception:  # PIL missing, or a format it cannot read: decode with OpenCV
        from ..images import read_image

        img = read_image(path)
        return int(img.shape[1]), int(img.shape[0])


def read_text(path, what):
    """The whole text of a UTF-8 file (newlines as ``\\n``), as DataError if unreadable.

    ``text.split("\\n")`` gives the lines numbered as an editor shows them.
    """
    try:
        with open(path, encoding="utf-8-sig") as fh:
            return fh.read()
    except UnicodeDecodeError:
        raise DataError(path, "", f"the {what} file is not UTF-8 text", "save it as UTF-8 text", kind="bad file") from None
    except OSError as exc:
        raise DataError(path, "", f"cannot read the {what} file ({exc.strerror})",
                        f"check that the {what} file exists", kind="missing file") from None


def read_lines(path, what):
    """Non-empty stripped lines of a text file (ids, class names), as DataError if unreadable."""
    return [ln.strip() for ln in read_text(path, what).split("\n") if ln.strip()]


def class_index(name, classes, file, item):
    """Index of class ``name``, or DataError naming the known classes."""
    try:
        return classes.index(name)
    except ValueError:
        known = ", ".join(classes[:20]) + (" ..." if len(classes) > 20 else "")
        raise DataError(file, item, f"unknown class name {name!r}",
                        f"use one of the dataset's classes ({known}) or add it to the class list",
                        kind="unknown class") from None


def duplicate_error(file, image_id):
    return DataError(file, f"image {image_id!r}", "duplicate image id",
                     "give every image a unique file name and list it once", kind="duplicate id")
