"""Reading images into arrays: RGB ``(rows, cols, 3)`` or grayscale ``(rows, cols)`` uint8.

numpy and OpenCV only, so that the prediction path stays lean.
"""

import numpy as np
import cv2

from .errors import DataError

__all__ = ["read_image", "to_gray"]


def read_image(path):
    """Decode the image file at ``path``.

    Returns
    -------
    ndarray of uint8
        ``(rows, cols)`` for a grayscale file, ``(rows, cols, 3)`` RGB otherwise
        (an alpha channel is dropped, 16-bit images are scaled to 8 bits).

    Raises
    ------
    DataError
        When the file is missing or cannot be decoded.
    """
    try:
        raw = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise DataError(path, "", f"cannot read the image ({exc.strerror or exc})",
                        "check that the file exists and is readable", kind="missing image") from None
    img = cv2.imdecode(raw, cv2.IMREAD_UNCHANGED) if raw.size else None
    if img is None:
        raise DataError(path, "", "cannot decode the image",
                        "replace it with a valid JPEG/PNG/BMP/TIFF file or remove it from the dataset",
                        kind="undecodable image")
    if img.dtype != np.uint8:
        img = cv2.convertScaleAbs(img, alpha=255.0 / max(float(img.max()), 1.0))
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
