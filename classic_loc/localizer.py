"""The Localizer: HOG sliding windows, a linear SVM per class, calibration, ridge refinement, NMS.

A scikit-learn style estimator (keyword parameters stored as given, ``fit``
returns self, learned state ends in ``_``, ``get_params``/``set_params`` so
``sklearn.base.clone`` works) that does not import scikit-learn: training is
imported inside :meth:`Localizer.fit` only, so ``Localizer.load(path).predict(images)``
needs numpy and OpenCV alone.
"""

import inspect
import json
import math
import os

import numpy as np

from .datasets import Dataset, ImageRecord
from .errors import ModelFileError
from .features.haar import check_haar_coords
from .images import read_image
from .model_io import load_model, save_model
from .scan import FeatureParams, Template, detect_image, template_dim

__all__ = ["Localizer", "Detections", "Prediction"]

FEATURE_BACKENDS = ("fhog", "hog", "haar", "fhog+haar", "hog+haar")


class NotFittedError(ValueError, AttributeError):
    """The Localizer is used before ``fit`` or ``load`` (same bases as scikit-learn's)."""


class Detections:
    """All detections of one image: ``boxes`` (N, 4) xyxy, ``labels`` (N,) class indices, ``scores`` (N,)."""

    __slots__ = ("boxes", "labels", "scores", "classes")

    def __init__(self, boxes, labels, scores, classes):
        self.boxes, self.labels, self.scores, self.classes = boxes, labels, scores, classes

    def __len__(self):
        return len(self.scores)

    def __repr__(self):
        return f"Detections({len(self)} boxes: {[self.classes[k] for k in self.labels[:5]]}...)"

    def to_coco(self, image_id):
        """COCO results entries (``bbox`` = x, y, w, h; ``category_id`` = class name)."""
        return [{"image_id": image_id, "category_id": self.classes[int(k)],
                 "bbox": [round(float(b[0]), 2), round(float(b[1]), 2), round(float(b[2] - b[0]), 2),
                          round(float(b[3] - b[1]), 2)], "score": round(float(s), 9)}
                for b, k, s in zip(self.boxes, self.labels, self.scores)]


class Prediction:
    """The main prediction of one image: ``present``, ``label`` (index or -1), ``class_name``, ``box``, ``score``."""

    __slots__ = ("present", "label", "class_name", "box", "score")

    def __init__(self, present, label, class_name, box, score):
        self.present, self.label, self.class_name, self.box, self.score = present, label, class_name, box, score

    def __repr__(self):
        if not self.present:
            return f"Prediction(no object, top score {self.score:.3f})"
        return f"Prediction({self.class_name}, box={np.round(self.box, 1).tolist()}, score={self.score:.3f})"


class _ArrayDataset(Dataset):
    """A Dataset whose images are arrays already in memory."""

    def __init__(self, records, classes, arrays):
        super().__init__(records, classes, format="arrays")
        self._arrays = arrays

    def image(self, index):
        return self._arrays[index]

    def subset(self, indices):
        return _ArrayDataset([self.records[i] for i in indices], self.classes, [self._arrays[i] for i in indices])


def _image_shaped(arr):
    """True for an array shaped like one image: (rows, cols) or (rows, cols, 1 or 3)."""
    return arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (1, 3))


def _as_image(image):
    if isinstance(image, (str, os.PathLike)):
        return read_image(image)
    image = np.asarray(image)
    if not _image_shaped(image):
        raise ValueError(f"expected an image (rows, cols) or (rows, cols, 3), got shape {image.shape}")
    return image


class Localizer:
    """Object classification with localization by the classical pipeline.

    HOG features once per pyramid level; per class a linear SVM template with
    its own window shape (chosen from the class's training boxes), trained on
    warped positives, random and other-class negatives and hard-negative
    mining rounds; Platt calibration of every template on held-out training
    images so scores compare across classes; a presence threshold chosen on
    the same images; per class a ridge regressor from window features to box
    offsets; per-class NMS.

    Parameters
    ----------
    features : {"fhog", "hog", "haar", "fhog+haar", "hog+haar"}
        Feature backend: Felzenszwalb's HOG (31 features per cell, as dlib
        uses; the default, measurably better on every shared data set),
        Dalal and Triggs' HOG (blocks of cells, equal to skimage's ``hog``),
        Viola and Jones' Haar-like features (variance-normalised, a selected
        subset per class, see ``haar_features``), or a HOG and Haar together
        (one vector per window: the HOG part, then the Haar part).
    cell_size, block_size, n_bins, block_norm :
        HOG settings (pixels per cell, cells per block, orientation bins,
        "L1", "L1-sqrt", "L2" or "L2-Hys").
    signed : bool
        Orientations over 0-360 degrees (the sign of the gradient kept) instead of 0-180.
    interpolate : bool
        Split each gradient's vote between the two nearest orientation bins
        (Dalal and Triggs) instead of skimage's hard assignment.
    color : bool
        Gradients of colour images from the strongest channel per pixel
        (as ``skimage.feature.hog(channel_axis=-1)``) instead of the gray image.
    haar_features : int
        Haar-like features selected per class at fit (by an L1-regularised
        linear SVM among ``haar_candidates`` random ones; see
        :mod:`classic_loc.training.haar_select`). Haar units are half a cell.
    haar_candidates : int
        Size of the random pool of Haar-like features the selection starts from.
    window_cells : (rows, cols) or None
        Window size in cells for every class; None chooses one per class from
        its training boxes (their median aspect ratio, about ``window_area`` cells).
    window_area : int
        Cells of the object part of a window when ``window_cells`` is None.
    context : int
        Cells of background around the object inside each window (Dalal and
        Triggs' margin); the predicted box is the window less this margin.
    scale_step : float
        Ratio between pyramid levels.
    upsample : float
        Scale of the first pyramid level (1: no upsampling).
    min_size, max_size : float or None
        Range of object sizes (longer box side, pixels) searched; None: from
        the training boxes (their smallest / 1.25 and largest * 1.25).
    C : float
        SVM regularisation.
    flip : bool
        Also take positives from the mirrored training images.
    n_random_negatives : int
        Random negative windows per class, spread evenly over the training images.
    mining_rounds : int
        Hard-negative mining rounds.
    max_negatives_per_image : int or "auto"
        Negatives mined per image and round at most; "auto": enough to mine
        about 10,000 per class and round over the training images, at least 20
        (small data sets need more per image).
    max_negatives : int
        Negatives per class in total at most.
    neg_iou : float
        A window is a negative when its IoU with every box of the class is below this.
    pos_iou : float
        Scan windows with at least this IoU with an object are its positives; a
        box no window reaches so is reported as unreachable.
    calibration_fraction : float
        Share of training images held out for calibration and the presence threshold.
    ridge_alpha : float
        Ridge regularisation of the box regressors.
    refine : bool
        Apply the box regressors at prediction.
    nms_iou : float
        NMS drops a box whose IoU with a kept, higher-scored box of its class is above this.
    nms_cover : "auto", float or None
        NMS also drops a box when more than this share of its area lies inside a
        kept, higher-scored box of its class (parts of an object found inside the
        whole). "auto": the largest such share between two training boxes plus
        0.1, at least 0.7; None: off.
    cascade : bool
        At prediction, reject most windows with a cheap first stage before the full
        template (models with Haar features; the first stage, set at fit, passes 99% of
        the training positives: the HOG part of a HOG + Haar template, a tenth of a Haar
        template's features). Faster, at a measured accuracy cost (see the README).
    min_score : float
        Detections below this calibrated probability are not reported.
    max_detections : int
        Per image.
    random_state : int
        Seed for every random choice in training.
    n_jobs : int
        Processes for training (-1: all cores).
    verbose : bool
        Progress bars and training log.

    Attributes
    ----------
    classes_ : tuple of str
    templates_ : list of Template
    presence_threshold_ : float
    nms_cover_ : float or None
    fit_report_ : dict

    Examples
    --------
    >>> from classic_loc import Localizer, load_dataset
    >>> train = load_dataset("data/demo", split="train")  # doctest: +SKIP
    >>> model = Localizer(mining_rounds=1).fit(train)  # doctest: +SKIP
    >>> model.predict(["photo.jpg"])[0]  # doctest: +SKIP
    Prediction(ring, box=[34.0, 50.2, 90.5, 101.0], score=0.912)
    """

    def __init__(self, features="fhog", cell_size=8, block_size=2, n_bins=9, block_norm="L2-Hys", signed=False, interpolate=False, color=False,
                 haar_features=200, haar_candidates=4000, window_cells=None, window_area=48, context=1, scale_step=1.1, upsample=1.0, min_size=None, max_size=None,
                 C=0.01, flip=True, n_random_negatives=10000, mining_rounds=2,
                 max_negatives_per_image="auto", max_negatives=40000, neg_iou=0.5, pos_iou=0.6,
                 calibration_fraction=0.2, ridge_alpha=10.0, refine=True, nms_iou=0.3, nms_cover="auto", cascade=False, min_score=0.02,
                 max_detections=100, random_state=0, n_jobs=1, verbose=False):
        self.features = features
        self.cell_size = cell_size
        self.block_size = block_size
        self.n_bins = n_bins
        self.block_norm = block_norm
        self.color = color
        self.signed = signed
        self.interpolate = interpolate
        self.haar_features = haar_features
        self.haar_candidates = haar_candidates
        self.window_cells = window_cells
        self.window_area = window_area
        self.context = context
        self.scale_step = scale_step
        self.upsample = upsample
        self.min_size = min_size
        self.max_size = max_size
        self.C = C
        self.flip = flip
        self.n_random_negatives = n_random_negatives
        self.mining_rounds = mining_rounds
        self.max_negatives_per_image = max_negatives_per_image
        self.max_negatives = max_negatives
        self.neg_iou = neg_iou
        self.pos_iou = pos_iou
        self.calibration_fraction = calibration_fraction
        self.ridge_alpha = ridge_alpha
        self.refine = refine
        self.nms_iou = nms_iou
        self.nms_cover = nms_cover
        self.cascade = cascade
        self.min_score = min_score
        self.max_detections = max_detections
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    # ------------------------------------------------------------ parameters
    @classmethod
    def _param_names(cls):
        return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]

    def get_params(self, deep=True):
        """Parameters as given to ``__init__`` (scikit-learn's convention)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params):
        valid = set(self._param_names())
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"invalid parameter {name!r} for Localizer; valid: {sorted(valid)}")
            setattr(self, name, value)
        return self

    def __repr__(self):
        defaults = inspect.signature(type(self).__init__).parameters
        changed = [f"{k}={v!r}" for k, v in self.get_params().items() if defaults[k].default != v]
        return f"Localizer({', '.join(changed)})"

    def _feature_params(self):
        hog = self.features.split("+")[0]
        return FeatureParams(int(self.cell_size), int(self.block_size), int(self.n_bins), str(self.block_norm),
                             signed=bool(self.signed), interpolate=bool(self.interpolate), color=bool(self.color),
                             variant={"fhog": "felzenszwalb", "hog": "dalal-triggs"}.get(hog),
                             haar="haar" in self.features)

    def _check_params(self):
        if self.features not in FEATURE_BACKENDS:
            raise ValueError(f"features={self.features!r} is not available; use one of {FEATURE_BACKENDS}")
        if not self.scale_step > 1:
            raise ValueError(f"scale_step must be > 1, got {self.scale_step}")
        if not 0 <= self.calibration_fraction < 1:
            raise ValueError(f"calibration_fraction must be in [0, 1), got {self.calibration_fraction}")
        if "haar" in self.features and not (int(self.haar_features) >= 1 and int(self.haar_candidates) >= 1):
            raise ValueError(f"haar_features and haar_candidates must be >= 1, got {self.haar_features}, "
                             f"{self.haar_candidates}")
        self._feature_params()  # validates the feature settings' types

    def _check_is_fitted(self):
        if not hasattr(self, "templates_"):
            raise NotFittedError("this Localizer is not fitted yet: call fit() or Localizer.load() first")

    # ------------------------------------------------------------ fit
    def fit(self, X, boxes=None, labels=None, classes=None):
        """Train on a :class:`~classic_loc.datasets.Dataset`, or on images with their boxes and labels.

        Parameters
        ----------
        X : Dataset, or sequence of images (paths or arrays)
        boxes : sequence of (N_i, 4) arrays, xyxy, when X is a sequence of images
        labels : sequence of (N_i,) class names or indices, when X is a sequence of images
        classes : sequence of str, optional
            Class order when labels are names (default: sorted names) or indices (default "0", "1", ...).

        Returns
        -------
        self
        """
        self._check_params()
        dataset = X if isinstance(X, Dataset) else self._dataset_from_arrays(X, boxes, labels, classes)
        if len(dataset) == 0:
            raise ValueError("cannot fit on an empty dataset")
        from .training import train_templates  # scikit-learn is imported here, never on the predict path

        n_jobs = (os.cpu_count() or 1) if self.n_jobs == -1 else int(self.n_jobs)
        seed = self.random_state if self.random_state is not None else 0
        p = dict(fp=self._feature_params(), haar_features=int(self.haar_features),
                 haar_candidates=int(self.haar_candidates), window_cells=self.window_cells, window_area=self.window_area, context=int(self.context),
                 scale_step=self.scale_step, upsample=self.upsample, min_size=self.min_size,
                 max_size=self.max_size, C=self.C, flip=self.flip,
                 n_random_negatives=self.n_random_negatives, mining_rounds=self.mining_rounds,
                 max_negatives_per_image=self.max_negatives_per_image, max_negatives=self.max_negatives,
                 neg_iou=self.neg_iou, pos_iou=self.pos_iou, calibration_fraction=self.calibration_fraction,
                 ridge_alpha=self.ridge_alpha, min_score=self.min_score, nms_iou=self.nms_iou, nms_cover=self.nms_cover, seed=seed,
                 n_jobs=n_jobs)
        templates, presence, cover, report = train_templates(dataset, p, verbose=self.verbose)
        self.classes_ = tuple(dataset.classes)
        self.templates_ = templates
        self.presence_threshold_ = presence
        self.nms_cover_ = cover
        self.fit_report_ = report
        return self

    @staticmethod
    def _dataset_from_arrays(images, boxes, labels, classes):
        if boxes is None or labels is None or len(images) != len(boxes) or len(images) != len(labels):
            raise ValueError("fit(images, boxes, labels) needs one boxes array and one labels array per image")
        flat = [lab for labs in labels for lab in np.asarray(labs).reshape(-1).tolist()]
        names = all(isinstance(x, str) for x in flat)
        if classes is None:
            classes = sorted(set(flat)) if names else [str(k) for k in range(int(max(flat, default=-1)) + 1)]
        classes = list(classes)
        arrays, records = [], []
        for i, (img, b, lab) in enumerate(zip(images, boxes, labels)):
            arr = _as_image(img)
            lab = np.asarray(lab).reshape(-1).tolist()
            idx = [classes.index(x) if names else int(x) for x in lab]
            arrays.append(arr)
            records.append(ImageRecord(f"image{i}", img if isinstance(img, (str, os.PathLike)) else None,
                                       arr.shape[1], arr.shape[0], np.reshape(b, (-1, 4)), idx))
        return _ArrayDataset(records, classes, arrays)

    # ------------------------------------------------------------ predict
    def _detect_one(self, image, timings=None, refine=None):
        boxes, labels, scores, windows = detect_image(
            image, self.templates_, self._feature_params(), self.scale_step, self.upsample, self.min_score, self.nms_iou,
            self.max_detections, self.refine if refine is None else refine, timings, self.nms_cover_,
            bool(self.cascade))
        return Detections(boxes, labels, scores, self.classes_), windows

    def detect(self, images, timings=None):
        """All detections of each image (boxes, class indices, calibrated scores), best first.

        Parameters
        ----------
        images : sequence of paths or arrays (RGB (rows, cols, 3) or gray (rows, cols)), or one of them
        timings : dict, optional
            Seconds per stage (pyramid, features, scoring, gather, nms, refinement) are added to it.

        Returns
        -------
        list of Detections (one Detections when a single image is given)
        """
        self._check_is_fitted()
        single = isinstance(images, (str, os.PathLike)) or (isinstance(images, np.ndarray) and _image_shaped(images))
        batch = [images] if single else list(images)
        out = [self._detect_one(_as_image(img), timings)[0] for img in batch]
        return out[0] if single else out

    def predict(self, images):
        """The main prediction of each image: the top detection if its score reaches the presence threshold.

        Returns
        -------
        list of Prediction (one Prediction when a single image is given)
        """
        dets = self.detect(images)
        single = isinstance(dets, Detections)
        out = []
        for d in [dets] if single else dets:
            if len(d) and d.scores[0] >= self.presence_threshold_:
                k = int(d.labels[0])
                out.append(Prediction(True, k, self.classes_[k], d.boxes[0], float(d.scores[0])))
            else:
                out.append(Prediction(False, -1, None, None, float(d.scores[0]) if len(d) else 0.0))
        return out[0] if single else out

    def score(self, dataset, iou_threshold=0.5):
        """The shared evaluator's metrics of :meth:`detect` on ``dataset`` (a dict, see :func:`classic_loc.evaluate`)."""
        from .evaluation import evaluate

        self._check_is_fitted()
        preds = {rec.image_id: self._detect_one(dataset.image(i))[0] for i, rec in enumerate(dataset)}
        return evaluate(dataset, preds, iou_threshold)  # the evaluator reads Detections' boxes, labels, scores

    # ------------------------------------------------------------ model file
    def save(self, path):
        """Write the fitted model to ``path`` (one .npz with JSON metadata, no pickle), atomically.

        Returns the file size in bytes.
        """
        self._check_is_fitted()
        arrays, templates = {}, []
        for k, t in enumerate(self.templates_):
            arrays[f"weights_{k}"] = np.asarray(t.weights, np.float32)
            if t.haar is not None:
                arrays[f"haar_{k}"] = np.asarray(t.haar, np.int32)  # (type, y, x, h, w) in Haar units
            if t.stage1_haar is not None:
                arrays[f"stage1_haar_{k}"] = np.asarray(t.stage1_haar, np.int32)
            if t.ridge is not None:
                arrays[f"ridge_{k}"] = np.asarray(t.ridge, np.float32)
                arrays[f"ridge_bias_{k}"] = np.asarray(t.ridge_bias, np.float64)
            templates.append({"window_cells": list(t.window_cells), "context": int(t.context), "bias": float(t.bias),
                              "stage1_threshold": None if t.stage1_threshold is None else float(t.stage1_threshold),
                              "calibration": [float(v) for v in t.calibration],
                              "scale_range": [float(t.scale_range[0]),
                                              None if math.isinf(t.scale_range[1]) else float(t.scale_range[1])]})
        fp = self._feature_params()
        meta = {"features": {"name": self.features, "cell_size": fp.cell_size, "block_size": fp.block_size,
                             "n_bins": fp.n_bins, "block_norm": fp.block_norm, "signed": fp.signed,
                             "interpolate": fp.interpolate, "color": fp.color,
                             "variant": fp.variant, "haar": fp.haar, "haar_unit": fp.haar_unit},
                "classes": list(self.classes_), "templates": templates,
                "presence_threshold": float(self.presence_threshold_),
                "nms_cover": None if self.nms_cover_ is None else float(self.nms_cover_),
                "params": {k: v for k, v in self.get_params().items() if _jsonable(v)},
                "training": {k: v for k, v in getattr(self, "fit_report_", {}).items() if _jsonable(v)}}
        return save_model(path, meta, arrays)

    @classmethod
    def load(cls, path):
        """Read a model written by :meth:`save`; the file's own settings are restored."""
        meta, arrays = load_model(path)
        feats = meta.get("features", {})
        if feats.get("name") not in FEATURE_BACKENDS:
            raise ModelFileError(path, "", f"the model uses the feature backend {feats.get('name')!r}, which this "
                                           f"classic_loc does not have ({', '.join(FEATURE_BACKENDS)})",
                                 "load it with the classic_loc version that wrote it, or train again",
                                 kind="bad model file")
        try:
            params = {k: v for k, v in meta["params"].items() if k in cls._param_names()}
            model = cls(**params)
            model.classes_ = tuple(meta["classes"])
            model.presence_threshold_ = float(meta["presence_threshold"])
            model.nms_cover_ = None if meta["nms_cover"] is None else float(meta["nms_cover"])
            model.templates_ = []
            fp = model._feature_params()
            for k, t in enumerate(meta["templates"]):
                wc = tuple(int(v) for v in t["window_cells"])
                w = arrays[f"weights_{k}"]
                haar = arrays.get(f"haar_{k}")
                if fp.haar != (haar is not None):
                    raise ValueError(f"template {k} {'lacks' if fp.haar else 'has'} Haar features")
                if haar is not None:
                    check_haar_coords(haar, *fp.haar_window(wc))
                lo, hi = t["scale_range"]
                tpl = Template(wc, w, float(t["bias"]), tuple(float(v) for v in t["calibration"]),
                               arrays.get(f"ridge_{k}"), arrays.get(f"ridge_bias_{k}"),
                               (float(lo), math.inf if hi is None else float(hi)), int(t["context"]), haar,
                               t.get("stage1_threshold"), arrays.get(f"stage1_haar_{k}"))
                if tpl.stage1_haar is not None and (haar is None or tpl.stage1_haar.ndim != 1 or (
                        len(tpl.stage1_haar) and not 0 <= tpl.stage1_haar.min() <= tpl.stage1_haar.max() < len(haar))):
                    raise ValueError(f"template {k}'s first-stage features are not among its Haar features")
                if w.shape != (template_dim(fp, tpl),):
                    raise ValueError(f"template {k} has {w.shape} weights for a {wc} window")
                model.templates_.append(tpl)
            if len(model.templates_) != len(model.classes_):
                raise ValueError("one template per class is needed")
            model.fit_report_ = meta.get("training", {})
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(path, "", f"the model's metadata is inconsistent ({exc})",
                                 "the file is damaged or was edited: train the model again",
                                 kind="bad model file") from None
        return model


def _jsonable(value):
    try:
        json.dumps(value)
        return True
    except (TypeError, ValueError):
        return False
