"""Helpers every reader shares: error collection, box checks, safe paths, image sizes."""

import os
import stat
import warnings
from collections import Counter

import numpy as np

from ..errors import DataError, DataWarning
from ..images import image_size as _image_size
from ..images import open_regular, printable

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm")
# boxes may overshoot the image by this much (float noise from normalised or
# scaled coordinates); they are clipped. Anything further out is an error.
BORDER_TOLERANCE = 1e-3
# largest image side a file may declare (OpenCV's own limit): a width or height of more is an error
MAX_DECLARED_SIDE = 1 << 20


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
    try:
        box = np.asarray(box, dtype=np.float64).reshape(4)
    except (TypeError, ValueError, OverflowError):
        raise DataError(file, item, f"box {box!r} is not 4 numbers", "write 4 finite numbers", kind="bad box") from None
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


def check_name(name, file, item, what="image file name"):
    """Return ``name`` stripped, or DataError for a non-string, NUL, control or unencodable characters."""
    if not isinstance(name, str):
        raise DataError(file, item, f"{what} {name!r} is not a string", f"write the {what} as text",
                        kind="bad file name")
    name = name.strip()
    bad = next((c for c in name if ord(c) < 32 or ord(c) == 127 or 0xD800 <= ord(c) <= 0xDFFF), None)
    if bad is not None:
        raise DataError(file, item, f"{what} {ascii(name)} holds the character {ascii(bad)}",
                        f"rename the file with printable characters and fix the {what}", kind="bad file name")
    return name


def inside(path, *roots):
    """Whether ``path``, symbolic links resolved, lies inside one of the folders ``roots``."""
    full = os.path.realpath(path)
    for root in roots:
        root_real = os.path.realpath(root)
        if full == root_real or os.path.commonpath([root_real, full]) == root_real:
            return True
    return False


def safe_join(root, name, file, item, within=None, what="image file name"):
    """Join ``name`` to ``root``, refusing absolute names and names that leave ``within``.

    ``within`` (default ``root``) is the dataset folder nothing may leave, symbolic links
    resolved: a link that stays inside it is fine, and so is one inside ``root`` itself
    (when ``root`` is a linked folder, its target is where the files are). Returns the
    joined path with its links resolved.
    """
    name = check_name(name, file, item, what)
    within = root if within is None else within
    noun = what.replace(" file name", "").replace(" name", "")
    if not name or os.path.isabs(name) or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise DataError(file, item, f"{what} {name!r} is empty or absolute",
                        f"give the {noun} path relative to the dataset folder", kind="unsafe path")
    full = os.path.realpath(os.path.join(os.path.realpath(root), name))
    if not inside(full, within, root):
        raise DataError(file, item, f"{what} {name!r} points outside the dataset folder {within}",
                        f"keep {noun}s inside the dataset folder and use relative paths", kind="unsafe path")
    return full


def check_inside(path, root, file, item, what="image", folder=None):
    """DataError (kind "unsafe path") when ``path`` is a link leading outside the folder ``root``.

    A file inside ``folder`` (the folder holding it, which may itself be a link the user
    made, e.g. ``images/`` on another disk) is fine too.
    """
    if not inside(path, root, *([folder] if folder else [])):
        raise DataError(file, item, f"the {what} {printable(path)} is a symbolic link leading outside the "
                        f"dataset folder {printable(root)} (to {printable(os.path.realpath(path))})",
                        f"copy the {what} into the dataset folder or link to a file inside it", kind="unsafe path")


def check_image_file(path, file, item):
    """Raise DataError when ``path`` is not an existing regular file."""
    try:
        st = os.stat(path)
    except (ValueError, UnicodeError):
        raise DataError(file, item, f"image file name {printable(path)} holds a NUL byte or characters that are "
                        "not valid text", "rename the file with printable characters", kind="bad file name") from None
    except OSError:
        raise DataError(file, item, f"image file {printable(path)} is missing",
                        "add the image or remove its entry from the annotations", kind="missing image") from None
    if not stat.S_ISREG(st.st_mode):
        raise DataError(file, item, f"image file {printable(path)} is not a regular file (a folder, FIFO or device)",
                        "give the path of an image file", kind="not a file")


def image_size(path, file, item):
    """(width, height) as the image is shown, read from its header without decoding the pixels.

    Formats the header reader does not know are decoded. Raises DataError for a missing or
    non-regular file, an image over the pixel limit or one that cannot be decoded.
    """
    check_image_file(path, file, item)
    return _image_size(path)


def read_text(path, what):
    """The whole text of a UTF-8 file (newlines as ``\\n``), as DataError if unreadable.

    ``text.split("\\n")`` gives the lines numbered as an editor shows them.
    """
    try:
        with open_regular(path, f"{what} file") as fh:
            return fh.read().decode("utf-8-sig").replace("\r\n", "\n").replace("\r", "\n")
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


def check_classes(classes, file):
    """The class names as a list of str, or DataError for an empty, odd or repeated name."""
    names = []
    for k, name in enumerate(classes):
        if not isinstance(name, str) or not name.strip():
            raise DataError(file, f"class {k + 1}", f"class name {name!r} is empty or not text",
                            "give every class a non-empty name", kind="malformed classes")
        if not name.isprintable():
            raise DataError(file, f"class {k + 1}", f"class name {ascii(name)} holds a control character",
                            "use printable class names", kind="malformed classes")
        if name in names:
            raise DataError(file, f"class {k + 1}", f"class name {name!r} is listed twice",
                            "list every class once", kind="malformed classes")
        names.append(name)
    return names
