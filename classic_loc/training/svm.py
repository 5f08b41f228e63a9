"""A linear SVM (squared hinge loss, L2 penalty) solved in the primal on dense float32 blocks, without copies.

The objective is liblinear's ``L2R_L2LOSS_SVC`` (scikit-learn's ``LinearSVC(loss="squared_hinge")``)
with its intercept handling (a constant feature of value 1 whose weight is penalised like the
others)::

    f(w, b) = 1/2 (|w|^2 + b^2) + sum_i C_i max(0, 1 - y_i (w . x_i + b))^2

It is minimised by a truncated Newton method (Lin, Weng and Keerthi, "Trust region Newton method
for large-scale logistic regression", JMLR 2008, the method of liblinear's primal solver): each
step solves ``H s = -g`` by conjugate gradients with the generalised Hessian
``H = I + 2 X_A^T diag(C) X_A`` over the rows A inside the margin, then an exact line search on
the piecewise-quadratic objective. Every product with the data is a float32 matrix-vector
product on the blocks as given (positives, negatives): nothing is copied, converted to float64
or to liblinear's sparse nodes (16 bytes per value), so the memory is the data's own, and BLAS
does the work. ``tol`` bounds the gradient norm relative to its value at ``w = 0``.

The solution is the same optimum as liblinear's (the objective is strictly convex); the tests
check the objective and the weights against ``LinearSVC`` on the same data.
"""

from concurrent.futures import ThreadPoolExecutor

import numpy as np

__all__ = ["fit_linear_svm", "svm_objective", "PART_ROWS"]

#: Rows of one part of the data: products are summed part by part, in this fixed partition, whatever the
#: number of threads, so the solution does not depend on it. Large enough that each part's matrix-vector
#: product runs in BLAS without the GIL for most of its time (small products do not scale over threads).
PART_ROWS = 4096


class _Blocks:
    """Row blocks ``X_j`` (n_j, D) float32 with label ``y_j`` (+1 or -1) and cost ``C_j`` each, plus the intercept.

    The products with the data run over parts of at most :data:`PART_ROWS` rows of a block (views,
    not copies), in ``pool``'s threads if given; partial sums are added in the parts' order.
    """

    def __init__(self, blocks, intercept_scaling, pool=None):
        self.blocks = [(np.ascontiguousarray(x, dtype=np.float32), float(y), float(c)) for x, y, c in blocks]
        self.dim = self.blocks[0][0].shape[1]
        self.s = float(intercept_scaling)
        self.y = np.concatenate([np.full(len(x), y) for x, y, _ in self.blocks])
        self.c = np.concatenate([np.full(len(x), c) for x, _, c in self.blocks])
        self.parts, start = [], 0  # (rows view, first row, end row) in the concatenated order
        for x, _, _ in self.blocks:
            for a in range(0, len(x), PART_ROWS):
                self.parts.append((x[a:a + PART_ROWS], start + a, start + min(a + PART_ROWS, len(x))))
            start += len(x)
        self.pool = pool

    def _map(self, func):
        if self.pool is None or len(self.parts) == 1:
            return [func(part) for part in self.parts]
        return list(self.pool.map(func, self.parts))

    def dot(self, v):
        """X_aug @ v, (n,) float64."""
        w32, b = v[:self.dim].astype(np.float32), v[self.dim] * self.s
        return np.concatenate(self._map(lambda part: part[0] @ w32)).astype(np.float64) + b

    def tdot(self, u):
        """X_aug^T @ u, (D + 1,) float64."""
        u32 = u.astype(np.float32)
        out = np.zeros(self.dim + 1)
        for partial in self._map(lambda part: u32[part[1]:part[2]] @ part[0]):
            out[:self.dim] += partial
        out[self.dim] = u.sum() * self.s
        return out

    def hess(self, ca, v):
        """X_aug^T (ca * (X_aug @ v)), (D + 1,) float64: both products on a part at once."""
        w32, b = v[:self.dim].astype(np.float32), np.float32(v[self.dim] * self.s)
        ca32 = ca.astype(np.float32)

        def part_product(part):
            x, a, e = part
            u = x @ w32
            u += b
            u *= ca32[a:e]
            return u @ x, float(u.sum(dtype=np.float64))

        out = np.zeros(self.dim + 1)
        for partial, total in self._map(part_product):
            out[:self.dim] += partial
            out[self.dim] += total * self.s
        return out


def svm_objective(blocks, w, b, intercept_scaling=1.0):
    """The objective f(w, b) (see the module docstring) of ``blocks`` = [(X, y, C), ...]."""
    data = _Blocks(blocks, intercept_scaling)
    v = np.r_[np.asarray(w, np.float64), b / data.s]
    m = data.y * data.dot(v)
    return 0.5 * v @ v + float(np.sum(data.c * np.maximum(0.0, 1.0 - m) ** 2))


def _line_search(z, d, y, c, ws, ss):
    """The minimiser t of f(w + t s) given z = X w, d = X s, w.s and s.s (piecewise quadratic: Newton in t)."""
    t = 1.0
    for _ in range(50):
        m = y * (z + t * d)
        act = m < 1.0
        yd = y * d
        grad = ws + t * ss - 2.0 * np.sum(c[act] * (1.0 - m[act]) * yd[act])
        hess = ss + 2.0 * np.sum(c[act] * yd[act] ** 2)
        step = grad / hess
        t -= step
        if abs(step) <= 1e-12 * max(1.0, abs(t)):
            break
    return t


def fit_linear_svm(blocks, intercept_scaling=1.0, tol=1e-5, max_iter=200, max_cg=250, w0=None, n_threads=1):
    """Minimise the L2-regularised squared-hinge SVM objective over row blocks; returns ``(w (D,) float32, b)``.

    Parameters
    ----------
    blocks : list of (X (n_j, D) array, y_j in {+1, -1}, C_j > 0)
        The rows of each block share a label and a cost (``C`` times the class weight).
    intercept_scaling : float
        Value of the constant feature (liblinear's bias term; 1 as scikit-learn's default).
    tol : float
        Stop when ``|grad f| <= tol * |grad f(0)|``.
    max_iter, max_cg : int
        Newton steps, and conjugate-gradient iterations per step, at most.
    w0 : (D + 1,) array, optional
        Starting point ``[w, b / intercept_scaling]`` (e.g. the previous mining round's solution).
    n_threads : int
        Threads for the products with the data (run BLAS with one thread each). The solution is the
        same for any number: the data's parts and the order of their sums are fixed (:data:`PART_ROWS`).

    Returns
    -------
    w : (D,) float32, b : float, n_iter : int
    """
    blocks = [(x, y, c) for x, y, c in blocks if len(x)]
    if n_threads > 1:
        with ThreadPoolExecutor(n_threads, thread_name_prefix="classic-loc-svm") as pool:
            return _newton(_Blocks(blocks, intercept_scaling, pool), tol, max_iter, max_cg, w0)
    return _newton(_Blocks(blocks, intercept_scaling), tol, max_iter, max_cg, w0)


def _newton(data, tol, max_iter, max_cg, w0):
    """The truncated Newton iterations of :func:`fit_linear_svm` on ``data`` (a :class:`_Blocks`)."""
    y, c = data.y, data.c
    v = np.zeros(data.dim + 1) if w0 is None else np.asarray(w0, np.float64).copy()
    g0 = np.linalg.norm(data.tdot(-2.0 * c * y))  # the gradient at w = 0: all rows inside the margin
    z = data.dot(v)
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        m = y * z
        act = m < 1.0
        ca = np.where(act, c, 0.0)
        g = v + 2.0 * data.tdot(ca * (z - y))
        gn = np.linalg.norm(g)
        if gn <= tol * g0:
            break
        # conjugate gradients on H s = -g, H p = p + 2 X^T (ca * (X p))
        s = np.zeros_like(v)
        r = -g
        p = r.copy()
        rr = r @ r
        for _ in range(max_cg):
            hp = p + 2.0 * data.hess(ca, p)
            alpha = rr / (p @ hp)
            s += alpha * p
            r -= alpha * hp
            rr_new = r @ r
            if np.sqrt(rr_new) <= 0.1 * gn:  # an inexact Newton step is enough far from the optimum
                break
            p = r + (rr_new / rr) * p
            rr = rr_new
        d = data.dot(s)
        t = _line_search(z, d, y, c, v @ s, s @ s)
        v += t * s
        z += t * d
    return v[:data.dim].astype(np.float32), float(v[data.dim] * data.s), n_iter
