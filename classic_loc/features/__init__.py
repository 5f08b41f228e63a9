"""Image features for the sliding-window localizer (numpy and OpenCV only).

See :mod:`classic_loc.features.hog` for the HOG grid computed once per image
(pyramid level), from which every sliding window is a slice, and
:mod:`classic_loc.features.fhog` for Felzenszwalb's variant in the same layout.
"""

from .fhog import FHOG_FEATURES, fhog_grid

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
    "fhog_grid",
    "hog_blocks",
    "hog_cells",
    "hog_grid",
    "score_windows",
    "window_features",
    "window_view",
]
