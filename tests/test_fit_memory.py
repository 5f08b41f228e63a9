"""A lean fit: its peak memory, the ridge from streamed statistics, and the memory caps of classic_loc.training.fit.

The real memory target (<= 1 GB for the whole process tree on every shared set) is measured by
benchmarks/fit.py; here a tiny set and a generous bound.
"""

import json
import subprocess
import sys
import time

import numpy as np
import pytest

import classic_loc.training.fit as F
from classic_loc import Localizer, load_dataset
from classic_loc.scan import Template


# ------------------------------------------------------------------ peak memory of a fit, measured from outside
def test_fit_peak_memory_of_the_process_tree_is_bounded_and_reported(voc, tmp_path):
    """A fit with 2 processes in a subprocess: the tree's sampled peak is under a generous 1000 MB, and the fit
    report's own peak agrees with it (the report samples the same sum from inside)."""
    out = tmp_path / "report.json"
    code = ("import json, sys\n"
            "from classic_loc import Localizer, load_dataset\n"
            f"m = Localizer(n_jobs=2, mining_rounds=1, n_random_negatives=1000).fit(load_dataset({str(voc)!r}, "
            "split='train'))\n"
            f"json.dump(m.fit_report_, open({str(out)!r}, 'w'), default=str)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
    peak = 0
    while proc.poll() is None:
        v = F.tree_rss_bytes(proc.pid)
        peak = max(peak, v or 0)
        time.sleep(0.05)
    assert proc.returncode == 0, proc.stderr.read()[-2000:]
    rep = json.loads(out.read_text())
    peak_mb = peak / 2**20
    assert 50 < peak_mb < 1000, peak_mb
    assert rep["peak_memory_mb"] is not None
    assert 0.5 * peak_mb <= rep["peak_memory_mb"] <= peak_mb * 1.05 + 20  # the report's peak is the fit's, from inside
    tree = rep["memory"]["process_tree"]
    assert set(tree["peak_by_stage_mb"]) >= {"positives and negatives", "SVM", "mining round 1", "calibration",
                                              "box regression", "presence threshold"}
    assert max(tree["peak_by_stage_mb"].values()) == pytest.approx(rep["peak_memory_mb"], abs=0.11)
    assert tree["main_process_vm_hwm_mb"] > 0


def test_tree_rss_counts_children():
    child = subprocess.Popen([sys.executable, "-c", "import time; x = bytearray(80 * 2**20); time.sleep(30)"])
    try:
        for _ in range(100):  # until the child has its 80 MB
            time.sleep(0.05)
            if (F.tree_rss_bytes(child.pid) or 0) > 80 * 2**20:
                break
        own = F.tree_rss_bytes()
        with open(f"/proc/{child.pid}/status") as fh:
            child_kb = next(int(ln.split()[1]) for ln in fh if ln.startswith("VmRSS:"))
        assert child_kb > 80 * 1024
        assert F.tree_rss_bytes() >= own - 5 * 2**20  # stable for this process...
        assert F.tree_rss_bytes() >= child_kb * 1024  # ... and the child counts in its parent's tree
    finally:
        child.kill()
        child.wait()
    assert F.tree_rss_bytes(999999999) is None  # no such process


# ------------------------------------------------------------------ the ridge from streamed statistics
@pytest.mark.parametrize("offset", [0.0, 5.0])
def test_ridge_from_streamed_statistics_equals_sklearn_ridge(monkeypatch, offset):
    """Rows added in many small batches (so the float32 batch products and the shift are exercised) give
    sklearn's Ridge on all rows in float64 to 1e-6 of the coefficients' scale (float32 features, 2000 rows)."""
    from sklearn.linear_model import Ridge

    monkeypatch.setattr(F, "RIDGE_BATCH_BYTES", 4 * 40 * 64)  # batches of 64 rows
    rng = np.random.default_rng(0)
    X = (rng.random((2000, 40)) * 0.3 + offset).astype(np.float32)
    X[:, 3] = X[:, 2] * 0.5 + 0.01 * X[:, 3]  # nearly collinear columns
    Y = X[:, :4].astype(np.float64) @ rng.standard_normal((4, 4)) + 0.1 * rng.standard_normal((2000, 4))
    stats = F._RidgeStats(40)
    for s in range(0, 2000, 37):  # uneven pieces
        stats.add(X[s:s + 37], Y[s:s + 37])
    for alpha in (10.0,):
        ref = Ridge(alpha=alpha).fit(X.astype(np.float64), Y)
        coef, intercept = stats.solve(alpha)
        assert coef.shape == (40, 4) and intercept.shape == (4,)
        scale = np.abs(ref.coef_).max()
        np.testing.assert_allclose(coef, ref.coef_.T, rtol=0, atol=1e-6 * scale)
        np.testing.assert_allclose(intercept, ref.intercept_, rtol=0, atol=1e-6 * max(1.0, np.abs(ref.intercept_).max()))


def test_ridge_of_a_fit_is_sklearns_on_the_same_windows(voc):
    """The fitted templates' ridges equal sklearn's Ridge on every regression window of the fit images
    (the windows made again here, the way the fit's own pass makes them), to 1e-5 of the coefficients' scale."""
    from sklearn.linear_model import Ridge

    from classic_loc.training.samples import image_samples, training_image

    train = load_dataset(voc, split="train")
    model = Localizer(mining_rounds=0, n_random_negatives=300).fit(train)
    rng = np.random.default_rng(0)  # the fit's split of the images
    order = rng.permutation(len(train))
    fit_idx = np.sort(order[int(round(0.2 * len(train))):])
    fp = model.feature_params_
    geometry = [Template(t.window_cells, None, scale_range=t.scale_range, context=t.context) for t in model.templates_]
    p = {"scale_step": model.scale_step, "upsample": model.upsample_, "context": model.context, "pos_iou": 0.6,
         "neg_iou": 0.5, "flip": True, "random_negatives_per_image": 1}
    xs = [[] for _ in geometry]
    ys = [[] for _ in geometry]
    for i in fit_idx:
        rec = train[i]
        boxes = [rec.boxes[(rec.labels == k) & ~(rec.difficult | rec.crowd)] for k in range(len(geometry))]
        _, _, reg = image_samples(training_image(train, i, fp), boxes, boxes, geometry, fp, p,
                                  np.random.default_rng(0))
        for k, (x, y) in enumerate(reg):
            xs[k].append(x)
            ys[k].append(y)
    for k, t in enumerate(model.templates_):
        X, Y = np.concatenate(xs[k]), np.concatenate(ys[k])
        assert len(X) == model.fit_report_["memory"]["ridge"][train.classes[k]]["windows"] > 100
        ref = Ridge(alpha=10.0).fit(X.astype(np.float64), Y)
        np.testing.assert_allclose(t.ridge, ref.coef_.T, rtol=0, atol=1e-5 * np.abs(ref.coef_).max())
        np.testing.assert_allclose(t.ridge_bias, ref.intercept_, rtol=0, atol=1e-5)


# ------------------------------------------------------------------ the caps
def test_negative_cache_in_batches_keeps_the_highest_scores_the_earliest_among_ties():
    """Merged in uneven batches, the cache holds what one merge of everything would: the cap highest scores,
    equal scores decided by arrival (earliest stays); it never holds more than the cap."""
    rng = np.random.default_rng(1)
    t = Template((2, 2), np.array([1.0], np.float32), 0.0)
    rows = np.round(rng.normal(size=(500, 1)), 1).astype(np.float32)  # many equal scores
    cache = F._NegativeCache(1, 120, capacity=200)
    dropped, s = 0, 0
    for m in (7, 150, 1, 0, 90, 252):
        dropped += cache.merge(rows[s:s + m], t)
        s += m
        assert cache.n <= 120
    order = np.lexsort((np.arange(500), -rows[:, 0]))[:120]  # score descending, then arrival
    assert dropped == 380 and cache.dropped == 380
    assert sorted(cache.seq[:cache.n].tolist()) == sorted(order.tolist())
    np.testing.assert_array_equal(np.sort(cache.array()[:, 0]), np.sort(rows[order, 0]))


def test_reservoir_never_exceeds_its_cap_and_keeps_everything_below_it():
    rng = np.random.default_rng(2)
    res = F._Reservoir(3, 50, rng)
    x = np.arange(120 * 3, dtype=np.float32).reshape(120, 3)
    res.add(x[:30])
    np.testing.assert_array_equal(res.array(), x[:30])  # under the cap: all, in order
    res.add(x[30:])
    assert res.n == 50 and res.seen == 120 and res.dropped == 70
    kept = res.array()[:, 0] / 3
    assert len(set(kept.tolist())) == 50 and set(kept.tolist()) <= set(range(120))
    # uniform: over many draws, each of 120 rows is kept 50/120 of the time
    counts = np.zeros(120)
    for seed in range(300):
        r = F._Reservoir(1, 50, np.random.default_rng(seed))
        for s in range(0, 120, 17):
            r.add(np.arange(s, min(s + 17, 120), dtype=np.float32)[:, None])
        counts[r.array()[:, 0].astype(int)] += 1
    assert np.abs(counts / 300 - 50 / 120).max() < 0.12


def test_caps_in_bytes_are_honoured_by_a_fit(voc, monkeypatch):
    """A fit whose caps are set (far) below what the tiny set needs: the positives, the negative cache, each
    image's results and the ridge statistics all stay within them, the report says what was dropped, and the
    model still works."""
    train = load_dataset(voc, split="train")
    settings = dict(window_cells=(6, 6), mining_rounds=1, n_random_negatives=1000, max_negatives_per_image=60)
    d = 6 * 6 * 31  # fhog features of a 6 x 6 window
    rows = 200  # per class
    monkeypatch.setattr(F, "SAMPLE_BYTES", rows * 4 * d * len(train.classes))
    monkeypatch.setattr(F, "IMAGE_BYTES", 100 * 4 * d)  # 100 rows per image: mining (3 x 60) bites
    monkeypatch.setattr(F, "RIDGE_STATS_BYTES", 8 * d ** 2 - 1)  # no class's statistics fit
    monkeypatch.setattr(F, "RIDGE_SAMPLE_BYTES", 300 * 4 * (d + 4) * len(train.classes))
    model = Localizer(**settings).fit(train)
    rep = model.fit_report_
    mem = rep["memory"]
    assert mem["positive_cap_rows"] == int(rows * F.POSITIVE_SHARE)
    for c in train.classes:
        assert rep["n_positives"][c] == int(rows * F.POSITIVE_SHARE) < mem["positives_found"][c]
        assert mem["positives_dropped"][c] == mem["positives_found"][c] - rep["n_positives"][c] > 0
        assert rep["n_negatives"][c] <= mem["negative_cap_rows"][c] == rows - rep["n_positives"][c]
        assert mem["ridge"][c]["solved"].startswith("a random ") and int(mem["ridge"][c]["solved"].split()[2]) <= 300
    assert mem["image_cap_dropped_rows"] > 0
    assert mem["largest_image_result_mb"] * 2**20 <= F.IMAGE_BYTES + 0.01 * 2**20
    for t in model.templates_:
        assert t.ridge.shape == (len(t.weights), 4) and np.isfinite(t.ridge).all()
    assert len(model.detect(train.image(0)).boxes) >= 0


def test_a_fit_does_not_depend_on_the_number_of_processes(voc):
    train = load_dataset(voc, split="train")
    settings = dict(window_cells=(6, 6), mining_rounds=1, n_random_negatives=500, max_negatives_per_image=30)
    one = Localizer(n_jobs=1, **settings).fit(train)
    two = Localizer(n_jobs=2, **settings).fit(train)
    for a, b in zip(one.templates_, two.templates_):
        np.testing.assert_array_equal(a.weights, b.weights)
        np.testing.assert_array_equal(a.ridge, b.ridge)
        assert a.bias == b.bias and a.calibration == b.calibration
    assert one.fit_report_["n_negatives"] == two.fit_report_["n_negatives"]


def test_worker_processes_do_not_import_sklearn():
    """The per-image tasks live in classic_loc.training.fit: importing it (as a worker unpickling a task does)
    loads no scikit-learn, which costs each worker ~70 MB."""
    code = "import sys, classic_loc.training.fit; print(any(m.startswith('sklearn') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_the_sample_cap_is_a_parameter(voc):
    """max_sample_mb sets the byte cap of the training windows: a small one drops rows, the report says how many."""
    from classic_loc import Localizer, load_dataset

    train = load_dataset(voc, split="train")
    small = Localizer(mining_rounds=0, n_random_negatives=2000, max_sample_mb=16, random_state=0)
    assert small.max_sample_mb == 16
    small.fit(train)
    big = Localizer(mining_rounds=0, n_random_negatives=2000, max_sample_mb=640, random_state=0).fit(train)
    rows = 16 * 2**20 // (4 * sum(len(t.weights) for t in small.templates_))
    assert rows < 2000  # the small cap is below the random negatives of each class ...
    n_small = sum(small.fit_report_["n_negatives"].values())
    n_big = sum(big.fit_report_["n_negatives"].values())
    assert n_small < n_big  # ... so it keeps fewer of them
    assert max(small.fit_report_["n_negatives"].values()) <= rows
