"""classic_loc: the classical object localization baseline.

HOG and Haar-like features over sliding windows on an image pyramid, a linear
SVM per class with hard-negative mining, ridge box refinement and
non-maximum suppression; and the evaluator it shares with CNN models.

Reading order: :mod:`classic_loc.boxes` (the one box convention),
:mod:`classic_loc.datasets` (formats in, one Dataset type out),
:mod:`classic_loc.evaluate` (the shared metrics), :mod:`classic_loc.cli`.
"""

__version__ = "0.1.0"

from .boxes import batched_nms, box_area, box_convert, box_iou, clip_boxes, nms
from .datasets import Dataset, ImageRecord, load_dataset, write_coco, write_voc
from .errors import DataError, DataWarning, ModelFileError
from .evaluate import evaluate, read_predictions

__all__ = [
    "__version__",
    "box_convert", "box_iou", "box_area", "clip_boxes", "nms", "batched_nms",
    "Dataset", "ImageRecord", "load_dataset", "write_coco", "write_voc",
    "evaluate", "read_predictions",
    "DataError", "DataWarning", "ModelFileError",
]
