"""Fast feature pyramids (classic_loc.feature_pyramid) and the stacked window scorer (classic_loc.window_scores).

The approximation is checked against exact features on real images with its error bound
stated here; the scorer and the scan against the one-template reference
(:func:`classic_loc.features.hog.score_windows`); the setting through the Localizer and its
model file.
"""

import dataclasses
import glob
import math

import cv2
import numpy as np
import pytest

from classic_loc import Localizer, load_dataset
from classic_loc import scan as scan_module
from classic_loc.errors import DataError
from classic_loc.feature_pyramid import EXACT_STEP, exact_levels, feature_levels, resample_cells
from classic_loc.features.fhog import fhog_features, fhog_grid, fhog_histograms
from classic_loc.features.hog import score_windows, window_view
from classic_loc.model_io import load_model, save_model
from classic_loc.scan import FeatureParams, Template, detect_image, pyramid_levels, scan_image
from classic_loc.window_scores import WindowScorer

# ----------------------------------------------------------------- which levels are exact


def test_one_exact_level_per_half_octave():
    scales = [1.1 ** -k for k in range(20)]
    src = exact_levels(scales, "fast")
    # 1.1**3 = 1.33 < sqrt(2) <= 1.1**4 = 1.46: every fourth level is exact, each level takes the one above it
    assert [i for i, s in enumerate(src) if s == i] == [0, 4, 8, 12, 16]
    assert src[3] == 0 and src[5] == 4 and src[19] == 16
    assert exact_levels(scales, "exact") == list(range(20))


def test_a_level_exactly_half_an_octave_down_is_exact():
    step = 2 ** 0.25  # 1 / step**2 is 1 / sqrt(2) up to rounding
    assert [i for i, s in enumerate(exact_levels([step ** -k for k in range(9)])) if s == i] == [0, 2, 4, 6, 8]
    assert EXACT_STEP == 2 ** 0.5


def test_unknown_mode():
    with pytest.raises(ValueError, match="mode must be one of"):
        exact_levels([1.0], "approximate")


# ----------------------------------------------------------------- resampling geometry


def test_resampling_at_factor_one_is_the_identity():
    hist = np.random.default_rng(0).random((7, 9, 18), dtype=np.float32)
    np.testing.assert_array_equal(resample_cells(hist, (7, 9), (1.0, 1.0), 8, 16), hist)


@pytest.mark.parametrize("factor, pad", [((1.5, 1.25), 0), ((1.9, 1.1), 8), ((1.0, 1.7), 16)])
def test_cell_centres_map_through_image_coordinates(factor, pad):
    """Histograms linear in the image position of the cell centres are reproduced exactly away from the border.

    Exact level: cell j centred at pixel (j + 0.5) * 8 - pad, i.e. image row ((j + 0.5) * 8 - pad) / s0;
    the target level's cell i at ((i + 0.5) * 8 - pad) / s with s0 / s = factor.
    """
    cell, s0 = 8, 1.0
    fy, fx = factor
    n0 = (40, 50)
    j_r, j_c = np.arange(n0[0]), np.arange(n0[1])
    y0 = ((j_r + 0.5) * cell - pad) / s0
    x0 = ((j_c + 0.5) * cell - pad) / s0
    hist = np.stack([np.add.outer(y0, 0 * x0), np.add.outer(0 * y0, x0)], axis=2).astype(np.float32)
    shape = (int(n0[0] / fy) - 2, int(n0[1] / fx) - 2)
    out = resample_cells(hist, shape, factor, cell, pad)
    y = ((np.arange(shape[0]) + 0.5) * cell - pad) * fy / s0  # image rows of the target cells' centres
    x = ((np.arange(shape[1]) + 0.5) * cell - pad) * fx / s0
    inside_r = (y >= y0[0]) & (y <= y0[-1])
    inside_c = (x >= x0[0]) & (x <= x0[-1])
    assert inside_r.sum() > shape[0] - 3 and inside_c.sum() > shape[1] - 3
    # OpenCV's bilinear weights are quantised to 1/32: positions within 1/32 of a cell (0.25 px)
    np.testing.assert_allclose(out[inside_r][:, inside_c, 0], np.add.outer(y[inside_r], 0 * x[inside_c]),
                               atol=cell / 32 + 1e-3)
    np.testing.assert_allclose(out[inside_r][:, inside_c, 1], np.add.outer(0 * y[inside_r], x[inside_c]),
                               atol=cell / 32 + 1e-3)
    # beyond the exact grid: its border cells
    assert np.allclose(out[~inside_r][:, :, 0][y[~inside_r] < y0[0]], y0[0])


def test_fhog_grid_is_histograms_then_features():
    image = cv2.imread(sorted(glob.glob(str(_faces()) + "/JPEGImages/*.jpg"))[0], cv2.IMREAD_GRAYSCALE) \
        if _faces().is_dir() else np.random.default_rng(1).integers(0, 256, (96, 120), dtype=np.uint8)
    np.testing.assert_array_equal(fhog_features(fhog_histograms(image, 8)), fhog_grid(image, 8))


def _faces():
    from conftest import shared_data_dir

    return shared_data_dir() / "cmu_mit_faces"


# ----------------------------------------------------------------- error against exact features

#: Relative L2 error ||fast - exact|| / ||exact|| of an approximated level's grid, per HOG variant: at most
#: (mean over the approximated levels of the images, any one level). Measured on 3 images each of pennfudan,
#: cmu_mit_faces and caltech101_subset at scale_step 1.1 (levels 1.1 to 1.33 times below an exact one):
#: FHOG mean 0.26 / 0.31 / 0.26, worst level 0.34 / 0.55 / 0.33; Dalal-Triggs mean 0.37 / 0.43 / 0.43, worst
#: 0.43 / 0.65 / 0.47. For scale: two EXACT grids of one level that differ only in the resize's
#: interpolation (OpenCV's area against bilinear) differ by 0.10-0.30. Exact levels: 0.
ERROR_BOUND = {"felzenszwalb": (0.35, 0.62), "dalal-triggs": (0.48, 0.72)}


@pytest.mark.parametrize("variant", ["felzenszwalb", "dalal-triggs"])
def test_approximated_levels_against_exact_features(shared_data, variant):
    files = sorted(glob.glob(str(shared_data / "pennfudan" / "JPEGImages" / "*.jpg")))[:3] \
        + sorted(glob.glob(str(shared_data / "cmu_mit_faces" / "JPEGImages" / "*.jpg")))[:3]
    fp = FeatureParams(variant=variant)
    t = Template((12, 6), None, context=1)
    errors = []
    for path in files:
        image = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
        exact = list(pyramid_levels(image, fp, [t], 1.1))
        fast = list(pyramid_levels(image, dataclasses.replace(fp, pyramid="fast"), [t], 1.1))
        assert [e[:3] for e in exact] == [f[:3] for f in fast]  # the same scales and factors
        src = exact_levels([e[0] for e in exact])
        for i, (e, f) in enumerate(zip(exact, fast)):
            assert e[3].grid.shape == f[3].grid.shape
            if src[i] == i:
                np.testing.assert_array_equal(e[3].grid, f[3].grid)
            else:
                errors.append(np.linalg.norm(f[3].grid - e[3].grid) / np.linalg.norm(e[3].grid))
                assert errors[-1] <= ERROR_BOUND[variant][1], (path, i, errors[-1])
    assert np.mean(errors) <= ERROR_BOUND[variant][0]
    assert min(errors) > 0.05  # the approximated levels are approximations, not copies of exact ones


def test_haar_features_stay_exact():
    image = np.random.default_rng(2).integers(0, 256, (120, 160), dtype=np.uint8)
    fp = FeatureParams(variant="felzenszwalb", haar=True)
    exact = list(feature_levels(image, fp, [1.0, 0.8, 0.6], 1, "exact"))
    fast = list(feature_levels(image, fp, [1.0, 0.8, 0.6], 1, "fast"))
    for e, f in zip(exact, fast):
        np.testing.assert_array_equal(e[3].ii, f[3].ii)
        np.testing.assert_array_equal(e[3].ii2, f[3].ii2)
    assert not np.array_equal(exact[1][3].grid, fast[1][3].grid)


# ----------------------------------------------------------------- the stacked scorer


@pytest.mark.parametrize("grid_shape", [(40, 60, 1, 1, 31), (7, 9, 1, 1, 31), (30, 20, 2, 2, 9), (5, 5, 1, 1, 31)])
def test_stacked_scorer_equals_the_one_template_reference(grid_shape):
    rng = np.random.default_rng(grid_shape[0])
    grid = rng.random(grid_shape, dtype=np.float32)
    block = grid_shape[2]
    bd = int(np.prod(grid_shape[2:]))
    windows = [(8, 10), (6, 12), (7, 7), (grid_shape[0] + 1, 3), (1, 1)]
    weights = [rng.standard_normal(a * b * bd).astype(np.float32) for a, b in windows]
    scorer = WindowScorer(windows, weights, bd)
    for which in ([0, 1, 2, 3, 4], [2, 0], [4], [3]):
        got = scorer.scores(grid, which)
        for k, g in zip(which, got):
            a, b = windows[k]
            ref = score_windows(grid, (a + block - 1, b + block - 1), weights[k])
            assert g.shape == ref.shape
            np.testing.assert_allclose(g, ref, rtol=1e-5, atol=1e-4)


def test_scorer_refuses_weights_of_the_wrong_length():
    with pytest.raises(ValueError, match="do not fit a window of 2x3 blocks"):
        WindowScorer([(2, 3)], [np.zeros(5)], 31)


def test_scan_with_the_stacked_scorer_equals_the_reference_path(monkeypatch):
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (150, 210), dtype=np.uint8)
    image = cv2.GaussianBlur(image, (0, 0), 2)
    for fp in (FeatureParams(variant="felzenszwalb", pyramid="fast"), FeatureParams(block_size=2)):
        templates = []
        for wc in ((6, 8), (8, 5)):
            dim = fp.hog_dim(wc)
            templates.append(Template(wc, rng.standard_normal(dim).astype(np.float32) * 0.1, bias=-0.5, context=1,
                                      scale_range=(0.3, 1.0) if wc == (6, 8) else (0.5, 2.0)))
        got = scan_image(image, templates, fp, 1.15, 1.0, floors=[-np.inf, -np.inf], max_per_level=10**6)
        monkeypatch.setattr(scan_module, "window_scorer", lambda templates, fp: None)
        ref = scan_image(image, templates, fp, 1.15, 1.0, floors=[-np.inf, -np.inf], max_per_level=10**6)
        monkeypatch.undo()
        np.testing.assert_array_equal(got.where, ref.where)
        np.testing.assert_array_equal(got.labels, ref.labels)
        np.testing.assert_array_equal(got.boxes, ref.boxes)
        np.testing.assert_allclose(got.scores, ref.scores, rtol=1e-5, atol=1e-4)
        b1 = detect_image(image, templates, fp, 1.15, 1.0, min_score=0.0, refine=False)
        assert len(b1[0]) > 0


def test_the_scorer_is_made_once_per_list_of_templates_and_anew_for_new_weights():
    rng = np.random.default_rng(4)
    fp = FeatureParams(variant="felzenszwalb", pyramid="fast")
    templates = [Template(wc, rng.standard_normal(fp.hog_dim(wc)).astype(np.float32), context=1)
                 for wc in ((6, 8), (8, 5))]
    scorer = scan_module.window_scorer(templates, fp)
    assert scan_module.window_scorer(list(templates), fp) is scorer  # the same template objects
    assert scan_module.window_scorer(templates[:1], fp) is not scorer  # another list
    changed = [dataclasses.replace(templates[0], weights=-templates[0].weights), templates[1]]
    other = scan_module.window_scorer(changed, fp)
    assert other is not scorer
    grid = rng.random((12, 14, 1, 1, 31), dtype=np.float32)
    got = other.scores(grid, [0, 1])
    np.testing.assert_allclose(got[0], score_windows(grid, (6, 8), -templates[0].weights), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(got[1], score_windows(grid, (8, 5), templates[1].weights), rtol=1e-5, atol=1e-4)
    assert scan_module.window_scorer(templates, FeatureParams(block_size=2)) is not scorer  # other features


@pytest.mark.parametrize("fp", [FeatureParams(variant="felzenszwalb"), FeatureParams(block_size=2)])
def test_level_features_are_the_window_view_slices(fp):
    """A window's features, read by one fancy index, are grid[r:r + wb_rows, c:c + wb_cols] flattened."""
    rng = np.random.default_rng(5)
    level = fp.level(cv2.GaussianBlur(rng.integers(0, 256, (120, 150), dtype=np.uint8), (0, 0), 1.5))
    t = Template((7, 5), np.zeros(fp.hog_dim((7, 5)), np.float32))
    views = window_view(level.grid, (7, 5))
    rows, cols = np.array([0, 3, views.shape[0] - 1, 3]), np.array([0, 2, views.shape[1] - 1, 2])
    got = scan_module.level_features(level, fp, t, rows, cols)
    assert got.shape == (4, fp.hog_dim((7, 5))) and got.dtype == np.float32
    for k, (r, c) in enumerate(zip(rows, cols)):
        np.testing.assert_array_equal(got[k], views[r, c].ravel())
    assert scan_module.level_features(level, fp, t, rows[:0], cols[:0]).shape == (0, fp.hog_dim((7, 5)))
    with pytest.raises(IndexError):
        scan_module.level_features(level, fp, t, np.array([views.shape[0]]), np.array([0]))


# ----------------------------------------------------------------- the setting, the model file


def test_pyramid_is_a_prediction_setting_and_survives_save_and_load(voc, trained, tmp_path):
    model = Localizer.load(trained)
    assert model.pyramid == "fast" and model.feature_params_.pyramid == "fast"
    test = load_dataset(voc, split="test")
    images = [test.image(i) for i in range(6)]
    fast = model.detect(images)
    model.set_params(pyramid="exact")
    exact = model.detect(images)
    assert any(len(a) != len(b) or not np.allclose(a.scores, b.scores) for a, b in zip(fast, exact))
    model.save(tmp_path / "exact.npz")
    again = Localizer.load(tmp_path / "exact.npz")
    assert again.pyramid == "exact"
    for a, b in zip(exact, again.detect(images)):  # identical predictions, saved and loaded
        np.testing.assert_array_equal(a.boxes, b.boxes)
        np.testing.assert_array_equal(a.scores, b.scores)
    with pytest.raises(DataError, match="pyramid: 'slow' is not available"):
        again.set_params(pyramid="slow").detect(images[0])


def test_a_model_file_from_before_the_setting_loads_as_exact(trained, tmp_path):
    meta, arrays = load_model(trained)
    del meta["params"]["pyramid"]
    save_model(tmp_path / "old.npz", meta, arrays)
    old = Localizer.load(tmp_path / "old.npz")
    assert old.pyramid == "exact" and old.feature_params_.pyramid == "exact"
    assert math.isclose(old.presence_threshold_, Localizer.load(trained).presence_threshold_)
