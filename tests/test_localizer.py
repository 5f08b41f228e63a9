import json
import os
import zipfile

import cv2
import numpy as np
import pytest

import classic_loc._demo as demo
from classic_loc import Localizer, load_dataset
from classic_loc.cli import main
from classic_loc.errors import DataError, ModelFileError
from classic_loc.features.hog import window_view
from classic_loc.model_io import FORMAT_VERSION, checksum, load_model, save_model
from classic_loc.pyramid import level_scales, resize_level
from classic_loc.scan import FeatureParams, Template, candidate_features, scan_image
from classic_loc.training.samples import reachability


@pytest.fixture(scope="module")
def demo_small(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo") / "voc"
    demo.generate(root, n_images=150, seed=1)
    return load_dataset(root, split="train"), load_dataset(root, split="test"), root


@pytest.fixture(scope="module")
def fitted(demo_small):
    train, test, _ = demo_small
    model = Localizer(mining_rounds=1, n_random_negatives=2000, random_state=0).fit(train)
    return model, test


# ------------------------------------------------------------- the fast path against a slow reference
def test_scan_scores_and_features_match_a_slow_per_window_reference():
    """Every candidate of the scan equals an explicit per-window computation.

    The slow reference rebuilds each pyramid level, pads it by the context (as
    the scan does), crops every window's pixels and computes HOG of the crop
    with scikit-image, then scores it with one dot product per window.
    Tolerance: blocks in the window's interior agree to 1e-5 (float32
    rounding). Blocks on the window's border differ, because in the scan the
    whole image supplies the gradients of the window's first and last pixel
    rows and columns, while HOG of the crop sets them to 0; so the score is
    checked exactly against the window sliced from the grid, and against the
    crop's HOG only within the bound those border blocks allow.
    """
    skimage_hog = pytest.importorskip("skimage.feature").hog
    rng = np.random.default_rng(0)
    image = cv2.GaussianBlur(rng.integers(0, 256, (70, 90)).astype(np.uint8), (5, 5), 0)
    hog = FeatureParams()
    wc, ctx, cell = (6, 5), 1, hog.cell_size
    w = rng.normal(size=hog.window_dim(wc)).astype(np.float32)
    t = Template(wc, w, 0.25, context=ctx)
    cand = scan_image(image, [t], hog, scale_step=1.3, floors=None, max_per_level=10**6, keep_levels=True)
    inner = ((wc[0] - 2 * ctx) * cell, (wc[1] - 2 * ctx) * cell)
    n_checked = 0
    boxes, scores, feats = [], [], []
    for s in level_scales(image.shape, inner, 1.3):
        level, sy, sx = resize_level(image, s)
        padded = cv2.copyMakeBorder(level, ctx * cell, ctx * cell, ctx * cell, ctx * cell, cv2.BORDER_REPLICATE)
        n_r, n_c = padded.shape[0] // cell - wc[0] + 1, padded.shape[1] // cell - wc[1] + 1
        grid = hog.grid(padded)
        for r in range(n_r):
            for c in range(n_c):
                crop = padded[r * cell:(r + wc[0]) * cell, c * cell:(c + wc[1]) * cell]
                ref = skimage_hog(crop, orientations=9, pixels_per_cell=(cell, cell), cells_per_block=(2, 2),
                                  block_norm="L2-Hys", feature_vector=False).astype(np.float32)
                fast = window_view(grid, wc)[r, c]
                np.testing.assert_allclose(fast[1:-1, 1:-1], ref[1:-1, 1:-1], atol=1e-5)  # interior blocks
                diff = np.linalg.norm((fast - ref).ravel())
                ref_score = float(ref.ravel() @ w) + 0.25
                fast_score = float(fast.ravel() @ w) + 0.25
                assert abs(fast_score - ref_score) <= np.linalg.norm(w) * diff + 1e-4
                # the object box the window frames, in image pixels: the window less the context margin
                x1, y1 = ((c + ctx) * cell - ctx * cell) / sx, ((r + ctx) * cell - ctx * cell) / sy
                boxes.append([x1, y1, x1 + inner[1] / sx, y1 + inner[0] / sy])
                scores.append(fast_score)
                feats.append(fast.ravel())
                n_checked += 1
    assert n_checked == len(cand.scores) > 50
    order = np.lexsort(np.array(boxes).T[::-1])
    got = np.lexsort(cand.boxes.T[::-1])
    np.testing.assert_allclose(cand.boxes[got], np.array(boxes)[order], atol=1e-9)
    np.testing.assert_allclose(cand.scores[got], np.array(scores)[order], atol=1e-4)
    # the windows' features as mining and the refinement read them from the kept levels
    np.testing.assert_allclose(candidate_features(cand, got, t, hog), np.array(feats)[order], atol=1e-6)


# ------------------------------------------------------------- unreachable boxes
def test_reachability_from_grid_geometry():
    hog = FeatureParams()
    wc = (6, 6)  # 4 x 4 cells of object (32 px) plus one cell of context
    boxes = np.array([[8, 8, 40, 40], [0, 0, 10, 10], [20, 10, 52, 90]], float)
    best = reachability((120, 160), boxes, wc, hog, 1.1, 1.0, (0, np.inf), context=1)
    assert best[0] == pytest.approx(1.0)  # exactly a window at scale 1
    assert best[1] < 0.5  # 10 px: smaller than any window without upsampling
    assert 0.3 < best[2] < 0.7  # a tall box against a square window
    up = reachability((120, 160), boxes[1:2], wc, hog, 1.1, 4.0, (0, np.inf), context=1)
    assert up[0] > 0.6  # upsampling reaches it


def test_fit_reports_unreachable_boxes_instead_of_failing(demo_small):
    train, _, _ = demo_small
    tiny = [r for r in train if r.n_objects][:12]
    small_box = np.array([[3.0, 3.0, 13.0, 11.0]])  # 10 x 8 px: far below the window
    recs = list(tiny[:-1]) + [type(tiny[-1])(tiny[-1].image_id, tiny[-1].path, tiny[-1].width, tiny[-1].height,
                                                np.vstack([tiny[-1].boxes, small_box]),
                                                np.r_[tiny[-1].labels, tiny[-1].labels[:1]])]
    ds = train.with_records(recs)
    model = Localizer(mining_rounds=0, window_cells=(8, 8), n_random_negatives=200,
                      calibration_fraction=0.0).fit(ds)
    report = model.fit_report_["unreachable_boxes"]
    assert report["count"] >= 1
    rows = [b for c in report["per_class"].values() for b in c["boxes"]]
    tiny_row = [b for b in rows if b["width"] == 10.0 and b["height"] == 8.0]
    assert tiny_row and tiny_row[0]["best_iou"] < 0.6 and tiny_row[0]["aspect"] == 1.25


# ------------------------------------------------------------- estimator behaviour
def test_params_clone_and_not_fitted():
    sklearn_base = pytest.importorskip("sklearn.base")
    model = Localizer(C=0.1, window_area=30)
    clone = sklearn_base.clone(model)
    assert clone.get_params() == model.get_params() and clone is not model
    assert "C=0.1" in repr(model)
    with pytest.raises(ValueError, match="invalid parameter 'nope'"):
        model.set_params(nope=1)
    with pytest.raises(ValueError, match="not fitted yet"):
        model.predict(np.zeros((50, 50), np.uint8))
    with pytest.raises(DataError, match="^Localizer: features: 'sift' is not available; use one of 'fhog', "):
        Localizer(features="sift").fit([np.zeros((50, 50), np.uint8)], [np.zeros((0, 4))], [[]])


def test_end_to_end_fit_predict_detect_score(fitted):
    model, test = fitted
    r = model.score(test)
    # far above chance for 3 classes on cluttered images, far below perfect (the demo is not trivial)
    assert 0.2 < r["map50"] < 0.99
    assert r["accuracy"] > 0.4
    rep = model.fit_report_
    assert rep["heldout_mean_iou_after_refinement"] > rep["heldout_mean_iou_before_refinement"]
    img = test.image(0)
    dets = model.detect(img)
    assert dets.boxes.shape[1] == 4 and np.all(np.diff(dets.scores) <= 0)
    assert np.all(dets.boxes[:, 2] <= img.shape[1]) and np.all(dets.boxes[:, 3] <= img.shape[0])
    pred = model.predict([img, test[1].path])
    assert len(pred) == 2 and all(p.present in (True, False) for p in pred)
    p = model.predict(img)
    if p.present:
        np.testing.assert_array_equal(p.box, dets.boxes[0])
        assert p.class_name == model.classes_[dets.labels[0]]


def test_fit_on_arrays(demo_small):
    train, _, _ = demo_small
    recs = [r for r in train if r.n_objects][:30]
    images = [train.image(train.index_of(r.image_id)) for r in recs]
    model = Localizer(mining_rounds=0, n_random_negatives=300).fit(
        images, [r.boxes for r in recs], [[train.classes[k] for k in r.labels] for r in recs])
    assert set(model.classes_) <= set(train.classes) and len(model.templates_) == len(model.classes_)


# ------------------------------------------------------------- the model file
def test_save_load_round_trip_gives_identical_predictions(fitted, tmp_path):
    model, test = fitted
    size = model.save(tmp_path / "m.npz")
    assert size == os.path.getsize(tmp_path / "m.npz")
    loaded = Localizer.load(tmp_path / "m.npz")
    assert loaded.get_params() == {**model.get_params()}
    for i in range(5):
        a, b = model.detect(test.image(i)), loaded.detect(test.image(i))
        np.testing.assert_array_equal(a.boxes, b.boxes)
        np.testing.assert_array_equal(a.scores, b.scores)
        np.testing.assert_array_equal(a.labels, b.labels)
    with zipfile.ZipFile(tmp_path / "m.npz") as z:
        meta = json.loads(np.load(z.open("__meta__.npy"), allow_pickle=False).tobytes())
    assert meta["format_version"] == FORMAT_VERSION and meta["classes"] == list(model.classes_)
    assert {"cell_size", "block_size", "n_bins", "block_norm"} <= set(meta["features"])
    assert meta["templates"][0]["window_cells"] == list(model.templates_[0].window_cells)
    assert "numpy" in meta["versions"] and "params" in meta and "training" in meta


def _rewrite(path, out, change):
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    change(arrays)
    with open(out, "wb") as fh:
        np.savez(fh, **arrays)


def test_tampered_and_foreign_model_files(fitted, tmp_path):
    model, _ = fitted
    good = tmp_path / "good.npz"
    model.save(good)

    def bump_weight(a):
        a["weights_0"] = a["weights_0"] + np.float32(0.5)

    def edit_meta(a, resign=False, **changes):
        meta = json.loads(a["__meta__"].tobytes())
        meta.update(changes)
        if resign:  # a valid checksum over the edited metadata: the checks after the checksum are reached
            meta["checksum"] = checksum(meta, {k: v for k, v in a.items() if k != "__meta__"})
        a["__meta__"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)

    cases = [
        (bump_weight, r"do not match the checksum .*modified or damaged; use an unmodified model file"),
        (lambda a: edit_meta(a, format_version=99),
         rf"model format version 99 .*this classic_loc reads version {FORMAT_VERSION}; train"),
        (lambda a: edit_meta(a, format="other.tool"), r"not a classic_loc model file \(unknown format\)"),
        (lambda a: edit_meta(a, features={"name": "cnn"}), r"do not match the checksum in the metadata"),
        (lambda a: edit_meta(a, resign=True, features={"name": "cnn"}), r"feature backend 'cnn'"),
        (lambda a: a.pop("__meta__"), r"not a classic_loc model file \(no metadata\)"),
    ]
    for k, (change, message) in enumerate(cases):
        bad = tmp_path / f"bad{k}.npz"
        _rewrite(good, bad, change)
        with pytest.raises(ModelFileError, match=message) as info:
            Localizer.load(bad)
        assert str(info.value).startswith(str(bad)) and "\n" not in str(info.value)
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 definitely not a zip")
    with pytest.raises(ModelFileError, match=r"junk.npz: not a classic_loc model file"):
        Localizer.load(tmp_path / "junk.npz")
    with pytest.raises(ModelFileError, match=r"missing.npz: no such model file"):
        Localizer.load(tmp_path / "missing.npz")
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, __meta__=np.frombuffer(b"{}", np.uint8), evil=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ModelFileError, match=r"needs pickle"):
        load_model(pickled)


def test_model_writes_are_atomic(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    save_model(path, {"x": 1}, {"a": np.arange(3)})
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(np, "savez_compressed", boom)
    with pytest.raises(RuntimeError):
        save_model(path, {"x": 2}, {"a": np.arange(4)})
    assert path.read_bytes() == before  # the old file is intact
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]  # no temporary left behind
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # the mode a plain open() gives, not mkstemp's 0600


# ------------------------------------------------------------- command line
def test_cli_fit_predict_evaluate(demo_small, tmp_path, capsys):
    _, test, root = demo_small
    model_path, report_path = tmp_path / "m.npz", tmp_path / "r.json"
    assert main(["fit", "--data", str(root), "--out", str(model_path), "--report", str(report_path), "--quiet",
                 "--set", "mining_rounds=1", "--set", "n_random_negatives=1500"]) == 0
    out = capsys.readouterr().out
    assert "mAP50" in out and "classic_loc fit: done in" in out and f"  files     {model_path}" in out
    report = json.loads(report_path.read_text())
    for key in ("metrics", "fit_seconds", "predict_ms_per_image", "model_bytes", "mean_iou_before_refinement",
                "mean_iou_after_refinement", "unreachable_boxes"):
        assert key in report
    assert report["model_bytes"] == os.path.getsize(model_path)
    images = [r.path for r in test][:6]
    preds, draw = tmp_path / "p.json", tmp_path / "drawn"
    assert main(["predict", "--model", str(model_path), *images, "--out", str(preds), "--draw", str(draw),
                 "--quiet", "--threshold", "0.05"]) == 0
    results = json.loads(preds.read_text())
    assert all(r["score"] >= 0.05 and r["image_id"] in {os.path.basename(p) for p in images}
               for r in results)
    assert sorted(os.listdir(draw)) == sorted(os.path.splitext(os.path.basename(p))[0] + ".jpg" for p in images)
    capsys.readouterr()
    assert main(["evaluate", "--gt", str(root), "--split", "test", "--pred", str(preds), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_predictions"] == len(results)
    # prediction settings per run: a coarser pyramid gives the API's results with that setting
    coarse = tmp_path / "c.json"
    assert main(["predict", "--model", str(model_path), *images, "--out", str(coarse), "--quiet",
                 "--set", "scale_step=1.3"]) == 0
    from classic_loc.workflow import predict_files

    api = predict_files(Localizer.load(model_path).set_params(scale_step=1.3), images)
    assert json.loads(coarse.read_text()) == api != predict_files(Localizer.load(model_path), images)
    assert main(["predict", "--model", str(model_path), images[0], "--set", "window_area=10"]) == 2
    assert "window_area: is not a prediction setting" in capsys.readouterr().err


def test_cli_fit_holdout_warning_and_bad_set(demo_small, tmp_path, capsys):
    _, _, root = demo_small
    assert main(["fit", "--data", str(root), "--test-split", "nosuch", "--out", str(tmp_path / "m.npz"),
                 "--quiet", "--set", "mining_rounds=0", "--set", "n_random_negatives=500"]) == 0
    assert "seeded 30% hold-out" in capsys.readouterr().err
    assert main(["fit", "--data", str(root), "--set", "bogus_param=1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --set") and "bogus_param" in err


def test_fhog_backend_fits_and_round_trips(demo_small, tmp_path):
    train, test, _ = demo_small
    model = Localizer(features="fhog", mining_rounds=0, n_random_negatives=500).fit(train.subset(range(40)))
    assert model.templates_[0].weights.shape == (model.templates_[0].window_cells[0]
                                                 * model.templates_[0].window_cells[1] * 31,)
    model.save(tmp_path / "f.npz")
    loaded = Localizer.load(tmp_path / "f.npz")
    assert loaded.features == "fhog"
    a, b = model.detect(test.image(0)), loaded.detect(test.image(0))
    np.testing.assert_array_equal(a.boxes, b.boxes)
    np.testing.assert_array_equal(a.scores, b.scores)


def test_negative_cache_drops_easy_negatives_first():
    from classic_loc.training.fit import _negative_cache

    t = Template((2, 2), np.array([1.0], np.float32), 0.0)
    old = np.array([[-5.0], [-2.0], [0.5], [3.0]], np.float32)  # scores -5, -2 (easy), 0.5, 3 (hard)
    new = np.array([[-0.5], [2.0]], np.float32)
    merged, dropped = _negative_cache(old, new, t, cap=10)
    assert dropped == 0 and merged[:, 0].tolist() == [-5, -2, 0.5, 3, -0.5, 2]
    merged, dropped = _negative_cache(old, new, t, cap=5)  # over by one: the easiest goes
    assert dropped == 1 and sorted(merged[:, 0].tolist()) == [-2, -0.5, 0.5, 2, 3]
    merged, dropped = _negative_cache(old, new, t, cap=3)  # only hard ones fit: the hardest three
    assert dropped == 3 and sorted(merged[:, 0].tolist()) == [0.5, 2, 3]


def test_prediction_over_files_streams_in_order_and_in_bounded_memory(fitted, tmp_path, monkeypatch):
    import classic_loc.workflow as wf

    model, test = fitted
    paths = [test[i].path for i in range(12)]
    one = wf.predict_files(model, paths, n_jobs=1)
    assert wf.predict_files(model, paths, n_jobs=2) == one  # threads keep the order and the results
    n = wf.write_predictions(tmp_path / "p.json", model, paths, n_jobs=2)
    assert json.loads((tmp_path / "p.json").read_text()) == one and n == len(one)
    # lazy: when the first image's results come out, at most 2 * n_jobs images have been read
    reads = []
    real = wf.read_image
    monkeypatch.setattr(wf, "read_image", lambda p: reads.append(p) or real(p))
    stream = wf.iter_predictions(model, paths, n_jobs=2)
    next(stream)
    assert 1 <= len(reads) <= 4
    stream.close()
    reads.clear()
    next(wf.iter_predictions(model, paths, n_jobs=1))
    assert len(reads) == 1


# ------------------------------------------------------------- errors from worker processes
@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_fit_in_processes_names_a_corrupt_image(tmp_path, damage):
    """fit(n_jobs=2) with one bad image: the DataError raised in a worker reaches the caller, naming the file.

    "garbage": the file is replaced after the dataset was loaded; "truncated": only its
    first 300 bytes are left (the JPEG header survives, the data does not).
    """
    from concurrent.futures.process import BrokenProcessPool

    root = tmp_path / "voc"
    demo.generate(root, n_images=30, seed=3)
    train = load_dataset(root, split="train")
    path = train[len(train) // 2].path
    data = open(path, "rb").read()
    with open(path, "wb") as fh:
        fh.write(b"not an image at all" * 20 if damage == "garbage" else data[:300])
    assert len(train) >= 8  # every image goes to the worker processes (fewer than 8 run in-process)
    model = Localizer(mining_rounds=0, n_random_negatives=200, calibration_fraction=0.0, n_jobs=2)
    try:
        model.fit(train)
    except BrokenProcessPool as exc:  # the failure this test guards against
        pytest.fail(f"the process pool broke instead of reporting the file: {exc!r}")
    except DataError as exc:
        assert str(exc) == (f"{path}: cannot decode the image; replace it with a valid JPEG/PNG/BMP/TIFF file or "
                            "remove it from the dataset")
        assert exc.kind == "undecodable image"
    else:
        pytest.fail("fit accepted a corrupt image")


# ------------------------------------------------------------- scikit-learn's helpers, Detections as a sequence
def test_check_is_fitted_and_clone_work_as_in_scikit_learn(trained):
    from sklearn.base import clone
    from sklearn.exceptions import NotFittedError as SkNotFitted
    from sklearn.utils.validation import check_is_fitted

    model = Localizer.load(trained)
    check_is_fitted(model)  # no error: loaded is fitted
    with pytest.raises(SkNotFitted):
        check_is_fitted(Localizer())
    copy = clone(model)
    assert copy is not model and copy.get_params() == model.get_params()
    with pytest.raises(SkNotFitted):
        check_is_fitted(copy)  # clone gives an unfitted estimator with the same parameters
    model.set_params(window_cells=[5, 5])  # a fit-only setting changed: no longer fitted
    with pytest.raises(SkNotFitted):
        check_is_fitted(model)


def test_detections_index_slice_and_iterate(trained, voc):
    from classic_loc import Detection, Detections

    dets = Localizer.load(trained).detect(str(next((voc / "JPEGImages").iterdir())))
    assert len(dets) >= 2
    first = dets[0]
    assert isinstance(first, Detection)
    np.testing.assert_array_equal(first.box, dets.boxes[0])
    assert (first.label, first.class_name, first.score) == (int(dets.labels[0]), dets.classes[dets.labels[0]],
                                                             float(dets.scores[0]))
    assert dets[-1].score == float(dets.scores[-1])
    with pytest.raises(IndexError):
        dets[len(dets)]
    top = dets[dets.scores >= dets.scores[1]]
    assert isinstance(top, Detections) and len(top) == int((dets.scores >= dets.scores[1]).sum())
    assert len(dets[:1]) == 1 and len(dets[[1, 0]]) == 2 and dets[[1, 0]][0].score == float(dets.scores[1])
    assert [d.score for d in dets] == dets.scores.tolist()
    box, label, name, score = dets[0]  # a named tuple
    assert name == dets.classes[label]


def test_draw_shows_detections_from_the_presence_threshold_or_conf(trained, voc, tmp_path, monkeypatch):
    """--draw draws the reported detections scoring at least the model's presence threshold by default
    (not the long tail down to min_score that the results keep for AP), at least --conf when given."""
    import classic_loc.draw as draw_module
    import classic_loc.workflow as wf

    model = Localizer.load(trained)
    model.presence_threshold_ = 0.1  # this quick model's own is near its min_score: a threshold that splits its scores
    paths = sorted(str(p) for p in (voc / "JPEGImages").iterdir())[:6]
    drawn = []
    real = draw_module.draw_detections

    def spy(image, boxes, labels, scores, classes):
        drawn.append(np.asarray(scores).copy())
        return real(image, boxes, labels, scores, classes)

    monkeypatch.setattr(draw_module, "draw_detections", spy)
    reported = [e for part in wf.iter_predictions(model, paths, draw_dir=str(tmp_path / "d1")) for e in part]
    scores = np.concatenate(drawn)
    assert len(drawn) == len(paths) and (scores >= model.presence_threshold_).all()
    assert len(scores) == sum(e["score"] >= model.presence_threshold_ for e in reported)
    assert len(scores) < len(reported)  # the long tail is reported, not drawn
    drawn.clear()
    assert main(["predict", "--model", str(trained), *paths, "--draw", str(tmp_path / "d2"), "--conf", "0",
                 "--out", str(tmp_path / "p.json"), "--quiet"]) == 0
    assert sum(len(d) for d in drawn) == len(json.loads((tmp_path / "p.json").read_text()))  # conf 0: all drawn
