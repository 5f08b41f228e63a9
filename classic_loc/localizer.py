"""The Localizer: HOG sliding windows, a linear SVM per class, calibration, ridge refinement, NMS.

A scikit-learn style estimator (keyword parameters stored as given, ``fit``
returns self, learned state ends in ``_``, ``get_params``/``set_params`` so
``sklearn.base.clone`` works) that does not import scikit-learn: training is
imported inside :meth:`Localizer.fit` only, so ``Localizer.load(path).predict(images)``
needs numpy and OpenCV alone.
"""

import dataclasses
import inspect
import json
import math
import os
from typing import NamedTuple

import numpy as np

from .datasets import Dataset, ImageRecord
from .errors import DataError, ModelFileError, require_training
from .features.haar import check_haar_coords
from .images import read_image
from .model_io import load_model, save_model
from .pyramid import auto_upsample, reachable_scales
from .scan import FeatureParams, Template, detect_image, template_dim
from .settings import FEATURE_BACKENDS, FIT_ONLY, PREDICTION_SETTINGS, bad_parameter, check_params, check_value

__all__ = ["Localizer", "Detections", "Detection", "Prediction", "NotFittedError"]


class NotFittedError(DataError, AttributeError):
    """The Localizer is used before ``fit`` or ``load``, or after a fit-only parameter changed.

    A :class:`~classic_loc.errors.DataError` (so a ValueError, as scikit-learn's is) and an AttributeError.
    """


class Detection(NamedTuple):
    """One detection: ``box`` (4,) xyxy in pixels, ``label`` (class index), ``class_name``, ``score``."""

    box: np.ndarray
    label: int
    class_name: str
    score: float


class Detections:
    """All detections of one image: ``boxes`` (N, 4) xyxy, ``labels`` (N,) class indices, ``scores`` (N,).

    Best first. ``len(dets)``; ``dets[i]`` is one :class:`Detection`; ``dets[mask]``,
    ``dets[indices]`` or ``dets[a:b]`` the :class:`Detections` selected; iterating gives
    each :class:`Detection`.

    Examples
    --------
    >>> import numpy as np
    >>> dets = Detections(np.array([[10., 20, 50, 80], [0, 0, 5, 5]]), np.array([1, 0]), np.array([0.9, 0.2]),
    ...                   ("cat", "dog"))
    >>> dets[0].class_name, dets[0].score
    ('dog', 0.9)
    >>> len(dets[dets.scores > 0.5])
    1
    >>> [d.label for d in dets]
    [1, 0]
    """

    __slots__ = ("boxes", "labels", "scores", "classes")

    def __init__(self, boxes, labels, scores, classes):
        self.boxes, self.labels, self.scores, self.classes = boxes, labels, scores, classes

    def __len__(self):
        return len(self.scores)

    def __getitem__(self, index):
        if isinstance(index, (int, np.integer)):
            i = range(len(self))[index]  # IndexError past the end; negative indices count from the end
            label = int(self.labels[i])
            return Detection(np.array(self.boxes[i], dtype=np.float64), label, self.classes[label],
                             float(self.scores[i]))
        return Detections(self.boxes[index], self.labels[index], self.scores[index], self.classes)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

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

    The parameters are all keyword-only. The valid type and range of each is in
    :data:`classic_loc.settings.SPECS` (a bad value is one line naming it and its range).

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
        HOG settings (pixels per cell, 2-64; cells per block, 1-8; orientation bins, 2-36;
        "L1", "L1-sqrt", "L2" or "L2-Hys").
    signed : bool
        Orientations over 0-360 degrees (the sign of the gradient kept) instead of 0-180.
    interpolate : bool
        Split each gradient's vote between the two nearest orientation bins
        (Dalal and Triggs) instead of skimage's hard assignment.
    color : bool
        Gradients of colour images from the strongest channel per pixel
        (as ``skimage.feature.hog(channel_axis=-1)``) instead of the gray image.
    preprocess : {"none", "equalize", "clahe"}
        A lighting correction of every image before its features, for images from
        different cameras and settings: histogram equalisation, or CLAHE (contrast-limited
        adaptive equalisation, which also evens out lighting across an image). Fixed at fit
        (the model learned on corrected images) and applied identically at prediction.
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
        Triggs' margin, 0-8); the predicted box is the window less this margin.
        ``window_cells`` must leave at least 2 x 2 cells inside it.
    scale_step : float
        Ratio between pyramid levels, in [1.01, 4] (closer to 1 makes hundreds of levels).
    upsample : float or "auto"
        Scale of the first pyramid level (1: no upsampling), in [0.05, 16]. ``"auto"`` (the
        default) chooses it at fit from the training boxes (:func:`classic_loc.pyramid.auto_upsample`:
        the scale at which each class's window of ``window_area`` cells fits its 10% smallest
        boxes, 1 to 2), kept as ``upsample_``: small objects (faces of 20-30 px) are scanned at
        twice their size without tuning. An image whose
        pyramid would exceed the limits of :mod:`classic_loc.pyramid` (levels, pixels,
        windows) is refused with a DataError.
    pyramid : {"fast", "exact"}
        How the HOG of the pyramid levels is computed: ``"fast"`` (the default) from the
        pixels once per octave, the levels in between resampled from the octave above
        (Dollar et al.'s fast feature pyramids, :mod:`classic_loc.feature_pyramid`);
        ``"exact"``: every level from its own pixels (slower). The fit uses it too; a
        prediction setting, so a model can scan either way. Haar-like features are
        always exact. Model files written before this setting existed load as ``"exact"``.
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
    max_sample_mb : int or None
        Megabytes of SVM training windows (float32 positives and negative caches of all classes)
        a fit holds at most; None (the default): 640 (``classic_loc.training.fit.SAMPLE_BYTES``),
        with which the whole fit stays within about 1 GB on the shared sets. Where it
        bites, positives are a random subset and the easiest negatives go first; a larger value
        trades memory for the accuracy of large data sets (caltech101_subset: accuracy 0.993 at
        640, 0.997 with about 1.8 GB). The fit report says what it dropped (``memory``).
    neg_iou : float
        A window is a negative when its IoU with every box of the class is below this.
    pos_iou : float
        Scan windows with at least this IoU with an object are its positives; a
        box no window reaches so is reported as unreachable.
    calibration_fraction : float
        Share of training images held out for calibration and the presence threshold.
    size_calibration : bool
        Recalibrate the detections' scores with their window's size, learned on the held-out
        images (see ``size_calibration_``). Windows of different sizes are not equally
        reliable: small ones (few pixels, or upsampled ones) fire more often on clutter at the
        same SVM score, and then outrank the main object. False keeps the per-class scores.
    main_first : bool
        Put the main object's detection first (see ``main_ratio_``): among the detections
        scoring at least ``main_ratio_`` times the top score, the one with the largest box
        swaps places with the top one, as an image's main object is its largest. The ratio is
        chosen on the held-out images (1: the top detection stays first). False keeps the
        detections in score order.
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
        template's features). Faster, at a measured accuracy cost (see docs/benchmarks.md).
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
        Per class: window shape, context, weights, calibration, box regressor, scale range.
    feature_params_ : FeatureParams
        The features the templates were learned on (backend, cell size, HOG and Haar settings).
    fit_settings_ : dict
        Every fit-only parameter (all but the prediction settings ``scale_step``,
        ``upsample``, ``pyramid``, ``cascade``, ``min_score``, ``nms_iou``, ``max_detections``,
        ``refine`` and the run settings ``n_jobs``, ``verbose``) as it was at fit.
    upsample_ : float
        The first pyramid level's scale chosen at fit (``upsample="auto"``) or given; predictions
        with ``upsample="auto"`` use it.
    presence_threshold_ : float
    size_calibration_ : (3,) tuple of float or None
        ``(alpha, beta, gamma)``: a detection's score ``p`` is reported as
        ``sigmoid(alpha * logit(p) + beta * log(s) + gamma)``, ``s`` the side (square root of the
        area) of its window in image pixels, fitted by logistic regression on the held-out
        images' detections (a hit: IoU >= 0.5 with an object of its class). None: scores as
        calibrated per class (``size_calibration=False``, too few held-out detections, or a model
        file from before it).
    main_ratio_ : float or None
        The ratio of :func:`classic_loc.scan.main_first`: the detections scoring at least this
        times the top score may be the main object, and the largest box of them is put first
        (taking the top score, and the top detection its place and score). Chosen from
        ``1, 0.9, ..., 0.5`` as the one whose first detection is the main object's (the largest
        box, its class, IoU >= 0.5) in the most held-out images. None: the top detection first
        (``main_first=False``, or a model file from before it).
    nms_cover_ : float or None
    fit_report_ : dict

    Notes
    -----
    Parameters are keyword-only, stored as given, and checked at :meth:`fit` (all of
    them) and before every prediction (the prediction settings) by
    :mod:`classic_loc.settings`: a bad value raises a one-line
    :class:`~classic_loc.errors.DataError` naming it and its valid range.

    What a model learned is fitted state, fixed at fit and kept in the model file:
    prediction reads ``feature_params_`` and ``templates_``, never the parameters.
    The prediction settings may change on a fitted model (``set_params(scale_step=1.2)``).
    Changing a fit-only parameter (``set_params(cell_size=4)`` or an attribute)
    makes the model **unfitted**: :meth:`predict`, :meth:`detect`, :meth:`score` and
    :meth:`save` raise :class:`NotFittedError` naming the parameter, its value at fit
    and now, until the value is set back (the learned state is kept) or the model is
    fitted again. So a model never silently predicts with settings it was not trained with.

    Examples
    --------
    >>> from classic_loc import Localizer, load_dataset
    >>> train = load_dataset("data/demo", split="train")  # doctest: +SKIP
    >>> model = Localizer(mining_rounds=1).fit(train)  # doctest: +SKIP
    >>> model.predict(["photo.jpg"])[0]  # doctest: +SKIP
    Prediction(ring, box=[34.0, 50.2, 90.5, 101.0], score=0.912)
    """

    def __init__(self, *, features="fhog", cell_size=8, block_size=2, n_bins=9, block_norm="L2-Hys", signed=False,
                 interpolate=False, color=False, preprocess="none", haar_features=200, haar_candidates=4000, window_cells=None,
                 window_area=48, context=1, scale_step=1.1, upsample="auto", pyramid="fast", min_size=None, max_size=None,
                 C=0.01, flip=True, n_random_negatives=10000, mining_rounds=2,
                 max_negatives_per_image="auto", max_negatives=40000, max_sample_mb=None, neg_iou=0.5, pos_iou=0.6,
                 calibration_fraction=0.2, size_calibration=True, main_first=True, ridge_alpha=10.0, refine=True, nms_iou=0.3, nms_cover="auto",
                 cascade=False, min_score=0.02, max_detections=100, random_state=0, n_jobs=1, verbose=False):
        self.features = features
        self.cell_size = cell_size
        self.block_size = block_size
        self.n_bins = n_bins
        self.block_norm = block_norm
        self.color = color
        self.preprocess = preprocess
        self.signed = signed
        self.interpolate = interpolate
        self.haar_features = haar_features
        self.haar_candidates = haar_candidates
        self.window_cells = window_cells
        self.window_area = window_area
        self.context = context
        self.scale_step = scale_step
        self.upsample = upsample
        self.pyramid = pyramid
        self.min_size = min_size
        self.max_size = max_size
        self.C = C
        self.flip = flip
        self.n_random_negatives = n_random_negatives
        self.mining_rounds = mining_rounds
        self.max_negatives_per_image = max_negatives_per_image
        self.max_negatives = max_negatives
        self.max_sample_mb = max_sample_mb
        self.neg_iou = neg_iou
        self.pos_iou = pos_iou
        self.calibration_fraction = calibration_fraction
        self.size_calibration = size_calibration
        self.main_first = main_first
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
        """Set parameters as given (checked at fit and prediction); a fit-only one makes a fitted model unfitted."""
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise bad_parameter(name, f"invalid parameter {name!r} for Localizer",
                                    f"use one of {', '.join(valid)}")
            setattr(self, name, value)
        return self

    def __repr__(self):
        defaults = inspect.signature(type(self).__init__).parameters
        changed = [f"{k}={v!r}" for k, v in self.get_params().items() if not _same(defaults[k].default, v)]
        return f"Localizer({', '.join(changed)})"

    @staticmethod
    def _feature_params_of(params):
        """The FeatureParams that checked ``params`` describe."""
        hog = params["features"].split("+")[0]
        return FeatureParams(params["cell_size"], params["block_size"], params["n_bins"], params["block_norm"],
                             signed=params["signed"], interpolate=params["interpolate"], color=params["color"],
                             variant={"fhog": "felzenszwalb", "hog": "dalal-triggs"}.get(hog),
                             haar="haar" in params["features"], pyramid=params["pyramid"],
                             preprocess=params["preprocess"])

    def check_params(self):
        """Every parameter checked (one-line DataError naming the first bad one); returns them in normal form.

        On a fitted model whose fit-only parameters are unchanged, the prediction
        settings are also checked against what it learned: a setting with which a
        class could never be detected (e.g. an ``upsample`` below every scale its
        window is run at) is refused.
        """
        params = check_params(self.get_params())
        if self._fitted_problem() is None:
            self._check_against_templates(self._resolved(params))
        return params

    def _resolved(self, params):
        """``params`` with ``upsample="auto"`` replaced by the fitted ``upsample_``."""
        if params.get("upsample") == "auto" and hasattr(self, "upsample_"):
            params = dict(params, upsample=self.upsample_)
        return params


    def _check_against_templates(self, params):
        step, up = params["scale_step"], params["upsample"]
        for name, t in zip(self.classes_, self.templates_):
            if reachable_scales(t.scale_range, step, up):
                continue
            lo, hi = t.scale_range
            span = f"[{lo:.3g}, {'inf' if math.isinf(hi) else f'{hi:.3g}'}]"
            if up < lo:
                raise bad_parameter("upsample", f"{up} is below every scale at which class {name!r} is searched "
                                    f"({span}, set at fit from its window and object sizes): it could never be "
                                    "detected", f"use an upsample of at least {lo:.3g}")
            raise bad_parameter("scale_step", f"with {step} (and upsample={up}) no pyramid level falls in the scales "
                                f"{span} at which class {name!r} is searched: it could never be detected",
                                f"use a scale_step of at most {hi / lo:.3g}")

    def _fitted_problem(self):
        """None for a usable fitted model, else why it is not fitted."""
        if not hasattr(self, "templates_") or not hasattr(self, "fit_settings_"):
            return None, "this Localizer is not fitted yet", "call fit() or Localizer.load() first"
        for name, was in self.fit_settings_.items():
            now = getattr(self, name)
            if now is was or (type(now) is type(was) and not isinstance(now, float) and now == was):
                continue  # unchanged (the common case, checked per prediction); else compare normalised values
            try:
                same = _same(check_value(name, now), was)
            except DataError:
                same = False
            if not same:
                return name, (f"{name} was {was!r} when the model was trained and is now {_show(now)}: its learned "
                              "templates depend on it, so the model is no longer fitted"), \
                    f"set it back with set_params({name}={was!r}), or fit again"
        return None

    def __sklearn_is_fitted__(self):
        """scikit-learn's ``check_is_fitted`` asks this: fitted (or loaded), and no fit-only setting changed since."""
        return self._fitted_problem() is None

    def __sklearn_tags__(self):
        """scikit-learn's tags (``check_is_fitted``, ``clone`` and the meta-estimators read them): those of an
        estimator that takes images, not a 2-D array. scikit-learn is imported only when scikit-learn asks
        (it is not a dependency of prediction)."""
        from sklearn.utils import Tags, TargetTags

        tags = Tags(estimator_type=None, target_tags=TargetTags(required=True))
        tags.input_tags.two_d_array = False
        tags.non_deterministic = False
        return tags

    def _check_is_fitted(self):
        problem = self._fitted_problem()
        if problem is not None:
            name, text, fix = problem
            raise NotFittedError("Localizer", name or "", text, fix, kind="not fitted")

    def _prediction_settings(self):
        """The checked prediction settings of a fitted model (DataError for a bad one)."""
        self._check_is_fitted()
        params = self._resolved(check_params({n: getattr(self, n) for n in PREDICTION_SETTINGS}))
        self._check_against_templates(params)
        return params

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
        require_training("fit")  # the base install predicts only: one line naming the extra
        params = check_params(self.get_params())
        dataset = X if isinstance(X, Dataset) else self._dataset_from_arrays(X, boxes, labels, classes)
        if len(dataset) == 0:
            raise ValueError("cannot fit on an empty dataset")
        from .training import train_templates  # scikit-learn is imported here, never on the predict path

        fp = self._feature_params_of(params)
        from .parallel import resolve_n_jobs

        n_jobs = resolve_n_jobs(params["n_jobs"])
        seed = params["random_state"] if params["random_state"] is not None else 0
        names = ("haar_features", "haar_candidates", "window_cells", "window_area", "context", "scale_step",
                 "upsample", "min_size", "max_size", "C", "flip", "n_random_negatives", "mining_rounds",
                 "max_negatives_per_image", "max_negatives", "max_sample_mb", "neg_iou", "pos_iou",
                 "calibration_fraction", "size_calibration", "main_first", "ridge_alpha", "min_score", "nms_iou",
                 "nms_cover")
        p = dict({n: params[n] for n in names}, fp=fp, seed=seed, n_jobs=n_jobs)
        if p["upsample"] == "auto":
            wc = params["window_cells"]
            p["upsample"] = auto_upsample(_class_boxes(dataset), params["window_area"], params["cell_size"],
                                          fp.grid_block + 1, window=None if wc is None else
                                          (wc[0] - 2 * params["context"], wc[1] - 2 * params["context"]))
        templates, presence, cover, rescore, main_ratio, report = train_templates(dataset, p, verbose=params["verbose"])
        report["upsample"] = p["upsample"]
        self.classes_ = tuple(dataset.classes)
        self.templates_ = templates
        self.feature_params_ = fp
        self.fit_settings_ = {n: params[n] for n in FIT_ONLY}
        self.presence_threshold_ = presence
        self.size_calibration_ = rescore
        self.main_ratio_ = main_ratio
        self.nms_cover_ = cover
        self.upsample_ = float(p["upsample"])
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
    def _detect_one(self, image, timings=None, refine=None, settings=None):
        """Detections and unrefined windows of one image; ``settings``: the checked prediction settings
        (:meth:`_prediction_settings`, checked once per batch by the callers), else checked here."""
        s = self._prediction_settings() if settings is None else settings
        fp = self.feature_params_
        if fp.pyramid != s["pyramid"]:
            fp = dataclasses.replace(fp, pyramid=s["pyramid"])
        boxes, labels, scores, windows = detect_image(
            image, self.templates_, fp, s["scale_step"], s["upsample"], s["min_score"],
            s["nms_iou"], s["max_detections"], s["refine"] if refine is None else refine, timings, self.nms_cover_,
            s["cascade"], self.size_calibration_, self.main_ratio_)
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
        s = self._prediction_settings()
        single = isinstance(images, (str, os.PathLike)) or (isinstance(images, np.ndarray) and _image_shaped(images))
        batch = [images] if single else list(images)
        out = [self._detect_one(_as_image(img), timings, settings=s)[0] for img in batch]
        return out[0] if single else out

    def predict(self, images):
        """The main prediction of each image: the first detection (see ``main_first``) if its score reaches
        the presence threshold.

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

        s = self._prediction_settings()
        preds = {rec.image_id: self._detect_one(dataset.image(i), settings=s)[0] for i, rec in enumerate(dataset)}
        return evaluate(dataset, preds, iou_threshold)  # the evaluator reads Detections' boxes, labels, scores

    # ------------------------------------------------------------ model file
    def save(self, path):
        """Write the fitted model to ``path`` (one .npz with JSON metadata, no pickle), atomically.

        Returns the file size in bytes.
        """
        self._prediction_settings()
        params = self.check_params()
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
            templates.append({"window_cells": [int(v) for v in t.window_cells], "context": int(t.context),
                              "bias": float(t.bias),
                              "stage1_threshold": None if t.stage1_threshold is None else float(t.stage1_threshold),
                              "calibration": [float(v) for v in t.calibration],
                              "scale_range": [float(t.scale_range[0]),
                                              None if math.isinf(t.scale_range[1]) else float(t.scale_range[1])]})
        fp = self.feature_params_
        meta = {"features": {"name": params["features"], **_feature_fields(fp)},
                "classes": list(self.classes_), "templates": templates,
                "presence_threshold": float(self.presence_threshold_),
                "size_calibration": None if self.size_calibration_ is None
                else [float(v) for v in self.size_calibration_],
                "main_ratio": None if self.main_ratio_ is None else float(self.main_ratio_),
                "nms_cover": None if self.nms_cover_ is None else float(self.nms_cover_),
                "upsample": float(self.upsample_),
                "params": {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()},
                "training": {k: v for k, v in getattr(self, "fit_report_", {}).items() if _jsonable(v)}}
        return save_model(path, meta, arrays)

    @classmethod
    def load(cls, path):
        """Read a model written by :meth:`save`; the file's own settings are restored.

        Every inconsistency of the file (damage, edits, a foreign or older format, metadata
        of the wrong type or range, arrays of the wrong dtype or shape) raises
        :class:`~classic_loc.errors.ModelFileError`.
        """
        meta, arrays = load_model(path)
        try:
            feats = meta.get("features")
            name = feats.get("name") if isinstance(feats, dict) else None
            if not isinstance(name, str) or name not in FEATURE_BACKENDS:
                raise ModelFileError(path, "", f"the model uses the feature backend {_show(name)}, which this "
                                               f"classic_loc does not have ({', '.join(FEATURE_BACKENDS)})",
                                     "load it with the classic_loc version that wrote it, or train again",
                                     kind="bad model file")
            model = _model_from_file(cls, meta, arrays)
        except ModelFileError:
            raise
        except Exception as exc:  # noqa: BLE001 - whatever the metadata holds, a bad file is a ModelFileError
            if isinstance(exc, _Inconsistent):
                text = exc.args[0]
            elif isinstance(exc, DataError):
                text = str(exc)
            else:
                text = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
            raise ModelFileError(path, "", f"the model's metadata is inconsistent ({text[:300]})",
                                 "the file is damaged or was edited: train the model again",
                                 kind="bad model file") from None
        return model


class _Inconsistent(Exception):
    """A model file's metadata or arrays disagree (turned into ModelFileError by Localizer.load)."""


def _need(ok, problem):
    if not ok:
        raise _Inconsistent(problem)


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _is_real(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _feature_fields(fp):
    return {"cell_size": fp.cell_size, "block_size": fp.block_size, "n_bins": fp.n_bins, "block_norm": fp.block_norm,
            "signed": fp.signed, "interpolate": fp.interpolate, "color": fp.color, "variant": fp.variant,
            "haar": fp.haar, "haar_unit": fp.haar_unit, "preprocess": fp.preprocess}


def _array(arrays, name, dtype, ndim, where):
    a = arrays.get(name)
    if a is None:
        return None
    _need(a.dtype == np.dtype(dtype) and a.ndim == ndim,
          f"{where}: array {name!r} is {a.dtype} with {a.ndim} dimensions, not {np.dtype(dtype)} with {ndim}")
    if a.dtype.kind == "f":
        _need(bool(np.isfinite(a).all()), f"{where}: array {name!r} holds NaN or infinite values")
    return a


#: Parameters added after the model format: a file without one was made (and scans) with this value
#: (exact pyramids; no cap on the training windows, i.e. the largest max_sample_mb; scores not recalibrated by size;
#: the top detection first; no lighting correction).
_ADDED_LATER = {"pyramid": "exact", "max_sample_mb": 1_000_000, "size_calibration": False, "main_first": False,
                "preprocess": "none"}


def _class_boxes(dataset):
    """Each class's boxes that can be positives (not difficult or crowd), as (N_k, 4) arrays."""
    out = []
    for k in range(len(dataset.classes)):
        parts = [r.boxes[(r.labels == k) & ~(r.difficult | r.crowd)] for r in dataset]
        out.append(np.concatenate(parts + [np.zeros((0, 4))]))
    return out


def _model_from_file(cls, meta, arrays):
    """A fitted Localizer from a model file's checked metadata and arrays; _Inconsistent when they disagree."""
    for key in ("params", "features", "classes", "templates", "presence_threshold", "nms_cover"):
        _need(key in meta, f"no {key!r}")
    raw = meta["params"]
    _need(isinstance(raw, dict), "'params' is not an object")
    names = cls._param_names()
    raw = {**_ADDED_LATER, **raw}
    missing = [n for n in names if n not in raw]
    _need(not missing, f"'params' lacks {', '.join(missing[:5])}")
    try:
        params = check_params({n: raw[n] for n in names})
    except DataError as exc:
        raise _Inconsistent(f"params: {exc}") from None
    fp = cls._feature_params_of(params)
    feats = {"preprocess": "none", **meta["features"]}  # files from before the setting: no correction
    expected = {"name": params["features"], **_feature_fields(fp)}
    for k, v in expected.items():
        _need(k in feats and _same(feats[k], v), f"features: {k} is {_show(feats.get(k))}, the parameters give {v!r}")
    classes = meta["classes"]
    _need(isinstance(classes, list) and 1 <= len(classes) <= 100_000
          and all(isinstance(c, str) and c for c in classes) and len(set(classes)) == len(classes),
          "'classes' is not a list of distinct, non-empty names")
    presence = meta["presence_threshold"]
    _need(_is_real(presence) and 0 <= presence <= 1, f"presence_threshold {_show(presence)} is not in [0, 1]")
    cover = meta["nms_cover"]
    _need(cover is None or (_is_real(cover) and 0 < cover <= 1), f"nms_cover {_show(cover)} is not None or in (0, 1]")
    _need(params["nms_cover"] == "auto" or _same(params["nms_cover"], cover if cover is None else float(cover)),
          f"nms_cover {_show(cover)} differs from the parameter nms_cover={params['nms_cover']!r}")
    specs = meta["templates"]
    _need(isinstance(specs, list) and len(specs) == len(classes), "not one template per class")
    expected_arrays = set()
    templates = []
    for k, t in enumerate(specs):
        where = f"template {k}"
        _need(isinstance(t, dict), f"{where} is not an object")
        for key in ("window_cells", "context", "bias", "calibration", "scale_range"):
            _need(key in t, f"{where} has no {key!r}")
        wc, ctx = t["window_cells"], t["context"]
        _need(isinstance(wc, list) and len(wc) == 2 and all(_is_int(v) and 2 <= v <= 128 for v in wc),
              f"{where}: window_cells {_show(wc)} is not two integers in [2, 128]")
        _need(_is_int(ctx) and ctx == params["context"], f"{where}: context {_show(ctx)} is not the parameter "
                                                          f"context={params['context']}")
        _need(min(wc) - 2 * ctx >= 2, f"{where}: window_cells {wc} leave no object inside the context")
        _need(params["window_cells"] is None or tuple(wc) == params["window_cells"],
              f"{where}: window_cells {wc} differ from the parameter window_cells={params['window_cells']!r}")
        _need(fp.variant != "dalal-triggs" or min(wc) >= fp.block_size, f"{where}: window smaller than a block")
        bias, cal, sr = t["bias"], t["calibration"], t["scale_range"]
        _need(_is_real(bias), f"{where}: bias {_show(bias)} is not a finite number")
        _need(isinstance(cal, list) and len(cal) == 2 and all(_is_real(v) for v in cal) and cal[0] > 0,
              f"{where}: calibration {_show(cal)} is not [a > 0, b]")
        _need(isinstance(sr, list) and len(sr) == 2 and _is_real(sr[0]) and sr[0] >= 0
              and (sr[1] is None or (_is_real(sr[1]) and sr[1] > sr[0])),
              f"{where}: scale_range {_show(sr)} is not [lo >= 0, hi > lo or null]")
        stage1 = t.get("stage1_threshold")
        _need(stage1 is None or _is_real(stage1), f"{where}: stage1_threshold {_show(stage1)} is not a finite number")
        w = _array(arrays, f"weights_{k}", np.float32, 1, where)
        haar = _array(arrays, f"haar_{k}", np.int32, 2, where)
        sub = _array(arrays, f"stage1_haar_{k}", np.int32, 1, where)
        ridge = _array(arrays, f"ridge_{k}", np.float32, 2, where)
        ridge_bias = _array(arrays, f"ridge_bias_{k}", np.float64, 1, where)
        _need(w is not None, f"{where} has no weights")
        _need(fp.haar == (haar is not None), f"{where} {'lacks' if fp.haar else 'has'} Haar features")
        if haar is not None:
            _need(1 <= len(haar), f"{where} has no Haar features")
            try:
                check_haar_coords(haar, *fp.haar_window(tuple(wc)))
            except ValueError as exc:
                raise _Inconsistent(f"{where}: {exc}") from None
        d_hog = fp.hog_dim(tuple(wc))
        needs_sub = fp.haar and d_hog == 0 and stage1 is not None
        _need(stage1 is None or fp.haar, f"{where} has a first stage but no Haar features")
        _need((sub is not None) == needs_sub, f"{where}: first-stage features {'missing' if needs_sub else 'unexpected'}")
        if sub is not None:
            _need(len(sub) >= 1 and 0 <= sub.min() and sub.max() < len(haar),
                  f"{where}'s first-stage features are not among its Haar features")
        _need((ridge is None) == (ridge_bias is None), f"{where} has half a box regressor")
        hi = math.inf if sr[1] is None else float(sr[1])
        tpl = Template(tuple(wc), w, float(bias), (float(cal[0]), float(cal[1])), ridge, ridge_bias,
                       (float(sr[0]), hi), ctx, haar, None if stage1 is None else float(stage1), sub)
        dim = template_dim(fp, tpl)
        _need(w.shape == (dim,), f"{where} has {w.shape[0]} weights for a {wc} window ({dim} features)")
        if ridge is not None:
            _need(ridge.shape == (dim, 4) and ridge_bias.shape == (4,),
                  f"{where}: box regressor of shape {ridge.shape}, {ridge_bias.shape}, not ({dim}, 4), (4,)")
        expected_arrays |= {f"{n}_{k}" for n, a in (("weights", w), ("haar", haar), ("stage1_haar", sub),
                                                    ("ridge", ridge), ("ridge_bias", ridge_bias)) if a is not None}
        templates.append(tpl)
    extra = sorted(set(arrays) - expected_arrays)
    _need(not extra, f"unexpected arrays {', '.join(extra[:5])}")
    training = meta.get("training", {})
    _need(isinstance(training, dict), "'training' is not an object")
    model = cls(**params)
    model.classes_ = tuple(classes)
    model.templates_ = templates
    model.feature_params_ = fp
    model.fit_settings_ = {n: params[n] for n in FIT_ONLY}
    model.presence_threshold_ = float(presence)
    rescore = meta.get("size_calibration")  # files before it: none
    _need(rescore is None or (isinstance(rescore, list) and len(rescore) == 3 and all(_is_real(v) for v in rescore)
                              and rescore[0] > 0), f"size_calibration {_show(rescore)} is not null or [alpha > 0, beta, gamma]")
    _need(rescore is None or params["size_calibration"], "size_calibration values with the parameter size_calibration=false")
    model.size_calibration_ = None if rescore is None else tuple(float(v) for v in rescore)
    ratio = meta.get("main_ratio")  # files before it: none
    _need(ratio is None or (_is_real(ratio) and 0 < ratio <= 1), f"main_ratio {_show(ratio)} is not null or in (0, 1]")
    _need(ratio is None or params["main_first"], "main_ratio with the parameter main_first=false")
    model.main_ratio_ = None if ratio is None else float(ratio)
    model.nms_cover_ = None if cover is None else float(cover)
    up = meta.get("upsample", params["upsample"])  # files before upsample="auto" have a number in params only
    _need(_is_real(up) and 0.05 <= up <= 16, f"upsample {_show(up)} is not a number in [0.05, 16]")
    model.upsample_ = float(up)
    model.fit_report_ = training
    try:
        model.check_params()
    except DataError as exc:
        raise _Inconsistent(str(exc)) from None
    return model


def _same(a, b):
    """Equal values of the same kind (True is not 1, 8 is 8.0, (6, 6) is [6, 6])."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None or isinstance(a, str) or isinstance(b, str):
        return type(a) is type(b) and a == b
    return a == b


def _show(value, limit=60):
    try:
        text = repr(value)
    except RecursionError:
        text = f"<{type(value).__name__} nested too deep>"
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _jsonable(value):
    try:
        json.dumps(value, allow_nan=False)
        return True
    except (TypeError, ValueError):
        return False
