"""The Localizer's parameters: what each one accepts, checked in one place.

:class:`classic_loc.Localizer` stores its parameters as given (scikit-learn's
convention) and checks them here: every parameter at ``fit``, the prediction
settings before every prediction, and a model file's parameters when it is loaded.
A bad value raises a :class:`~classic_loc.errors.DataError` (kind ``"bad parameter"``)
whose one line names the parameter, the value given and the valid range, e.g.
``Localizer: scale_step: 1.00001 is below 1.01 ...; use a number in [1.01, 4] ...``.

Types are strict: a bool is not a number and the string ``"False"`` is not a bool;
an integer parameter takes ``8`` or ``8.0`` but not ``8.5``; numbers must be finite.

The parameters fall in three groups:

- :data:`PREDICTION_SETTINGS` may change on a fitted model (deployment trade-offs);
- :data:`RUN_SETTINGS` (processes, progress output) never change a result;
- every other parameter is fit-only (:data:`FIT_ONLY`): the model learned with it.

numpy and OpenCV only (this is on the prediction path).
"""

import math
import numbers

import numpy as np

from .errors import DataError
from .features.hog import BLOCK_NORMS

__all__ = ["FEATURE_BACKENDS", "PREDICTION_SETTINGS", "RUN_SETTINGS", "FIT_ONLY", "SPECS", "MIN_SCALE_STEP",
           "check_params", "check_value", "bad_parameter"]

FEATURE_BACKENDS = ("fhog", "hog", "haar", "fhog+haar", "hog+haar")

#: Parameters a fitted model may change: they steer the scan, not what was learned.
PREDICTION_SETTINGS = ("scale_step", "upsample", "pyramid", "cascade", "min_score", "nms_iou", "max_detections", "refine")
#: Parameters that never change a result.
RUN_SETTINGS = ("n_jobs", "verbose")

#: Smallest ratio between pyramid levels: closer to 1 makes hundreds of nearly equal levels.
MIN_SCALE_STEP = 1.01


class _Spec:
    """What one parameter accepts: ``kind`` is "int", "float", "bool", "choice", "pair" (two ints)."""

    def __init__(self, kind, lo=None, hi=None, *, lo_open=False, hi_open=False, choices=(), none=False,
                 words=(), note=""):
        self.kind, self.lo, self.hi, self.lo_open, self.hi_open = kind, lo, hi, lo_open, hi_open
        self.choices, self.none, self.words, self.note = tuple(choices), none, tuple(words), note

    def describe(self):
        """The valid values, as the fix of an error message says them."""
        if self.kind == "bool":
            text = "True or False"
        elif self.kind == "choice":
            text = "one of " + ", ".join(repr(c) for c in self.choices)
        else:
            lo = "(" if self.lo_open else "["
            hi = ")" if self.hi_open else "]"
            what = {"int": "an integer", "float": "a number", "pair": "a pair [rows, cols] of integers, each"}[self.kind]
            text = f"{what} in {lo}{_fmt(self.lo)}, {_fmt(self.hi)}{hi}"
        extras = [repr(w) for w in self.words] + (["None"] if self.none else [])
        if extras:
            text += ", or " + " or ".join(extras)
        return text + (f" ({self.note})" if self.note else "")


def _fmt(v):
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return f"{v:,}" if isinstance(v, int) and abs(v) >= 10_000 else str(v)


#: Every Localizer parameter and what it accepts (documented in :class:`classic_loc.Localizer`).
SPECS = {
    "features": _Spec("choice", choices=FEATURE_BACKENDS),
    "cell_size": _Spec("int", 2, 64),
    "block_size": _Spec("int", 1, 8),
    "n_bins": _Spec("int", 2, 36),
    "block_norm": _Spec("choice", choices=BLOCK_NORMS),
    "signed": _Spec("bool"),
    "interpolate": _Spec("bool"),
    "color": _Spec("bool"),
    "preprocess": _Spec("choice", choices=("none", "equalize", "clahe")),
    "haar_features": _Spec("int", 1, 10_000),
    "haar_candidates": _Spec("int", 1, 100_000),
    "window_cells": _Spec("pair", 2, 128, none=True),
    "window_area": _Spec("int", 4, 4096),
    "context": _Spec("int", 0, 8),
    "scale_step": _Spec("float", MIN_SCALE_STEP, 4.0),
    "upsample": _Spec("float", 0.05, 16.0, words=("auto",)),
    "pyramid": _Spec("choice", choices=("fast", "exact")),
    "min_size": _Spec("float", 0.0, math.inf, lo_open=True, hi_open=True, none=True, note="pixels"),
    "max_size": _Spec("float", 0.0, math.inf, lo_open=True, hi_open=True, none=True, note="pixels"),
    "C": _Spec("float", 0.0, math.inf, lo_open=True, hi_open=True),
    "flip": _Spec("bool"),
    "n_random_negatives": _Spec("int", 1, 10_000_000),
    "mining_rounds": _Spec("int", 0, 100),
    "max_negatives_per_image": _Spec("int", 1, 1_000_000, words=("auto",)),
    "max_negatives": _Spec("int", 1, 100_000_000),
    "max_sample_mb": _Spec("int", 16, 1_000_000, none=True, note="megabytes"),
    "neg_iou": _Spec("float", 0.0, 1.0, lo_open=True),
    "pos_iou": _Spec("float", 0.0, 1.0, lo_open=True),
    "calibration_fraction": _Spec("float", 0.0, 0.9),
    "size_calibration": _Spec("bool"),
    "main_first": _Spec("bool"),
    "ridge_alpha": _Spec("float", 0.0, math.inf, hi_open=True),
    "refine": _Spec("bool"),
    "nms_iou": _Spec("float", 0.0, 1.0, lo_open=True),
    "nms_cover": _Spec("float", 0.0, 1.0, lo_open=True, none=True, words=("auto",)),
    "cascade": _Spec("bool"),
    "min_score": _Spec("float", 0.0, 1.0, hi_open=True),
    "max_detections": _Spec("int", 1, 100_000),
    "random_state": _Spec("int", 0, 2**32 - 1, none=True),
    "n_jobs": _Spec("int", 1, 4096, words=(-1,), note="-1: all cores"),
    "verbose": _Spec("bool"),
}

#: Parameters fixed when the model is trained: changing one afterwards makes the model unfitted.
FIT_ONLY = tuple(n for n in SPECS if n not in PREDICTION_SETTINGS and n not in RUN_SETTINGS)


def _show(value):
    try:
        text = repr(value)
    except RecursionError:
        text = f"<{type(value).__name__} nested too deep>"
    return text if len(text) <= 60 else text[:57] + "..."


def bad_parameter(name, problem, fix):
    """The one-line :class:`DataError` for a bad parameter ``name``."""
    return DataError("Localizer", name, problem, fix, kind="bad parameter")


def _refuse(name, spec, value, problem):
    return bad_parameter(name, problem, f"use {spec.describe()}")


def _number(name, spec, value, integer, whole=None):
    if whole is not None:  # one element of a pair: the message shows the pair
        try:
            return _number(name, spec, value, integer)
        except DataError as exc:
            raise _refuse(name, spec, whole, f"{_show(whole)}: {exc.problem}") from None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        what = "an integer" if integer else "a number"
        raise _refuse(name, spec, value, f"{_show(value)} ({type(value).__name__}) is not {what}")
    try:
        v = float(value)
    except (OverflowError, TypeError, ValueError):
        raise _refuse(name, spec, value, f"{_show(value)} is not a finite number") from None
    if integer and isinstance(value, numbers.Integral):
        v = int(value)
    elif not math.isfinite(v):
        raise _refuse(name, spec, value, f"{_show(value)} is not a finite number")
    elif integer:
        if not v.is_integer():
            raise _refuse(name, spec, value, f"{_show(value)} is not a whole number")
        v = int(v)
    below = v <= spec.lo if spec.lo_open else v < spec.lo
    above = v >= spec.hi if spec.hi_open else v > spec.hi
    if below or above:
        bound = f"{'not above' if spec.lo_open else 'below'} {_fmt(spec.lo)}" if below else \
            f"{'not below' if spec.hi_open else 'above'} {_fmt(spec.hi)}"
        raise _refuse(name, spec, value, f"{_show(value)} is {bound}")
    return v


def check_value(name, value):
    """``value`` of parameter ``name`` in its normal form (ints as int, pairs as tuples); DataError if invalid."""
    spec = SPECS[name]
    if value is None:
        if spec.none:
            return None
        raise _refuse(name, spec, value, "None is not allowed")
    if isinstance(value, (str, numbers.Real)) and not isinstance(value, (bool, np.bool_)):
        for word in spec.words:
            if type(word) is type(value) or (isinstance(word, int) and not isinstance(value, str)):
                if value == word:
                    return word
    if spec.kind == "bool":
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
        raise _refuse(name, spec, value, f"{_show(value)} ({type(value).__name__}) is not a bool")
    if spec.kind == "choice":
        if isinstance(value, str) and value in spec.choices:
            return value
        raise _refuse(name, spec, value, f"{_show(value)} is not available")
    if spec.kind == "pair":
        if not isinstance(value, (list, tuple, np.ndarray)) or np.ndim(value) != 1 or len(value) != 2:
            raise _refuse(name, spec, value, f"{_show(value)} is not a pair [rows, cols]")
        return tuple(_number(name, spec, v, True, whole=value) for v in value)
    return _number(name, spec, value, spec.kind == "int")


def check_params(params):
    """All of ``params`` (name -> value) checked and in normal form, including the checks between parameters.

    Checks between parameters run when every parameter they read is in ``params``.
    Unknown names raise DataError as well.
    """
    out = {}
    for name, value in params.items():
        if name not in SPECS:
            raise bad_parameter(name, "is not a Localizer parameter", f"use one of {', '.join(SPECS)}")
        out[name] = check_value(name, value)

    def has(*names):
        return all(n in out for n in names)

    if has("min_size", "max_size") and out["min_size"] is not None and out["max_size"] is not None \
            and out["min_size"] >= out["max_size"]:
        raise bad_parameter("min_size", f"{_show(out['min_size'])} is not below max_size={_show(out['max_size'])}: "
                            "no object size is searched", "give min_size < max_size, or None for either")
    if has("neg_iou", "pos_iou") and out["neg_iou"] > out["pos_iou"]:
        raise bad_parameter("neg_iou", f"{out['neg_iou']} is above pos_iou={out['pos_iou']}: a window could be "
                            "a positive and a negative", "give neg_iou <= pos_iou")
    if has("features", "haar_features", "haar_candidates") and "haar" in out["features"] \
            and out["haar_features"] > out["haar_candidates"]:
        raise bad_parameter("haar_features", f"{out['haar_features']} is more than haar_candidates="
                            f"{out['haar_candidates']} (the pool they are selected from)",
                            "give haar_features <= haar_candidates")
    if has("window_cells", "context", "features", "block_size") and out["window_cells"] is not None:
        wc, ctx = out["window_cells"], out["context"]
        if min(wc) - 2 * ctx < 2:
            raise bad_parameter("window_cells", f"{list(wc)} leaves less than 2 x 2 cells of object inside "
                                f"context={ctx} cells on each side",
                                f"give window_cells of at least {2 * ctx + 2} per side, or a smaller context")
        if out["features"].split("+")[0] == "hog" and min(wc) < out["block_size"]:
            raise bad_parameter("window_cells", f"{list(wc)} is smaller than one block (block_size="
                                f"{out['block_size']})", f"give window_cells of at least {out['block_size']} per side")
    return out
