"""The sliding-window scan: linear templates over the features of an image pyramid.

Per image: the pyramid levels are made once, the features of each level (the
HOG grid, the integral images for Haar-like features, or both) are computed
once, and every template (one per class, each with its own window shape)
scores all windows of a level at once: one matrix product per feature family
(:func:`~classic_loc.features.hog.score_windows`,
:func:`~classic_loc.features.haar.haar_scores`). Only the windows above a score
floor are gathered (their features give the ridge box offsets). Then per-class
NMS, ridge refinement of the kept boxes, and NMS again. No Python loop runs
over windows. numpy and OpenCV only: this is the prediction path.
"""

import functools
import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from .boxes import batched_nms, box_area, clip_boxes
from .features.fhog import FHOG_FEATURES, fhog_grid
from .features.haar import HaarModel, integral_images, lattice_view, rectify, unit_image
from .feature_pyramid import Level, feature_levels
from .features.hog import hog_grid, score_windows
from .images import to_gray
from .pyramid import check_pyramid, level_scales
from .window_scores import WindowScorer

__all__ = ["Template", "FeatureParams", "Level", "Candidates", "pyramid_levels", "refine_offsets", "candidate_features", "n_positions", "score_level", "level_features", "scan_image", "detect_image", "size_features", "rescore_by_size", "recalibrate", "main_first", "apply_deltas", "box_deltas"]


@dataclass(frozen=True)
class FeatureParams:
    """Feature settings shared by every template of a model: HOG, Haar-like, or both.

    ``variant`` is the HOG: ``"dalal-triggs"`` (:func:`~classic_loc.features.hog.hog_grid`:
    blocks of ``block_size`` cells, ``n_bins`` orientations, ``block_norm``),
    ``"felzenszwalb"`` (:func:`~classic_loc.features.fhog.fhog_grid`: 31 features
    per cell, each cell normalised by its four blocks; ``block_size``, ``n_bins``,
    ``block_norm``, ``signed`` and ``interpolate`` do not apply), or None (no HOG).
    ``haar``: Haar-like features (:mod:`~classic_loc.features.haar`) on the gray
    level in units of :attr:`haar_unit` pixels; each template has its own
    selected features. A window's feature vector is its HOG part, then its Haar part.
    ``pyramid``: how the HOG of the pyramid levels is computed, ``"exact"`` (every level
    from its pixels) or ``"fast"`` (once per octave, resampled in between; see
    :mod:`classic_loc.feature_pyramid`). It is not learned state: a model may scan with
    either (:class:`~classic_loc.Localizer`'s ``pyramid`` setting).
    """

    cell_size: int = 8
    block_size: int = 2
    n_bins: int = 9
    block_norm: str = "L2-Hys"
    signed: bool = False
    interpolate: bool = False
    color: bool = False
    variant: str = "dalal-triggs"
    haar: bool = False
    pyramid: str = "exact"
    preprocess: str = "none"

    @property
    def grid_block(self):
        """Cells per block of the grid the scan slices (1 for Felzenszwalb's per-cell features or no HOG)."""
        return self.block_size if self.variant == "dalal-triggs" else 1

    @property
    def haar_unit(self):
        """Pixels per Haar unit: half a cell (so windows step by 2 units), or a cell when the cell size is odd."""
        return self.cell_size // 2 if self.cell_size % 2 == 0 else self.cell_size

    @property
    def haar_step(self):
        """Haar units between neighbouring window positions (one cell)."""
        return self.cell_size // self.haar_unit

    def haar_window(self, window_cells):
        """A window's size in Haar units, (rows, cols)."""
        return window_cells[0] * self.haar_step, window_cells[1] * self.haar_step

    def prepare(self, image):
        """The image the features are computed on: gray, or RGB when ``color`` (per-pixel strongest channel),
        then the lighting correction ``preprocess`` (:func:`preprocess_image`)."""
        image = np.asarray(image)
        if not (self.color and image.ndim == 3 and image.shape[2] == 3):
            image = to_gray(image)
        return preprocess_image(image, self.preprocess)

    def grid(self, image):
        """The HOG grid of an image (see ``variant``)."""
        if self.variant == "felzenszwalb":
            return fhog_grid(image, self.cell_size)
        return hog_grid(image, self.cell_size, self.block_size, self.n_bins, self.block_norm,
                        signed=self.signed, interpolate=self.interpolate)

    def integral(self, image):
        """The integral images (of values and squares) of ``image`` in Haar units."""
        return integral_images(unit_image(image if image.ndim == 2 else to_gray(image), self.haar_unit))

    def level(self, image):
        """Everything the scan reads from one pyramid level, computed exactly: a :class:`Level`."""
        grid = self.grid(image) if self.variant is not None else None
        ii = ii2 = None
        if self.haar:
            ii, ii2 = self.integral(image)
        return Level(grid, ii, ii2)

    def hog_dim(self, window_cells):
        """Length of a window's HOG part: its blocks times the features per block (0 without HOG)."""
        if self.variant is None:
            return 0
        b = self.grid_block
        per_block = FHOG_FEATURES if self.variant == "felzenszwalb" else b * b * self.n_bins
        return (window_cells[0] - b + 1) * (window_cells[1] - b + 1) * per_block

    def window_dim(self, window_cells, n_haar=0):
        """Length D of a window's feature vector: the HOG part plus ``n_haar`` rectified Haar pairs."""
        return self.hog_dim(window_cells) + (2 * n_haar if self.haar else 0)


#: Lighting corrections a model can be trained with (fixed at fit, applied identically at prediction).
PREPROCESS = ("none", "equalize", "clahe")
#: CLAHE's settings: OpenCV's usual ones (a contrast limit of 2 over an 8 x 8 grid of tiles).
CLAHE_CLIP, CLAHE_TILES = 2.0, (8, 8)


@functools.lru_cache(maxsize=None)
def _clahe():
    return cv2.createCLAHE(clipLimit=CLAHE_CLIP, tileGridSize=CLAHE_TILES)


def preprocess_image(image, method):
    """``image`` (gray (rows, cols) or RGB (rows, cols, 3)) with its lighting corrected by ``method``.

    ``"none"``: as it is; ``"equalize"``: histogram equalisation (``cv2.equalizeHist``); ``"clahe"``:
    contrast-limited adaptive equalisation (``cv2.createCLAHE``, :data:`CLAHE_CLIP`, :data:`CLAHE_TILES`),
    which evens out lighting that varies across the image. On RGB the luma (Y of YCrCb) is corrected
    and the colours kept. Other than uint8 images are corrected after scaling to 0-255 and come back as
    uint8.
    """
    if method == "none":
        return image
    if method not in PREPROCESS:
        raise ValueError(f"preprocess must be one of {PREPROCESS}, got {method!r}")
    if image.dtype != np.uint8:
        image = np.clip(np.asarray(image, np.float64) * (255.0 if image.max(initial=0) <= 1.0 else 1.0), 0, 255)
        image = image.astype(np.uint8)
    correct = cv2.equalizeHist if method == "equalize" else _clahe().apply
    if image.ndim == 2:
        return correct(np.ascontiguousarray(image))
    ycrcb = cv2.cvtColor(image, cv2.COLOR_RGB2YCrCb)
    ycrcb[:, :, 0] = correct(np.ascontiguousarray(ycrcb[:, :, 0]))
    return cv2.cvtColor(ycrcb, cv2.COLOR_YCrCb2RGB)


@dataclass
class Template:
    """One class's linear window classifier, score calibration and box regressor.

    Attributes
    ----------
    window_cells : (rows, cols)
    weights : (D,) float32 and bias : float, the SVM
    calibration : (a, b): probability = 1 / (1 + exp(-(a * score + b)))
    ridge : (D, 4) float32 and ridge_bias : (4,), box offsets (dx, dy, dw, dh) or None
    scale_range : (lo, hi) pyramid scales at which this template is run
    context : int, cells of context on each side of the window around the object
    haar : (F, 5) int32 Haar features ``(type, y, x, h, w)`` in the window's Haar units, or None
    stage1_threshold : float or None, the first stage of the optional two-stage cascade:
        windows whose first-stage score is below it are rejected without the full template.
        The first stage is the HOG part (plus bias) of a HOG + Haar template, or for a Haar
        template the Haar features ``stage1_haar`` (indices into ``haar``) alone.
    """

    window_cells: tuple
    weights: np.ndarray
    bias: float = 0.0
    calibration: tuple = (1.0, 0.0)
    ridge: np.ndarray = None
    ridge_bias: np.ndarray = None
    scale_range: tuple = (0.0, np.inf)
    context: int = 0
    haar: np.ndarray = None
    stage1_threshold: float = None
    stage1_haar: np.ndarray = None
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def haar_model(self, fp):
        """The Haar part of ``weights`` as a :class:`~classic_loc.features.haar.HaarModel` (made once)."""
        if "haar" not in self._cache:
            w = None if self.weights is None else self.weights[fp.hog_dim(self.window_cells):]
            self._cache["haar"] = HaarModel(self.haar, fp.haar_window(self.window_cells), w)
        return self._cache["haar"]

    def stage1_model(self, fp):
        """The Haar features of the cascade's first stage and their weights, as a HaarModel (made once)."""
        if "stage1" not in self._cache:
            n = len(self.haar)
            w = self.weights[fp.hog_dim(self.window_cells):]
            sub = np.asarray(self.stage1_haar, dtype=np.intp)
            self._cache["stage1"] = HaarModel(self.haar[sub], fp.haar_window(self.window_cells),
                                              np.r_[w[sub], w[n + sub]])
        return self._cache["stage1"]

    def raw_floor(self, min_probability):
        """The raw score whose calibrated probability is ``min_probability``."""
        a, b = self.calibration
        p = min(max(min_probability, 1e-12), 1 - 1e-12)
        return (np.log(p / (1 - p)) - b) / a

    def probability(self, raw):
        a, b = self.calibration
        return 1.0 / (1.0 + np.exp(-(a * np.asarray(raw, dtype=np.float64) + b)))


@dataclass
class Candidates:
    """Windows above the floor: boxes (N, 4) in image pixels, raw scores, class index, and where they are.

    ``where`` is (N, 3): pyramid level index, window row and column on it;
    ``levels`` the :class:`Level` list when the scan kept it (for the ridge of the
    windows NMS keeps, and the features of mined negatives).
    """

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    where: np.ndarray
    levels: list = None


def box_deltas(windows, targets):
    """R-CNN box offsets (dx, dy, dw, dh) that map ``windows`` onto ``targets`` (both (N, 4) xyxy)."""
    pw, ph = windows[:, 2] - windows[:, 0], windows[:, 3] - windows[:, 1]
    gw, gh = targets[:, 2] - targets[:, 0], targets[:, 3] - targets[:, 1]
    return np.stack([((targets[:, 0] + targets[:, 2]) - (windows[:, 0] + windows[:, 2])) / 2 / pw,
                     ((targets[:, 1] + targets[:, 3]) - (windows[:, 1] + windows[:, 3])) / 2 / ph,
                     np.log(gw / pw), np.log(gh / ph)], axis=1)


def apply_deltas(windows, deltas):
    """Inverse of :func:`box_deltas`: the boxes that ``deltas`` make of ``windows``."""
    pw, ph = windows[:, 2] - windows[:, 0], windows[:, 3] - windows[:, 1]
    cx, cy = (windows[:, 0] + windows[:, 2]) / 2 + deltas[:, 0] * pw, (windows[:, 1] + windows[:, 3]) / 2 + deltas[:, 1] * ph
    w, h = pw * np.exp(np.clip(deltas[:, 2], -1, 1)), ph * np.exp(np.clip(deltas[:, 3], -1, 1))
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


def _add(timings, key, t0):
    if timings is not None:
        timings[key] = timings.get(key, 0.0) + time.perf_counter() - t0
    return time.perf_counter()


def pyramid_levels(image, fp, templates, scale_step=1.2, upsample=1.0, timings=None):
    """Yield ``(scale, sy, sx, level)`` for every pyramid level the scan of ``templates`` makes.

    ``level`` is a :class:`Level` (the features of the level, computed once, exactly or
    approximated from the octave above as ``fp.pyramid`` says: :mod:`classic_loc.feature_pyramid`).
    Each level is padded with ``max(context)`` cells of replicated border, so a
    window's context margin may extend past the image: objects at the border,
    or as large as the image, can still be framed. Window ``(r, c)`` of the level
    frames the object box ``window_boxes(r - pad, c - pad, ..., margin=context)``.

    The pyramid's size is checked against the limits of :mod:`classic_loc.pyramid`
    (levels, pixels, windows) before any level is made: DataError when over.
    """
    t0 = time.perf_counter()
    image = fp.prepare(image)
    cell = fp.cell_size
    pad = max(t.context for t in templates)
    inner = [((t.window_cells[0] - 2 * pad) * cell, (t.window_cells[1] - 2 * pad) * cell) for t in templates]
    smallest = (max(1, min(w[0] for w in inner)), max(1, min(w[1] for w in inner)))
    lo = min(t.scale_range[0] for t in templates)
    hi = max(t.scale_range[1] for t in templates)
    scales = level_scales(image.shape, smallest, scale_step, upsample, lo, hi)
    check_pyramid(image.shape, scales, cell, pad, [(t.window_cells, t.scale_range) for t in templates], scale_step,
                  upsample)
    _add(timings, "pyramid", t0)
    yield from feature_levels(image, fp, scales, pad, fp.pyramid, timings)


def n_positions(level, fp, window_cells):
    """Window positions ``(rows, cols)`` of a level for a window of ``window_cells`` (the same for HOG and Haar)."""
    n = None
    if level.grid is not None:
        b = fp.grid_block
        n = (max(level.grid.shape[0] - (window_cells[0] - b + 1) + 1, 0),
             max(level.grid.shape[1] - (window_cells[1] - b + 1) + 1, 0))
    if level.ii is not None:
        nh = lattice_view(level.ii, fp.haar_window(window_cells), fp.haar_step).shape[:2]
        n = nh if n is None else (min(n[0], nh[0]), min(n[1], nh[1]))
    return n


def score_level(level, fp, t, cascade=False, hog_scores=None):
    """Raw scores of template ``t`` for every window of ``level``, (rows, cols): one matrix product per feature family.

    With ``cascade`` (and a template that has a first stage, see :class:`Template`), the
    first stage scores every window and only the windows that pass it get the full
    template; the others score ``-inf``. ``hog_scores``: the HOG part's scores when
    already computed (by a :class:`~classic_loc.window_scores.WindowScorer` for all
    templates of the level at once); else :func:`~classic_loc.features.hog.score_windows`.
    """
    n = n_positions(level, fp, t.window_cells)
    if n[0] == 0 or n[1] == 0:
        return np.zeros(n)
    score = np.full(n, float(t.bias))
    d_hog = fp.hog_dim(t.window_cells)
    step = fp.haar_step
    if d_hog:
        if hog_scores is None:
            hog_scores = score_windows(level.grid, t.window_cells, t.weights[:d_hog])
        score += hog_scores[:n[0], :n[1]]
    if not fp.haar:
        return score
    if not (cascade and t.stage1_threshold is not None):
        return score + t.haar_model(fp).scores(level.ii, level.ii2, step)[:n[0], :n[1]]
    if not d_hog:  # a Haar template's first stage: a few of its features
        score += t.stage1_model(fp).scores(level.ii, level.ii2, step)[:n[0], :n[1]]
    passed = np.flatnonzero(score.ravel() >= t.stage1_threshold)
    out = np.full(n, -np.inf)
    if passed.size:
        r, c = np.divmod(passed, n[1])
        h = rectify(t.haar_model(fp).features(level.ii, level.ii2, step, r, c)) @ t.weights[d_hog:]
        out.ravel()[passed] = (score.ravel()[passed] if d_hog else float(t.bias)) + h
    return out


def level_features(level, fp, t, rows, cols):
    """Feature vectors (n, D) float32 of the windows at ``(rows, cols)``: HOG part, then Haar part."""
    parts = []
    d_hog = fp.hog_dim(t.window_cells)
    if d_hog:
        # window (r, c) is grid[r:r + wb_rows, c:c + wb_cols] (hog.window_view), read by one fancy index
        b = fp.grid_block
        rows, cols = np.asarray(rows, dtype=np.intp), np.asarray(cols, dtype=np.intp)
        r = rows[:, None, None] + np.arange(t.window_cells[0] - b + 1)[:, None]
        c = cols[:, None, None] + np.arange(t.window_cells[1] - b + 1)
        parts.append(level.grid[r, c].reshape(len(rows), d_hog))
    if fp.haar:
        parts.append(rectify(t.haar_model(fp).features(level.ii, level.ii2, fp.haar_step, rows, cols)))
    return np.ascontiguousarray(np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0], dtype=np.float32)


def window_scorer(templates, fp):
    """A :class:`~classic_loc.window_scores.WindowScorer` of the templates' HOG weights (None without HOG).

    Made once per list of templates (kept in the first template's cache with the templates it
    was made of: a template's weights do not change, a new one is a new object).
    """
    if fp.variant is None or not templates:
        return None
    key = ("scorer", fp.variant, fp.grid_block, fp.n_bins)
    made = templates[0]._cache.get(key)
    if made is not None and len(made[0]) == len(templates) and all(a is b for a, b in zip(made[0], templates)):
        return made[1]
    b = fp.grid_block
    block_dim = FHOG_FEATURES if fp.variant == "felzenszwalb" else b * b * fp.n_bins
    scorer = WindowScorer([(t.window_cells[0] - b + 1, t.window_cells[1] - b + 1) for t in templates],
                          [t.weights[:fp.hog_dim(t.window_cells)] for t in templates], block_dim)
    templates[0]._cache[key] = (tuple(templates), scorer)
    return scorer


def template_dim(fp, t):
    """Length of template ``t``'s feature vector."""
    return fp.window_dim(t.window_cells, 0 if t.haar is None else len(t.haar))


def scan_image(image, templates, fp, scale_step=1.2, upsample=1.0, floors=None, max_per_level=200,
               keep_levels=False, timings=None, cascade=False):
    """Score every window of every template on every pyramid level of ``image``.

    Parameters
    ----------
    image : ndarray (rows, cols) or (rows, cols, 3)
    templates : list of Template
    fp : FeatureParams
    scale_step, upsample : float
        See :func:`classic_loc.pyramid.level_scales`.
    floors : list of float, optional
        Raw score floor per template (default: every window is a candidate up to ``max_per_level``).
    max_per_level : int
        At most this many top-scoring windows per template and level are kept.
    keep_levels : bool
        Keep every level's features in the result (:func:`refine_offsets` and hard-negative
        mining read the windows they keep from them).
    cascade : bool
        Use the templates' first stages (see :func:`score_level`).
    timings : dict, optional
        Seconds spent per stage are added to it (``pyramid``, ``features``, ``scoring``, ``gather``).

    Returns
    -------
    Candidates
    """
    pad = max(t.context for t in templates)
    scores, found = [], []  # found: (level, template, cell rows, cell cols) of each level's and template's windows
    levels = [] if keep_levels else None
    factors = []
    scorer = window_scorer(templates, fp)
    hog_only = not fp.haar
    for i, (s, sy, sx, level) in enumerate(pyramid_levels(image, fp, templates, scale_step, upsample, timings)):
        factors.append((sy, sx))
        if keep_levels:
            levels.append(level)
        t0 = time.perf_counter()
        active = [k for k, t in enumerate(templates)
                  if t.scale_range[0] * (1 - 1e-9) <= s <= t.scale_range[1] * (1 + 1e-9)]
        hog = scorer.scores(level.grid, active) if scorer is not None and active else [None] * len(active)
        for k, hog_k in zip(active, hog):
            t = templates[k]
            if hog_only and hog_k is not None:  # score_level's sum, without its checks
                sc = np.add(hog_k, np.float64(t.bias))
            else:
                sc = score_level(level, fp, t, cascade, hog_k)
            t0 = _add(timings, "scoring", t0)
            if sc.size == 0:
                continue
            flat = sc.ravel()
            idx = np.flatnonzero(flat > floors[k]) if floors is not None else np.arange(flat.size)
            if idx.size > max_per_level:
                idx = idx[np.argpartition(-flat[idx], max_per_level - 1)[:max_per_level]]
            if idx.size == 0:
                continue
            scores.append(flat[idx])
            found.append((i, k) + np.divmod(idx, sc.shape[1]))
            t0 = _add(timings, "gather", t0)
    if not scores:
        return Candidates(np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64), np.zeros((0, 3), np.int64), levels)
    t0 = time.perf_counter()
    sizes = [len(x) for x in scores]
    scores = np.concatenate(scores).astype(np.float64)
    labels = np.repeat(np.array([f[1] for f in found], dtype=np.int64), sizes)
    where = np.empty((len(scores), 3), dtype=np.int64)
    where[:, 0] = np.repeat([f[0] for f in found], sizes)
    where[:, 1] = np.concatenate([f[2] for f in found])
    where[:, 2] = np.concatenate([f[3] for f in found])
    factors = np.asarray(factors, dtype=np.float64)[where[:, 0]]
    # the windows' boxes (each template's window and context), as pyramid.window_boxes computes them
    shape = np.array([t.window_cells for t in templates], dtype=np.int64)[labels]
    margin = np.array([t.context for t in templates], dtype=np.int64)[labels]
    cell = fp.cell_size
    y1 = ((where[:, 1] - pad).astype(np.float64) + margin) * cell / factors[:, 0]
    x1 = ((where[:, 2] - pad).astype(np.float64) + margin) * cell / factors[:, 1]
    h = (shape[:, 0] - 2 * margin) * cell / factors[:, 0]
    w = (shape[:, 1] - 2 * margin) * cell / factors[:, 1]
    boxes = np.stack([x1, y1, x1 + w, y1 + h], axis=1)
    _add(timings, "gather", t0)
    return Candidates(boxes, scores, labels, where, levels)


def candidate_features(cand, sel, template, fp):
    """The features (len(sel), D) float32 of candidates ``sel`` of ``template`` in ``cand``, in order.

    ``cand`` is a scan that kept its levels (``keep_levels=True``); only these windows are
    gathered, level by level.
    """
    out = np.empty((len(sel), template_dim(fp, template)), np.float32)
    where = cand.where[sel]
    for lv in np.unique(where[:, 0]):
        rows = np.flatnonzero(where[:, 0] == lv)
        out[rows] = level_features(cand.levels[int(lv)], fp, template, where[rows, 1], where[rows, 2])
    return out


def refine_offsets(cand, keep, templates, fp):
    """Ridge box offsets (len(keep), 4) of the candidates ``keep``, from their windows' features.

    Only the windows NMS keeps are gathered (:func:`candidate_features`), per template.
    Templates without a regressor give zero offsets.
    """
    deltas = np.zeros((len(keep), 4))
    labels = cand.labels[keep]
    for k in np.unique(labels).tolist():
        t = templates[k]
        if t.ridge is not None:
            sel = np.flatnonzero(labels == k)
            deltas[sel] = candidate_features(cand, keep[sel], t, fp) @ t.ridge + t.ridge_bias
    return deltas


def size_features(scores, windows):
    """The inputs of the size calibration, (N, 2): each score's logit and the log of its window's side in pixels."""
    p = np.clip(np.asarray(scores, dtype=np.float64), 1e-12, 1 - 1e-12)
    w = np.asarray(windows, dtype=np.float64).reshape(-1, 4)
    side = np.sqrt(np.maximum((w[:, 2] - w[:, 0]) * (w[:, 3] - w[:, 1]), 1e-12))
    return np.stack([np.log(p / (1 - p)), np.log(side)], axis=1)


def rescore_by_size(scores, windows, coef):
    """Scores recalibrated with their windows' size: ``sigmoid(alpha * logit(p) + beta * log(side) + gamma)``.

    ``coef`` is ``(alpha, beta, gamma)`` (the Localizer's ``size_calibration_``); ``windows`` (N, 4) the
    detections' window boxes in image pixels, ``side`` the square root of a window's area.
    """
    x = size_features(scores, windows)
    z = coef[0] * x[:, 0] + coef[1] * x[:, 1] + coef[2]
    return 1.0 / (1.0 + np.exp(-z))


def recalibrate(scores, windows, coef):
    """``(order, new_scores)``: the detections' scores by :func:`rescore_by_size`, best first.

    ``order`` indexes the detections as given (a stable sort: equal scores keep their order).
    """
    new = rescore_by_size(scores, windows, coef)
    order = np.argsort(-new, kind="stable")
    return order, new[order]


def main_first(boxes, scores, ratio):
    """The order that puts the main object's detection first: ``(N,)`` indices into the detections.

    ``boxes`` (N, 4) and ``scores`` (N,) are sorted best first. Among the detections scoring at
    least ``ratio`` times the top score, the one with the largest box (the best scored on equal
    areas) is the main object's, as the evaluator's main object is an image's largest box. It
    swaps places with the top detection, and so takes the top score: the scores in their order
    stay as they are. ``ratio`` None (or no such larger box) leaves the order as it is.
    """
    n = len(scores)
    order = np.arange(n)
    if ratio is None or n < 2:
        return order
    close = np.flatnonzero(np.asarray(scores) >= ratio * scores[0])
    c = int(close[np.argmax(box_area(np.asarray(boxes)[close]))])
    order[0], order[c] = c, 0
    return order


def detect_image(image, templates, fp, scale_step=1.2, upsample=1.0, min_score=0.01, nms_iou=0.3,
                 max_detections=100, refine=True, timings=None, nms_cover=None, cascade=False, size_calibration=None,
                 main_ratio=None):
    """All detections of one image: per-class NMS, ridge refinement, NMS again.

    With ``size_calibration`` = (alpha, beta, gamma), the scores of the detections NMS kept are then
    recalibrated by their window's size (:func:`rescore_by_size`) and sorted again. ``min_score``
    applies before that, to the per-class probabilities: the recalibrated scores of the detections
    it lets through may be lower (every one is kept: the tail of the ranking counts in AP). With
    ``main_ratio``, the main object's detection is then put first (:func:`main_first`).

    Returns
    -------
    boxes : (N, 4) refined boxes, clipped to the image
    labels : (N,) class indices
    scores : (N,) calibrated probabilities, decreasing
    unrefined : (N, 4) the same detections' window boxes before refinement
    """
    floors = [t.raw_floor(min_score) for t in templates]
    cand = scan_image(image, templates, fp, scale_step, upsample, floors, keep_levels=refine, timings=timings,
                      cascade=cascade)
    t0 = time.perf_counter()
    probs = np.zeros(len(cand.scores))
    for k, t in enumerate(templates):
        sel = cand.labels == k
        probs[sel] = t.probability(cand.scores[sel])
    keep = batched_nms(cand.boxes, probs, cand.labels, nms_iou, nms_cover)
    t0 = _add(timings, "nms", t0)
    windows = cand.boxes[keep]
    boxes = apply_deltas(windows, refine_offsets(cand, keep, templates, fp)) if refine else windows
    boxes = clip_boxes(boxes, image.shape)
    ok = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    keep, boxes, windows = keep[ok], boxes[ok], windows[ok]
    t0 = _add(timings, "refinement", t0)
    if refine and len(keep):  # refined boxes of one object can now overlap more: suppress again
        again = batched_nms(boxes, probs[keep], cand.labels[keep], nms_iou, nms_cover)
        keep, boxes, windows = keep[again], boxes[again], windows[again]
        t0 = _add(timings, "nms", t0)
    windows, scores = clip_boxes(windows, image.shape), probs[keep]
    if size_calibration is not None and len(keep):
        order, scores = recalibrate(scores, windows, size_calibration)
        keep, boxes, windows = keep[order], boxes[order], windows[order]
    if main_ratio is not None and len(keep):
        order = main_first(boxes, scores, main_ratio)
        keep, boxes, windows = keep[order], boxes[order], windows[order]
    _add(timings, "nms", t0)
    keep, boxes, windows = keep[:max_detections], boxes[:max_detections], windows[:max_detections]
    return boxes, cand.labels[keep], scores[:max_detections], windows
