"""Choosing each class's Haar-like features: an L1-regularised linear SVM over a random candidate pool.

A window of 16 x 20 Haar units has about 90,000 Haar-like features (162,336
for Viola and Jones' 24 x 24), far too many to compute for every training
window. Per class, a random pool of candidates is drawn from all of them,
computed on the positives and random negatives of a subset of the training
images, and the features an L1-regularised linear SVM (squared hinge) keeps
with the largest weights are selected.

Why L1 and not boosted decision stumps (Viola and Jones' choice): the
selected features feed a *linear* SVM, so they are chosen by the same
criterion, a sparse linear separation of the class from the background;
stumps would pick features for thresholded use that the linear model
cannot make. The L1 penalty is raised (C lowered from a large value) until
at least the wanted number of features have a nonzero weight, then the
largest weights (on standardised features) are kept.
"""

import warnings

import numpy as np

from ..features.haar import haar_feature_coords

__all__ = ["candidate_pool", "l1_select"]


def candidate_pool(window_units, n_candidates, rng):
    """A random subset of all Haar-like features of a window, (n, 5) int32 rows sorted as enumerated."""
    coords = haar_feature_coords(*window_units)
    if len(coords) <= n_candidates:
        return coords
    return coords[np.sort(rng.choice(len(coords), n_candidates, replace=False))]


def l1_select(pos, neg, n_select, seed=0, max_samples=6000):
    """Indices (sorted) of the ``n_select`` candidate features an L1 linear SVM weights most.

    Parameters
    ----------
    pos, neg : (n_pos, 2F), (n_neg, 2F) arrays
        Rectified candidate feature values (positive parts, then negative parts;
        :func:`~classic_loc.features.haar.rectify`) of positive and negative windows.
        A feature's weight is the larger of its two parts'.
    n_select : int
        Features to keep (all F when F <= n_select).
    seed : int
        Subsampling of the windows (at most ``max_samples``, positives first) and the SVM.

    Returns
    -------
    indices : (min(n_select, F),) int ndarray
    """
    n_feat = pos.shape[1] // 2
    if n_feat <= n_select:
        return np.arange(n_feat)
    from sklearn.exceptions import ConvergenceWarning  # here, not at import: worker processes never load it
    from sklearn.svm import LinearSVC

    rng = np.random.default_rng(seed)
    if len(pos) > max_samples // 2:
        pos = pos[np.sort(rng.choice(len(pos), max_samples // 2, replace=False))]
    if len(neg) > max_samples - len(pos):
        neg = neg[np.sort(rng.choice(len(neg), max_samples - len(pos), replace=False))]
    X = np.concatenate([pos, neg]).astype(np.float64)
    y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    X -= X.mean(axis=0)
    X /= np.maximum(X.std(axis=0), 1e-9)
    weights = np.zeros(n_feat)
    for C in (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0):  # from sparse to dense
        svm = LinearSVC(penalty="l1", loss="squared_hinge", dual=False, C=C, class_weight="balanced",
                        max_iter=300, tol=1e-3, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # the ranking is what is used, not the optimum
            svm.fit(X, y)
        weights = np.abs(svm.coef_[0]).reshape(2, -1).max(axis=0)
        if np.count_nonzero(weights) >= n_select:
            break
    order = np.lexsort((np.arange(n_feat), -weights))  # largest weight first, ties by index
    return np.sort(order[:n_select])
