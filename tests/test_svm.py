"""The primal linear SVM (classic_loc.training.svm) against scikit-learn's LinearSVC (liblinear) on the same data."""

import numpy as np
import pytest
from sklearn.svm import LinearSVC

from classic_loc.training.svm import fit_linear_svm, svm_objective


def _data(n_pos, n_neg, dim, seed, shift=0.05):
    rng = np.random.default_rng(seed)
    pos = (rng.standard_normal((n_pos, dim)) * 0.3 + shift).astype(np.float32)
    neg = (rng.standard_normal((n_neg, dim)) * 0.3).astype(np.float32)
    return pos, neg


def _liblinear(pos, neg, C, cw, dual):
    X = np.concatenate([pos, neg])
    y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    svm = LinearSVC(C=C, loss="squared_hinge", dual=dual, max_iter=100000, tol=1e-8,
                    class_weight={1: cw, 0: 1.0}).fit(X, y)
    return svm.coef_[0], float(svm.intercept_[0])


@pytest.mark.parametrize("n_pos, n_neg, dim, C, dual", [(200, 2000, 300, 0.01, False), (40, 300, 800, 1.0, True),
                                                        (500, 500, 50, 10.0, False), (30, 30, 2000, 0.001, True)])
def test_same_optimum_as_liblinear(n_pos, n_neg, dim, C, dual):
    pos, neg = _data(n_pos, n_neg, dim, n_pos + dim)
    cw = max(1.0, n_neg / n_pos / 4)
    blocks = [(pos, 1, C * cw), (neg, -1, C)]
    w_ref, b_ref = _liblinear(pos, neg, C, cw, dual)
    w, b, n_iter = fit_linear_svm(blocks, tol=1e-7)
    f_ref, f = svm_objective(blocks, w_ref, b_ref), svm_objective(blocks, w, b)
    assert w.dtype == np.float32 and w.shape == (dim,)
    assert f <= f_ref * (1 + 1e-6)  # at least as low an objective as liblinear run to tol 1e-8
    assert abs(f - f_ref) <= 1e-5 * f_ref
    np.testing.assert_allclose(w, w_ref, rtol=0, atol=2e-3 * np.abs(w_ref).max())
    assert b == pytest.approx(b_ref, abs=2e-3 * max(1.0, abs(b_ref)))
    assert 1 <= n_iter < 200


def test_objective_by_hand():
    # two rows, D = 1: f = 1/2 (w^2 + b^2) + C1 max(0, 1 - (w x1 + b))^2 + C2 max(0, 1 + (w x2 + b))^2
    blocks = [(np.array([[2.0]]), 1, 0.5), (np.array([[1.0]]), -1, 2.0)]
    w, b = 0.25, -0.5  # margins: 1 * (0.5 - 0.5) = 0 and -1 * (0.25 - 0.5) = 0.25
    assert svm_objective(blocks, [w], b) == pytest.approx(0.5 * (0.0625 + 0.25) + 0.5 * 1.0 + 2.0 * 0.75 ** 2)


def test_warm_start_and_empty_blocks():
    pos, neg = _data(100, 1000, 200, 7)
    blocks = [(pos, 1, 0.1), (neg, -1, 0.01)]
    w, b, _ = fit_linear_svm(blocks, tol=1e-7)
    w2, b2, n2 = fit_linear_svm(blocks + [(np.zeros((0, 200), np.float32), -1, 0.01)], tol=1e-7,
                                w0=np.r_[w, b])
    np.testing.assert_allclose(w2, w, atol=1e-5)
    assert n2 <= 2  # started at the optimum
    more = [(pos, 1, 0.1), (np.concatenate([neg, neg[:100] + 0.01]), -1, 0.01)]
    w3, _, n3 = fit_linear_svm(more, tol=1e-7, w0=np.r_[w, b])
    w4, _, n4 = fit_linear_svm(more, tol=1e-7)
    np.testing.assert_allclose(w3, w4, atol=1e-4)


def test_the_data_is_not_copied():
    """Working memory is O(rows + dims), not a copy of the data (liblinear's takes ~28 bytes per value)."""
    import tracemalloc

    pos, neg = _data(2000, 18000, 250, 5)  # 20 MB of float32
    tracemalloc.start()
    fit_linear_svm([(pos, 1, 0.1), (neg, -1, 0.01)])
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 0.2 * (pos.nbytes + neg.nbytes), peak


def test_threads_give_the_same_solution_as_one_and_the_optimum(monkeypatch):
    """The products run over fixed parts of the rows whatever the number of threads: bit-identical weights."""
    import classic_loc.training.svm as svm

    monkeypatch.setattr(svm, "PART_ROWS", 64)  # 1100 rows in 18 parts, the last of each block partial
    pos, neg = _data(100, 1000, 150, 3)
    blocks = [(pos, 1, 0.1 * 2.5), (neg, -1, 0.1)]
    one = fit_linear_svm(blocks, tol=1e-7)
    for n_threads in (2, 3):
        w, b, n_iter = fit_linear_svm(blocks, tol=1e-7, n_threads=n_threads)
        assert np.array_equal(w, one[0]) and b == one[1] and n_iter == one[2]
    w_ref, b_ref = _liblinear(pos, neg, 0.1, 2.5, False)
    f_ref, f = svm_objective(blocks, w_ref, b_ref), svm_objective(blocks, one[0], one[1])
    assert abs(f - f_ref) <= 1e-5 * f_ref
