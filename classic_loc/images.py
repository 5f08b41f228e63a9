"""Reading images into arrays: RGB ``(rows, cols, 3)`` or grayscale ``(rows, cols)`` uint8.

numpy and OpenCV only, so that the prediction path stays lean.

Images are decoded as they are shown, as OpenCV's ``imread`` does by default: a JPEG,
PNG, WebP or TIFF whose EXIF orientation is 2..8 is flipped and rotated upright (so an
orientation of 5..8 swaps width and height). :func:`image_size` reads the same shown
size from the file header alone.

Limits
------
An image of more than :data:`MAX_IMAGE_PIXELS` pixels (100,000,000 by default; the
environment variable ``CLASSIC_LOC_MAX_IMAGE_PIXELS`` overrides it) is refused with an
"image too large" :class:`~classic_loc.errors.DataError`. For JPEG, PNG, BMP, GIF, WebP,
TIFF and PNM the size is checked from the header before any pixel is decoded; other
formats are checked once decoded. Only regular files are opened: a folder, FIFO or
device named like an image is refused instead of blocking on it.
"""

import os
import stat

import numpy as np
import cv2

from ._imageheader import read_header
from .errors import DataError

__all__ = ["read_image", "image_size", "to_gray", "MAX_IMAGE_PIXELS", "MAX_IMAGE_PIXELS_ENV"]

#: Largest image (width x height) decoded; ``CLASSIC_LOC_MAX_IMAGE_PIXELS`` overrides it.
MAX_IMAGE_PIXELS = 100_000_000
MAX_IMAGE_PIXELS_ENV = "CLASSIC_LOC_MAX_IMAGE_PIXELS"

# decoded as shown (EXIF orientation applied, as IMREAD_UNCHANGED would not), keeping
# 16-bit depth and gray as gray; an alpha channel is dropped by OpenCV
_DECODE_FLAGS = cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH

_FILE_TYPES = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a device"),
               (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket"))


def printable(path):
    """``path`` as text that fits one message line (odd characters escaped)."""
    text = os.fsdecode(path) if isinstance(path, bytes) else str(path)
    if text.isprintable():
        try:
            text.encode("utf-8")
            return text
        except UnicodeEncodeError:
            pass
    return ascii(text)[1:-1]


def open_regular(path, what="image"):
    """Open ``path`` for binary reading, refusing anything but a regular file.

    The file is opened without blocking (a FIFO would otherwise wait for a writer) and
    checked with ``fstat``. A name with a NUL byte or characters the file system cannot
    encode, a folder, FIFO, device or socket raise :class:`DataError`; other failures
    (a missing file, no permission) raise the ``OSError`` for the caller to word.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except (ValueError, UnicodeError):  # embedded NUL byte, unencodable surrogates
        raise DataError(printable(path), "", "the file name holds a NUL byte or characters that are not valid text",
                        "rename the file (and its entry) with printable characters", kind="bad file name") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = next((name for test, name in _FILE_TYPES if test(mode)), "not a regular file")
            noun = what if what.endswith("file") else f"{what} file"
            raise DataError(printable(path), "", f"the {what} path is {kind}, not a regular file",
                            f"give the path of {'an' if noun[0] in 'aeiou' else 'a'} {noun}", kind="not a file")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def max_image_pixels():
    """The pixel limit in force: ``$CLASSIC_LOC_MAX_IMAGE_PIXELS`` if set, else :data:`MAX_IMAGE_PIXELS`."""
    value = os.environ.get(MAX_IMAGE_PIXELS_ENV, "").strip()
    if not value:
        return MAX_IMAGE_PIXELS
    try:
        limit = int(value)
    except ValueError:
        limit = 0
    if limit <= 0:
        raise DataError(MAX_IMAGE_PIXELS_ENV, "", f"{value!r} is not a positive whole number of pixels",
                        f"set it to a pixel count such as {MAX_IMAGE_PIXELS} or unset it", kind="bad setting")
    return limit


def check_pixels(path, width, height):
    """Raise the "image too large" DataError when ``width x height`` is over the limit."""
    limit = max_image_pixels()
    if width * height > limit:
        raise DataError(printable(path), "", f"image too large: {width}x{height} is {width * height:,} pixels, "
                        f"over the limit of {limit:,}",
                        f"downscale the image, or raise the limit with {MAX_IMAGE_PIXELS_ENV}=<pixels>",
                        kind="image too large")


def _open(path):
    try:
        return open_regular(path, "image")
    except OSError as exc:
        raise DataError(printable(path), "", f"cannot read the image ({exc.strerror or exc})",
                        "check that the file exists and is readable", kind="missing image") from None


def _undecodable(path):
    return DataError(printable(path), "", "cannot decode the image",
                     "replace it with a valid JPEG/PNG/BMP/TIFF file or remove it from the dataset",
                     kind="undecodable image")


def image_size(path):
    """``(width, height)`` of the image at ``path`` as it is shown, from its header.

    JPEG, PNG, BMP, GIF, WebP and PNM are read from the header only (no pixel is
    decoded); another format is decoded, and so is TIFF after its header passed the
    pixel limit (libtiff chooses among a file's directories and tag types in ways a
    header reader cannot follow exactly: fuzzed files disagreed). Raises DataError as
    :func:`read_image` does, including "image too large".
    """
    with _open(path) as fh:
        try:
            header = read_header(fh)
        except OSError:
            header = None
    if header is None or header.format == "TIFF":
        if header is not None:
            check_pixels(path, header.width, header.height)
        img = read_image(path)
        return int(img.shape[1]), int(img.shape[0])
    check_pixels(path, header.width, header.height)
    return header.width, header.height


def read_image(path):
    """Decode the image file at ``path``, as it is shown (EXIF orientation applied).

    Returns
    -------
    ndarray of uint8
        ``(rows, cols)`` for a grayscale file, ``(rows, cols, 3)`` RGB otherwise
        (an alpha channel is dropped, 16-bit images are scaled to 8 bits).

    Raises
    ------
    DataError
        When the file is missing, not a regular file, larger than the pixel limit
        (checked from the header before decoding) or cannot be decoded.
    """
    with _open(path) as fh:
        try:
            header = read_header(fh, orientation=False)  # for the pixel limit only
            if header is not None:
                check_pixels(path, header.width, header.height)
            fh.seek(0)
            raw = np.frombuffer(fh.read(), dtype=np.uint8)
        except OSError as exc:
            raise DataError(printable(path), "", f"cannot read the image ({exc.strerror or exc})",
                            "check that the file is readable", kind="missing image") from None
    try:
        img = cv2.imdecode(raw, _DECODE_FLAGS) if raw.size else None
    except cv2.error:
        img = None
    if img is None or img.size == 0:
        raise _undecodable(path)
    check_pixels(path, img.shape[1], img.shape[0])  # formats whose header is not read
    if img.dtype != np.uint8:
        img = cv2.convertScaleAbs(img, alpha=255.0 / max(float(np.nanmax(img)), 1.0))
    if img.ndim == 3:
        if img.shape[2] == 1:
            img = img[:, :, 0]
        elif img.shape[2] == 4:
            img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
        else:
            img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return img


def to_gray(image):
    """Return a 2-D uint8/float view of ``image`` (RGB is converted, gray is returned as is)."""
    image = np.asarray(image)
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    if image.ndim == 3 and image.shape[2] == 1:
        return image[:, :, 0]
    raise ValueError(f"expected an image of shape (rows, cols) or (rows, cols, 3), got {image.shape}")
