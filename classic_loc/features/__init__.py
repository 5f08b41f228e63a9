"""Image features for the sliding-window localizer (numpy and OpenCV only).

See :mod:`classic_loc.features.hog` for the HOG grid computed once per image
(pyramid level), from which every sliding window is a slice,
:mod:`classic_loc.features.fhog` for Felzenszwalb's variant in the same layout,
and :mod:`classic_loc.features.haar` for Viola and Jones' Haar-like features,
computed for every window of a level at once from its integral image.
"""

from .fhog import FHOG_FEATURES, fhog_grid

from .haar import HAAR_TYPES, HaarModel, haar_feature_coords, haar_features, integral_images
from .hog import (
    BLOCK_NORMS,
    hog_blocks,
    hog_cells,
    hog_grid,
    score_windows,
    window_features,
    window_view,
)

__all__ = [
    "BLOCK_NORMS",
    "FHOG_FEATURES",
    "HAAR_TYPES",
    "HaarModel",
    "fhog_grid",
    "haar_feature_coords",
    "haar_features",
    "hog_blocks",
    "hog_cells",
    "hog_grid",
    "integral_images",
    "score_windows",
    "window_features",
    "window_view",
]
