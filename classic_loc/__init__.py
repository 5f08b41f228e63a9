"""classic_loc: the classical object localization baseline.

HOG features over sliding windows on an image pyramid, a linear SVM per class
with hard-negative mining, score calibration, ridge box refinement and
non-maximum suppression; and the evaluator it shares with CNN models.

Reading order: :mod:`classic_loc.boxes` (the one box convention),
:mod:`classic_loc.datasets` (formats in, one Dataset type out),
:mod:`classic_loc.evaluation` (the shared metrics), :mod:`classic_loc.localizer`
(the estimator) with :mod:`classic_loc.pyramid`, :mod:`classic_loc.features`,
:mod:`classic_loc.scan` (prediction) and :mod:`classic_loc.training` (fit only),
:mod:`classic_loc.model_io` (the model file), :mod:`classic_loc.workflow` and
:mod:`classic_loc.cli` (the command line).

The names below are imported on first use (PEP 562), so ``import classic_loc``
is cheap and the command line can configure threads before numpy loads.
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "box_convert": "boxes", "box_iou": "boxes", "box_area": "boxes", "clip_boxes": "boxes", "nms": "boxes",
    "batched_nms": "boxes",
    "Dataset": "datasets", "ImageRecord": "datasets", "load_dataset": "datasets", "write_coco": "datasets",
    "write_voc": "datasets",
    "evaluate": "evaluation", "read_predictions": "evaluation",
    "Localizer": "localizer", "Detections": "localizer", "Detection": "localizer", "Prediction": "localizer",
    "DataError": "errors", "DataWarning": "errors", "ModelFileError": "errors",
}
# subpackages that are also called: classic_loc.pretrained("face") (a callable module)
_CALLABLE_MODULES = ("pretrained",)

__all__ = ["__version__", *_EXPORTS, *_CALLABLE_MODULES]


def __getattr__(name):
    if name in _CALLABLE_MODULES:
        return importlib.import_module(f".{name}", __name__)
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'classic_loc' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
