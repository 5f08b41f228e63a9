"""Haar-like features: the integral-image fast path against scikit-image and by hand; the Haar localizer."""


import numpy as np
import pytest

import classic_loc._demo as demo
from classic_loc import Localizer, load_dataset
from classic_loc.errors import ModelFileError
from classic_loc.features.haar import (
    HAAR_TYPES,
    MIN_STD,
    HaarModel,
    check_haar_coords,
    corner_matrix,
    feature_areas,
    haar_feature_coords,
    haar_features,
    integral_images,
    lattice_view,
    rectify,
    unit_image,
    window_moments,
)
from classic_loc.scan import FeatureParams, Template, level_features, pyramid_levels, score_level

# skimage's rectangle order per type (its value: type-2 second - first, type-3 middle - outer,
# type-4 TR + BL - TL - BR); our (type, y, x, h, w) rows map onto it like this
_SK_ORDER = {0: [(0, 0), (0, 1)], 1: [(0, 0), (1, 0)], 2: [(0, 0), (0, 1), (0, 2)], 3: [(0, 0), (1, 0), (2, 0)],
             4: [(0, 0), (0, 1), (1, 1), (1, 0)]}


def _skimage_coords(coords):
    """Our feature rows as skimage's feature_coord (lists of inclusive ((r0, c0), (r1, c1))) and feature_type."""
    out = np.empty(len(coords), dtype=object)
    out[:] = [[[(y + i * h, x + j * w), (y + (i + 1) * h - 1, x + (j + 1) * w - 1)] for i, j in _SK_ORDER[t]]
              for t, y, x, h, w in coords]
    return out, np.array([HAAR_TYPES[t] for t in coords[:, 0]], dtype=object)


def _pixel_sum_reference(image, coords, r0, c0):
    """The slowest possible reference: each rectangle summed pixel by pixel with numpy, signed as in the docs."""
    signs = {0: [-1, 1], 1: [-1, 1], 2: [-1, 1, -1], 3: [-1, 1, -1], 4: [-1, 1, -1, 1]}  # in _SK_ORDER's order
    out = []
    for t, y, x, h, w in coords:
        v = 0.0
        for (i, j), s in zip(_SK_ORDER[t], signs[t]):
            v += s * image[r0 + y + i * h:r0 + y + (i + 1) * h, c0 + x + j * w:c0 + x + (j + 1) * w].sum()
        out.append(v)
    return np.array(out)


@pytest.mark.parametrize("height,width", [(24, 24), (8, 9), (5, 3), (1, 2)])
def test_feature_count_equals_skimage(height, width):
    skf = pytest.importorskip("skimage.feature")
    ours = haar_feature_coords(height, width)
    theirs, _ = skf.haar_like_feature_coord(width, height)
    assert len(ours) == len(theirs)
    if (height, width) == (24, 24):
        assert len(ours) == 162336  # Viola and Jones' count for their 24 x 24 window
    assert len(np.unique(ours, axis=0)) == len(ours)


def test_fast_path_equals_skimage_on_every_window_and_feature():
    """All features of a 8 x 9 window, on every window of a 30 x 37 image at step 3, against skimage.

    skimage is called on each window's own integral image (r = c = 0): with a
    nonzero ``r, c`` offset scikit-image 0.26's ``haar_like_feature`` returns
    values that differ from plain pixel sums for features touching the window's
    top or left edge, so the per-window crop is the reference that agrees with
    the definition (checked below against pixel sums too).
    """
    skf = pytest.importorskip("skimage.feature")
    skt = pytest.importorskip("skimage.transform")
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (30, 37)).astype(np.float64)
    ii, ii2 = integral_images(image)
    np.testing.assert_array_equal(ii[1:, 1:], skt.integral_image(image))
    window, step = (8, 9), 3
    coords = haar_feature_coords(*window)
    sk_coords, sk_types = _skimage_coords(coords)
    fast = haar_features(ii, ii2, coords, window, step, normalize=False)
    n = lattice_view(ii, window, step).shape[:2]
    assert n == ((30 - 8) // 3 + 1, (37 - 9) // 3 + 1) and fast.shape == (n[0] * n[1], len(coords))
    for k in range(n[0] * n[1]):
        r, c = divmod(k, n[1])
        crop = image[r * step:r * step + window[0], c * step:c * step + window[1]]
        ref = skf.haar_like_feature(skt.integral_image(crop), 0, 0, window[1], window[0],
                                    feature_type=sk_types, feature_coord=sk_coords)
        np.testing.assert_allclose(fast[k], ref, rtol=0, atol=1e-9)
    some = rng.choice(len(coords), 50, replace=False)
    r, c = divmod(17, n[1])
    assert (r, c) == (1, 7)
    np.testing.assert_allclose(fast[17, some], _pixel_sum_reference(image, coords[some], r * step, c * step),
                               atol=1e-9)


def test_selected_windows_equal_all_windows():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (40, 50)).astype(np.uint8)
    ii, ii2 = integral_images(image)
    coords = haar_feature_coords(10, 12)[::97]
    every = haar_features(ii, ii2, coords, (10, 12), 2)
    n = lattice_view(ii, (10, 12), 2).shape[:2]
    rows, cols = np.array([0, 3, n[0] - 1]), np.array([n[1] - 1, 0, 5])
    np.testing.assert_allclose(haar_features(ii, ii2, coords, (10, 12), 2, rows, cols), every[rows * n[1] + cols])


def test_variance_normalisation_by_hand():
    """A 2 x 4 window of pixels [[0, 2, 4, 6], [2, 4, 6, 8]] (mean 4, variance 48 / 8 = 6):

    the type-2-x feature of 2 x 2 halves is raw 24 - 8 = 16, normalised
    ((24 - 4 * 4) - (8 - 4 * 4)) / (sqrt(6) * 8) = 16 / (8 sqrt 6); the
    type-3-x feature of 2 x 1 thirds at x = 0 has raw (2 + 4) - (0 + 2) - (4 + 6) = -6
    and, as the three-rectangle sum is not mean-free, normalised
    (-6 - 4 * (-2)) / (sqrt(6) * 6) = 2 / (6 sqrt 6). A flat window has its
    standard deviation floored at MIN_STD and every feature 0.
    """
    image = np.array([[0, 2, 4, 6], [2, 4, 6, 8]], dtype=np.float64)
    ii, ii2 = integral_images(image)
    mean, std = window_moments(ii, ii2, (2, 4), 1)
    assert mean.shape == (1, 1) and mean[0, 0] == pytest.approx(4.0) and std[0, 0] == pytest.approx(np.sqrt(6.0))
    coords = np.array([[0, 0, 0, 2, 2], [2, 0, 0, 2, 1]])
    assert feature_areas(coords)[0].tolist() == [8.0, 6.0] and feature_areas(coords)[1].tolist() == [0.0, -2.0]
    raw = haar_features(ii, ii2, coords, (2, 4), 1, normalize=False)[0]
    np.testing.assert_allclose(raw, [16.0, -6.0])
    norm = haar_features(ii, ii2, coords, (2, 4), 1)[0]
    np.testing.assert_allclose(norm, [16 / (8 * np.sqrt(6)), 2 / (6 * np.sqrt(6))])
    # invariance to gain and offset: the point of the normalisation
    ii_b, ii2_b = integral_images(3.0 * image + 50)
    np.testing.assert_allclose(haar_features(ii_b, ii2_b, coords, (2, 4), 1)[0], norm)
    flat_ii, flat_ii2 = integral_images(np.full((2, 4), 7.0))
    assert window_moments(flat_ii, flat_ii2, (2, 4), 1)[1][0, 0] == MIN_STD
    np.testing.assert_allclose(haar_features(flat_ii, flat_ii2, coords, (2, 4), 1)[0], [0.0, 0.0], atol=1e-12)


def test_corner_matrix_by_hand():
    # type-2-x, 1 x 1 halves at (0, 0) of a 1 x 2 window: right - left =
    # (ii[1,2] - ii[0,2] - ii[1,1] + ii[0,1]) - (ii[1,1] - ii[0,1] - ii[1,0] + ii[0,0])
    M = corner_matrix(np.array([[0, 0, 0, 1, 1]]), 1, 2)
    expected = np.zeros((2, 3))
    expected[1, 2], expected[0, 2], expected[1, 1], expected[0, 1], expected[1, 0], expected[0, 0] = 1, -1, -2, 2, 1, -1
    np.testing.assert_array_equal(M[:, 0].reshape(2, 3), expected)


def test_model_scores_equal_rectified_features_times_weights():
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, (48, 64)).astype(np.uint8)
    ii, ii2 = integral_images(image)
    coords = haar_feature_coords(12, 10)[rng.choice(3000, 40, replace=False)]
    w = rng.normal(size=80)
    model = HaarModel(coords, (12, 10), w)
    scores = model.scores(ii, ii2, 2)
    r, c = np.array([0, 5, 7]), np.array([3, 0, 9])
    np.testing.assert_allclose(model.features(ii, ii2, 2, r, c), haar_features(ii, ii2, coords, (12, 10), 2, r, c))
    feats = rectify(haar_features(ii, ii2, coords, (12, 10), 2))
    assert feats.shape[1] == 80 and (feats >= 0).all()
    np.testing.assert_allclose(scores.ravel(), feats @ w, rtol=1e-9, atol=1e-9)


def test_unit_image_and_bad_coordinates():
    image = np.arange(7 * 9, dtype=np.uint8).reshape(7, 9)
    u = unit_image(image, 2)
    assert u.shape == (3, 4)
    np.testing.assert_allclose(u, image[:6, :8].reshape(3, 2, 4, 2).mean(axis=(1, 3)))
    assert lattice_view(integral_images(u)[0], (4, 4), 1).shape[:2] == (0, 1)
    with pytest.raises(ValueError, match="past its 4 x 4 window"):
        check_haar_coords(np.array([[2, 0, 0, 1, 2]]), 4, 4)  # three 2-wide rectangles in 4 columns
    with pytest.raises(ValueError, match="out of range"):
        check_haar_coords(np.array([[5, 0, 0, 1, 1]]), 4, 4)


def test_scan_haar_and_hog_parts_agree_with_level_features():
    """score_level (one matrix product per family) equals level_features @ weights on every window."""
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (90, 120)).astype(np.uint8)
    for fp in (FeatureParams(variant=None, haar=True), FeatureParams(variant="felzenszwalb", haar=True),
               FeatureParams(variant="dalal-triggs", haar=True)):
        wc = (6, 5)
        coords = haar_feature_coords(*fp.haar_window(wc))[::211]
        t = Template(wc, rng.normal(size=fp.window_dim(wc, len(coords))).astype(np.float32), 0.5, context=1,
                     haar=coords)
        for _, _, _, level in list(pyramid_levels(image, fp, [t], 1.3))[:2]:
            sc = score_level(level, fp, t)
            r, c = np.divmod(np.arange(sc.size), sc.shape[1])
            f = level_features(level, fp, t, r, c)
            assert f.shape == (sc.size, fp.window_dim(wc, len(coords)))
            np.testing.assert_allclose(sc.ravel(), f.astype(np.float64) @ t.weights + 0.5, rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------- the Haar localizer end to end
@pytest.fixture(scope="module")
def demo_haar(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo_haar") / "voc"
    demo.generate(root, n_images=80, seed=2)
    return load_dataset(root, split="train"), load_dataset(root, split="test")


@pytest.mark.parametrize("features", ["haar", "fhog+haar"])
def test_haar_localizer_fits_selects_and_round_trips(demo_haar, tmp_path, features):
    train, test = demo_haar
    model = Localizer(features=features, haar_features=30, haar_candidates=400, mining_rounds=1,
                      n_random_negatives=500).fit(train)
    fp = model.feature_params_
    for t, name in zip(model.templates_, model.classes_):
        assert t.haar.shape == (30, 5)
        check_haar_coords(t.haar, *fp.haar_window(t.window_cells))
        assert t.weights.shape == (fp.hog_dim(t.window_cells) + 60,)
        assert model.fit_report_["haar_features"][name] == 30
    path = tmp_path / "h.npz"
    model.save(path)
    loaded = Localizer.load(path)
    assert loaded.features == features
    for a, b in zip(model.templates_, loaded.templates_):
        np.testing.assert_array_equal(a.haar, b.haar)  # the selected coordinates are in the model file
    for i in range(3):
        x, y = model.detect(test.image(i)), loaded.detect(test.image(i))
        np.testing.assert_array_equal(x.boxes, y.boxes)
        np.testing.assert_array_equal(x.scores, y.scores)
    metrics = model.score(test)
    assert 0 <= metrics["map50"] <= 1
    # what the Haar predict path imports: tests/test_slim_install.py (one allow-list)


def test_haar_model_file_with_bad_coordinates_is_refused(demo_haar, tmp_path):
    from classic_loc.model_io import load_model, save_model

    train, _ = demo_haar
    model = Localizer(features="haar", haar_features=10, haar_candidates=100, mining_rounds=0,
                      n_random_negatives=200, calibration_fraction=0.0).fit(train.subset(range(20)))
    model.save(tmp_path / "h.npz")
    meta, arrays = load_model(tmp_path / "h.npz")
    meta.pop("checksum")  # a consistent file (as a crafted one would be) whose coordinates leave the window
    arrays["haar_0"] = arrays["haar_0"].copy()
    arrays["haar_0"][0] = [0, 0, 0, 999, 1]
    save_model(tmp_path / "bad.npz", meta, arrays)
    with pytest.raises(ModelFileError, match="past its"):
        Localizer.load(tmp_path / "bad.npz")


@pytest.mark.parametrize("variant", [None, "felzenszwalb"])
def test_cascade_scores_passed_windows_exactly_and_rejects_the_rest(variant):
    rng = np.random.default_rng(4)
    image = rng.integers(0, 256, (90, 120)).astype(np.uint8)
    fp = FeatureParams(variant=variant, haar=True)
    wc = (6, 5)
    coords = haar_feature_coords(*fp.haar_window(wc))[::97]
    n = len(coords)
    w = rng.normal(size=fp.window_dim(wc, n)).astype(np.float32)
    sub = np.array([1, 4, 7], np.int32)
    _, _, _, level = next(iter(pyramid_levels(image, fp, [Template(wc, w, context=1, haar=coords)], 1.3)))
    full_t = Template(wc, w, 0.5, context=1, haar=coords)
    full = score_level(level, fp, full_t)
    # the first stage by hand: the HOG part plus bias, or the stage-1 Haar features' rectified part plus bias
    r, c = np.divmod(np.arange(full.size), full.shape[1])
    f = level_features(level, fp, full_t, r, c).astype(np.float64)
    d_hog = fp.hog_dim(wc)
    cols = np.arange(d_hog) if variant else np.r_[sub, n + sub]
    s1 = f[:, cols] @ w[cols] + 0.5
    threshold = float(np.median(s1))
    t = Template(wc, w, 0.5, context=1, haar=coords, stage1_threshold=threshold, stage1_haar=None if variant else sub)
    got = score_level(level, fp, t, cascade=True).ravel()
    passed = s1 >= threshold
    assert 0 < passed.sum() < len(passed)
    np.testing.assert_array_equal(np.isinf(got), ~passed)
    np.testing.assert_allclose(got[passed], full.ravel()[passed], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(score_level(level, fp, t), full)  # cascade off: unchanged


def test_cascade_fitted_thresholds_round_trip_and_never_reject_at_minus_infinity(demo_haar, tmp_path):
    import dataclasses

    train, test = demo_haar
    model = Localizer(features="haar", haar_features=30, haar_candidates=400, mining_rounds=1,
                      n_random_negatives=500).fit(train)
    for t in model.templates_:
        assert np.isfinite(t.stage1_threshold) and len(t.stage1_haar) == 10
    model.save(tmp_path / "c.npz")
    loaded = Localizer.load(tmp_path / "c.npz").set_params(cascade=True)
    for a, b in zip(model.templates_, loaded.templates_):
        assert a.stage1_threshold == b.stage1_threshold
        np.testing.assert_array_equal(a.stage1_haar, b.stage1_haar)
    fast = loaded.detect([test.image(i) for i in range(3)])
    assert all(np.isfinite(d.scores).all() for d in fast)
    # a first stage that passes everything gives exactly the full model's detections
    loaded.templates_ = [dataclasses.replace(t, stage1_threshold=-np.inf) for t in loaded.templates_]
    for i in range(3):
        a, b = model.detect(test.image(i)), loaded.detect(test.image(i))
        np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-6)
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-6)
