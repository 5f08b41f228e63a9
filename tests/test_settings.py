"""The Localizer's parameters, checked in one place (classic_loc.settings), and the pyramid's limits.

Every parameter is refused with one exact line for a bad type, range or a
non-finite value; the settings that used to hang (scale_step just above 1,
cell_size=0, window_cells=[1, 1], huge pyramids) are refused before any work.
"""

import math
import pickle
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from classic_loc import Localizer
from classic_loc.errors import DataError
from classic_loc.localizer import NotFittedError
from classic_loc.pyramid import MAX_LEVEL_PIXELS, MAX_LEVELS, MAX_WINDOWS, check_pyramid, level_scales, reachable_scales
from classic_loc.scan import FeatureParams, Template, pyramid_levels
from classic_loc.settings import FIT_ONLY, PREDICTION_SETTINGS, RUN_SETTINGS, SPECS, check_params, check_value

sys.path.insert(0, str(Path(__file__).parent))
from fuzz_models import base_models  # noqa: E402  (two tiny fitted models, made once per process)

BAD = [
    ("features", "sift", "features: 'sift' is not available; use one of 'fhog', 'hog', 'haar', 'fhog+haar', 'hog+haar'"),
    ("features", None, "features: None is not allowed; use one of 'fhog',"),
    ("cell_size", 0, "cell_size: 0 is below 2; use an integer in [2, 64]"),
    ("cell_size", 8.5, "cell_size: 8.5 is not a whole number; use an integer in [2, 64]"),
    ("cell_size", True, "cell_size: True (bool) is not an integer; use an integer in [2, 64]"),
    ("cell_size", "8", "cell_size: '8' (str) is not an integer; use an integer in [2, 64]"),
    ("cell_size", 65, "cell_size: 65 is above 64; use an integer in [2, 64]"),
    ("block_size", 0, "block_size: 0 is below 1; use an integer in [1, 8]"),
    ("n_bins", 1, "n_bins: 1 is below 2; use an integer in [2, 36]"),
    ("block_norm", "L3", "block_norm: 'L3' is not available; use one of 'L1', 'L1-sqrt', 'L2', 'L2-Hys'"),
    ("signed", "False", "signed: 'False' (str) is not a bool; use True or False"),
    ("signed", 1, "signed: 1 (int) is not a bool; use True or False"),
    ("interpolate", None, "interpolate: None is not allowed; use True or False"),
    ("color", "yes", "color: 'yes' (str) is not a bool; use True or False"),
    ("preprocess", "gamma", "preprocess: 'gamma' is not available; use one of 'none', 'equalize', 'clahe'"),
    ("haar_features", 0, "haar_features: 0 is below 1; use an integer in [1, 10,000]"),
    ("haar_candidates", 10**6, "haar_candidates: 1000000 is above 100,000; use an integer in [1, 100,000]"),
    ("window_cells", [1, 1], "window_cells: [1, 1]: 1 is below 2; use a pair [rows, cols] of integers, each in "
                             "[2, 128], or None"),
    ("window_cells", 6, "window_cells: 6 is not a pair [rows, cols]; use a pair"),
    ("window_cells", [6, 6, 6], "window_cells: [6, 6, 6] is not a pair [rows, cols]; use a pair"),
    ("window_cells", [6, 6.5], "window_cells: [6, 6.5]: 6.5 is not a whole number; use a pair"),
    ("window_area", 3, "window_area: 3 is below 4; use an integer in [4, 4096]"),
    ("context", -1, "context: -1 is below 0; use an integer in [0, 8]"),
    ("context", 9, "context: 9 is above 8; use an integer in [0, 8]"),
    ("scale_step", 1.00001, "scale_step: 1.00001 is below 1.01; use a number in [1.01, 4]"),
    ("scale_step", 1, "scale_step: 1 is below 1.01; use a number in [1.01, 4]"),
    ("scale_step", math.nan, "scale_step: nan is not a finite number; use a number in [1.01, 4]"),
    ("scale_step", math.inf, "scale_step: inf is not a finite number; use a number in [1.01, 4]"),
    ("scale_step", 5, "scale_step: 5 is above 4; use a number in [1.01, 4]"),
    ("upsample", 0, "upsample: 0 is below 0.05; use a number in [0.05, 16]"),
    ("upsample", -1, "upsample: -1 is below 0.05; use a number in [0.05, 16]"),
    ("upsample", 100, "upsample: 100 is above 16; use a number in [0.05, 16]"),
    ("upsample", "Auto", "upsample: 'Auto' (str) is not a number; use a number in [0.05, 16], or 'auto'"),
    ("pyramid", "approximate", "pyramid: 'approximate' is not available; use one of 'fast', 'exact'"),
    ("pyramid", None, "pyramid: None is not allowed; use one of 'fast', 'exact'"),
    ("min_size", 0, "min_size: 0 is not above 0; use a number in (0, inf), or None (pixels)"),
    ("min_size", math.inf, "min_size: inf is not a finite number; use a number in (0, inf), or None (pixels)"),
    ("max_size", -5, "max_size: -5 is not above 0; use a number in (0, inf), or None (pixels)"),
    ("C", 0, "C: 0 is not above 0; use a number in (0, inf)"),
    ("C", math.nan, "C: nan is not a finite number; use a number in (0, inf)"),
    ("C", 10**400, "C: 1" + "0" * 56 + "... is not a finite number; use a number in (0, inf)"),  # repr cut at 60
    ("flip", "True", "flip: 'True' (str) is not a bool; use True or False"),
    ("n_random_negatives", 0, "n_random_negatives: 0 is below 1; use an integer in [1, 10,000,000]"),
    ("mining_rounds", -1, "mining_rounds: -1 is below 0; use an integer in [0, 100]"),
    ("mining_rounds", 2.5, "mining_rounds: 2.5 is not a whole number; use an integer in [0, 100]"),
    ("max_negatives_per_image", "many", "max_negatives_per_image: 'many' (str) is not an integer; use an integer in "
                                        "[1, 1,000,000], or 'auto'"),
    ("max_negatives_per_image", 0, "max_negatives_per_image: 0 is below 1; use an integer in [1, 1,000,000], or 'auto'"),
    ("max_negatives", 0, "max_negatives: 0 is below 1; use an integer in [1, 100,000,000]"),
    ("max_sample_mb", 8, "max_sample_mb: 8 is below 16; use an integer in [16, 1,000,000], or None (megabytes)"),
    ("neg_iou", 0, "neg_iou: 0 is not above 0; use a number in (0, 1]"),
    ("pos_iou", 1.5, "pos_iou: 1.5 is above 1; use a number in (0, 1]"),
    ("calibration_fraction", 0.95, "calibration_fraction: 0.95 is above 0.9; use a number in [0, 0.9]"),
    ("calibration_fraction", -0.1, "calibration_fraction: -0.1 is below 0; use a number in [0, 0.9]"),
    ("size_calibration", "True", "size_calibration: 'True' (str) is not a bool; use True or False"),
    ("main_first", 1, "main_first: 1 (int) is not a bool; use True or False"),
    ("ridge_alpha", -1, "ridge_alpha: -1 is below 0; use a number in [0, inf)"),
    ("refine", "False", "refine: 'False' (str) is not a bool; use True or False"),
    ("nms_iou", 0, "nms_iou: 0 is not above 0; use a number in (0, 1]"),
    ("nms_cover", "none", "nms_cover: 'none' (str) is not a number; use a number in (0, 1], or 'auto' or None"),
    ("nms_cover", 1.2, "nms_cover: 1.2 is above 1; use a number in (0, 1], or 'auto' or None"),
    ("cascade", 0, "cascade: 0 (int) is not a bool; use True or False"),
    ("min_score", 1, "min_score: 1 is not below 1; use a number in [0, 1)"),
    ("min_score", -0.1, "min_score: -0.1 is below 0; use a number in [0, 1)"),
    ("max_detections", 0, "max_detections: 0 is below 1; use an integer in [1, 100,000]"),
    ("random_state", -1, "random_state: -1 is below 0; use an integer in [0, 4,294,967,295], or None"),
    ("random_state", 2**32, "random_state: 4294967296 is above 4,294,967,295; use an integer in"),
    ("random_state", 1.5, "random_state: 1.5 is not a whole number; use an integer in [0, 4,294,967,295], or None"),
    ("n_jobs", 0, "n_jobs: 0 is below 1; use an integer in [1, 4096], or -1 (-1: all cores)"),
    ("n_jobs", -2, "n_jobs: -2 is below 1; use an integer in [1, 4096], or -1 (-1: all cores)"),
    ("verbose", "False", "verbose: 'False' (str) is not a bool; use True or False"),
]


class _Untouchable:
    """Training data that fails the test if fit reads anything of it (the check must come first)."""

    def __getattr__(self, name):
        raise AssertionError(f"fit read {name!r} before checking its parameters")

    def __len__(self):
        raise AssertionError("fit read the data before checking its parameters")


def _loaded(k=0, tmp=None):
    path = Path(tmp) / f"m{k}.npz"
    path.write_bytes(base_models()[k])
    return Localizer.load(path)


def test_every_parameter_is_checked():
    """The table covers every Localizer parameter, and the three groups split them exactly."""
    names = set(Localizer().get_params())
    assert {name for name, _, _ in BAD} == set(SPECS) == names
    assert set(FIT_ONLY) | set(PREDICTION_SETTINGS) | set(RUN_SETTINGS) == names
    assert len(FIT_ONLY) + len(PREDICTION_SETTINGS) + len(RUN_SETTINGS) == len(names)
    assert set(PREDICTION_SETTINGS) == {"scale_step", "upsample", "pyramid", "cascade", "min_score", "nms_iou",
                                        "max_detections", "refine"}


@pytest.mark.parametrize("name, value, message", BAD, ids=[f"{n}={v!r}"[:40] for n, v, _ in BAD])
def test_bad_value_gives_one_line_naming_the_parameter(name, value, message):
    with pytest.raises(DataError) as info:
        check_value(name, value)
    text = str(info.value)
    assert text.startswith("Localizer: " + message) and "\n" not in text
    assert info.value.kind == "bad parameter" and info.value.item == name
    # fit refuses it the same way, before it touches the data
    t0 = time.perf_counter()
    with pytest.raises(DataError) as fit_info:
        Localizer(**{name: value}).fit(_Untouchable())
    assert str(fit_info.value) == text and time.perf_counter() - t0 < 5.0


def test_good_values_are_normalised():
    assert check_value("cell_size", 8.0) == 8 and type(check_value("cell_size", 8.0)) is int
    assert type(check_value("cell_size", np.int64(6))) is int
    assert check_value("window_cells", np.array([6, 7])) == (6, 7)
    assert check_value("window_cells", [6.0, 7]) == (6, 7)
    assert check_value("n_jobs", -1.0) == -1 and check_value("n_jobs", 2) == 2
    assert check_value("signed", np.bool_(True)) is True
    assert check_value("scale_step", 2) == 2.0 and type(check_value("scale_step", 2)) is float
    assert check_value("nms_cover", "auto") == "auto" and check_value("nms_cover", None) is None
    assert check_value("max_negatives_per_image", "auto") == "auto"
    assert check_value("random_state", None) is None
    assert check_params(Localizer().get_params())["upsample"] == "auto"  # the default: chosen at fit
    assert check_value("upsample", 1) == 1.0 and type(check_value("upsample", 1)) is float


def test_checks_between_parameters():
    cases = [
        (dict(min_size=50, max_size=20), "min_size: 50.0 is not below max_size=20.0: no object size is searched; "
                                         "give min_size < max_size"),
        (dict(min_size=20, max_size=20), "min_size: 20.0 is not below max_size=20.0"),
        (dict(neg_iou=0.7, pos_iou=0.6), "neg_iou: 0.7 is above pos_iou=0.6: a window could be a positive and a "
                                         "negative; give neg_iou <= pos_iou"),
        (dict(features="haar", haar_features=500, haar_candidates=100),
         "haar_features: 500 is more than haar_candidates=100 (the pool they are selected from); give haar_features "
         "<= haar_candidates"),
        (dict(window_cells=[3, 8]), "window_cells: [3, 8] leaves less than 2 x 2 cells of object inside context=1 "
                                    "cells on each side; give window_cells of at least 4 per side"),
        (dict(window_cells=[4, 4], context=0, features="hog", block_size=5),
         "window_cells: [4, 4] is smaller than one block (block_size=5); give window_cells of at least 5 per side"),
    ]
    for params, message in cases:
        with pytest.raises(DataError) as info:
            Localizer(**params).fit(_Untouchable())
        assert str(info.value).startswith("Localizer: " + message)
    # the Haar pool check only applies to Haar models; a window of 2 x 2 object cells is fine
    Localizer(features="fhog", haar_features=500, haar_candidates=100).check_params()
    Localizer(window_cells=[4, 4]).check_params()
    with pytest.raises(DataError, match="^Localizer: nope: invalid parameter 'nope' for Localizer; use one of "):
        Localizer().set_params(nope=1)


def test_parameters_are_keyword_only_and_stored_as_given():
    with pytest.raises(TypeError):
        Localizer("fhog")
    model = Localizer(cell_size="eight")  # stored as given (scikit-learn's convention) ...
    assert model.cell_size == "eight"
    with pytest.raises(DataError, match="cell_size: 'eight' \\(str\\) is not an integer"):  # ... refused at fit
        model.check_params()


def test_known_hangs_are_refused_at_once():
    """The settings that hung fit (scale_step 1.00001, cell_size 0, window_cells [1, 1]) and upsample=0."""
    for params, fragment in [(dict(scale_step=1.00001), "scale_step: 1.00001 is below 1.01"),
                             (dict(cell_size=0), "cell_size: 0 is below 2"),
                             (dict(window_cells=[1, 1]), "window_cells: [1, 1]: 1 is below 2"),
                             (dict(upsample=0), "upsample: 0 is below 0.05")]:
        t0 = time.perf_counter()
        with pytest.raises(DataError, match="^Localizer: " + fragment.replace("[", "\\[").replace("]", "\\]")):
            Localizer(**params).fit(_Untouchable())
        assert time.perf_counter() - t0 < 5.0


def test_prediction_settings_are_checked_before_predicting(tmp_path):
    model = _loaded(0, tmp_path)
    image = np.zeros((40, 56), np.uint8)
    before = model.detect(image)
    for params, message in [(dict(scale_step=1.00001), "Localizer: scale_step: 1.00001 is below 1.01"),
                            (dict(upsample=0), "Localizer: upsample: 0 is below 0.05"),
                            (dict(min_score="0.5"), "Localizer: min_score: '0.5' (str) is not a number"),
                            (dict(nms_iou=math.nan), "Localizer: nms_iou: nan is not a finite number"),
                            (dict(max_detections=2.5), "Localizer: max_detections: 2.5 is not a whole number"),
                            (dict(refine="False"), "Localizer: refine: 'False' (str) is not a bool"),
                            (dict(cascade=1), "Localizer: cascade: 1 (int) is not a bool")]:
        model.set_params(**params)
        for call in (lambda: model.detect(image), lambda: model.predict(image), lambda: model._detect_one(image),
                     model.check_params, lambda: model.save(tmp_path / "x.npz")):
            with pytest.raises(DataError) as info:
                call()
            assert str(info.value).startswith(message)
        model.set_params(**{k: Localizer().get_params()[k] for k in params})
    after = model.detect(image)
    np.testing.assert_array_equal(before.boxes, after.boxes)
    assert not (tmp_path / "x.npz").exists()


def test_settings_that_make_detection_impossible_are_refused(tmp_path):
    """Scale ranges of the tiny model: 'bar' [0.8, 1.25], 'square' [0.533, 0.833] (set at fit)."""
    model = _loaded(0, tmp_path)
    assert [tuple(round(v, 3) for v in t.scale_range) for t in model.templates_] == [(0.8, 1.25), (0.533, 0.833)]
    model.set_params(upsample=0.5)  # below 'bar''s and 'square''s smallest scale
    with pytest.raises(DataError, match=r"^Localizer: upsample: 0.5 is below every scale at which class 'bar' is "
                                        r"searched \(\[0.8, 1.25\], set at fit .*never be detected; use an upsample "
                                        r"of at least 0.8$"):
        model.detect(np.zeros((40, 56), np.uint8))
    # upsample 2 with step 4: levels 2, 0.5, ...: none in 'bar''s [0.8, 1.25]
    model.set_params(upsample=2.0, scale_step=4.0)
    with pytest.raises(DataError, match=r"^Localizer: scale_step: with 4.0 \(and upsample=2.0\) no pyramid level falls "
                                        r"in the scales \[0.8, 1.25\] at which class 'bar' is searched.*use a "
                                        r"scale_step of at most 1.56$"):
        model.check_params()
    model.set_params(upsample=1.0, scale_step=1.5)  # levels 1, 0.667: each class has one
    model.check_params()
    # at fit: a window larger than every object at every allowed level
    images = [np.zeros((48, 48), np.uint8)] * 3  # 20-pixel boxes: searched at 32 / (20 * 1.25) .. 32 / (20 / 1.25)
    with pytest.raises(DataError, match=r"^Localizer: class 'a': no pyramid level \(upsample=1.0, scale_step=1.1\) is "
                                        r"in the scales \[1.28, 2\] at which its 32x32-pixel window frames objects of "
                                        r"16-25 pixels: it could never be detected; use a smaller window_cells"):
        Localizer(window_cells=(6, 6), upsample=1.0).fit(images, [[[4, 4, 24, 24]]] * 3, [["a"]] * 3)
    # with upsample="auto" (the default) the fit upsamples 32 / 20 = 1.6 times: a level in [1.28, 2]
    assert Localizer(window_cells=(6, 6), mining_rounds=0, n_random_negatives=50).fit(
        images, [[[4, 4, 24, 24]]] * 3, [["a"]] * 3).upsample_ == pytest.approx(1.6)


def test_reachable_scales_by_hand():
    # levels 1, 0.909, 0.826, 0.751, 0.683, 0.621, 0.564, ...
    assert reachable_scales((0.5, 0.6), 1.1, 1.0)  # 0.564
    assert not reachable_scales((0.57, 0.6), 1.1, 1.0)  # between 0.564 and 0.621
    assert not reachable_scales((0.5, 0.6), 1.1, 0.4)  # upsample below the range
    assert reachable_scales((0.0, math.inf), 4.0, 0.05)
    assert reachable_scales((1.0, 1.0), 1.1, 1.0)  # exactly the first level


def test_pyramid_limits_are_checked_before_any_level_is_made():
    assert (MAX_LEVELS, MAX_LEVEL_PIXELS, MAX_WINDOWS) == (1000, 2**27, 20_000_000)
    # levels 16 / 1.01**k down to 1e-5: floor(ln(1.6e6) / ln(1.01)) + 1 = 1436
    with pytest.raises(DataError, match=r"^Localizer: a 100000x100000 image: scale_step=1.01 and upsample=16.0 make "
                                        r"1436 pyramid levels, more than the limit of 1000 "
                                        r"\(classic_loc.pyramid.MAX_LEVELS\); use a larger scale_step"):
        level_scales((100000, 100000), (1, 1), 1.01, 16.0)
    assert len(level_scales((100000, 100000), (1, 1), 1.1, 16.0)) == 150  # floor(ln(1.6e6) / ln(1.1)) + 1
    # default settings on 1080p: 30 levels, 161,541 windows of a 10 x 8 window with one cell of context
    scales = level_scales((1080, 1920), (64, 48), 1.1, 1.0)
    assert len(scales) == 30
    assert check_pyramid((1080, 1920), scales, 8, 1, [((10, 8), (0.0, math.inf))], 1.1, 1.0) == 161_541
    # the scan refuses before resizing: a broadcast image costs no memory, only its shape is read
    fp, t = FeatureParams(variant="felzenszwalb"), Template((6, 6), None, context=1)
    t0 = time.perf_counter()
    huge = np.broadcast_to(np.uint8(0), (8000, 8000))
    with pytest.raises(DataError, match=r"^Localizer: a 8000x8000 image: with scale_step=1.01, upsample=1.0 its "
                                        r"pyramid has [\d,]+ windows, more than the limit of 20,000,000 "
                                        r"\(classic_loc.pyramid.MAX_WINDOWS\); use a larger scale_step"):
        next(pyramid_levels(huge, fp, [t], 1.01, 1.0))
    with pytest.raises(DataError, match=r"^Localizer: a 4000x3000 image: with scale_step=1.1, upsample=16.0 its "
                                        r"largest pyramid level has 3,072,000,000 pixels, more than the limit of "
                                        r"134,217,728 \(classic_loc.pyramid.MAX_LEVEL_PIXELS\); use a smaller upsample"):
        next(pyramid_levels(np.broadcast_to(np.uint8(0), (4000, 3000)), fp, [t], 1.1, 16.0))
    assert time.perf_counter() - t0 < 5.0


def test_pathological_pyramid_is_refused_at_predict(tmp_path):
    """A fine pyramid on a large image: the tiny model's two templates at every scale in [0.53, 1.25]."""
    model = _loaded(0, tmp_path).set_params(scale_step=1.01)
    t0 = time.perf_counter()
    with pytest.raises(DataError, match=r"^Localizer: a 8000x6000 image: with scale_step=1.01, upsample=1.0 its "
                                        r"pyramid has 29,281,285 windows, more than the limit of 20,000,000"):
        model.detect(np.broadcast_to(np.uint8(0), (8000, 6000)))
    assert time.perf_counter() - t0 < 5.0
    model.detect(np.zeros((40, 56), np.uint8))  # a small image is fine with that step


def test_not_fitted_error_is_a_one_line_data_error_that_pickles():
    with pytest.raises(NotFittedError) as info:
        Localizer().detect(np.zeros((10, 10), np.uint8))
    exc = info.value
    assert isinstance(exc, DataError) and isinstance(exc, ValueError) and isinstance(exc, AttributeError)
    assert str(exc) == "Localizer: this Localizer is not fitted yet; call fit() or Localizer.load() first"
    again = pickle.loads(pickle.dumps(exc))
    assert type(again) is NotFittedError and str(again) == str(exc)
