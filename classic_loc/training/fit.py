"""Training a set of templates: SVMs with hard-negative mining, calibration, presence threshold, ridge.

scikit-learn is used here and only here (and in nothing the prediction path imports). It is
imported where it is used, in the main process: the worker processes, which compute the
windows of the images, never load it.

Memory
------
What a fit holds does not grow with the number of training images; at most:

- the SVMs' training windows, float32 rows of each class's D_k features: its positives and
  its negative cache, :data:`SAMPLE_BYTES` for all classes together, shared out in equal rows
  per class. A class's positives take at most :data:`POSITIVE_SHARE` of its rows (a uniform
  random subset of them when there are more); its negative cache holds ``max_negatives`` rows
  or what its positives leave of its share, whichever is fewer. The SVM solver works on these
  rows in place (:func:`_fit_svm`: no copy, no float64 or sparse version of them).
- the results of the images in flight between the worker processes and this one
  (:data:`WAVE_IMAGES` images, fewer when their results are large, :data:`WAVE_BYTES`), each
  image's at most :data:`IMAGE_BYTES` (a random subset of its windows when over; for mined
  negatives, the hardest);
- the ridge's sufficient statistics, accumulated image by image in the first pass, beside the
  positives and the first negatives, and freed when the ridge is solved at the end of that
  pass (about ``5 D_k**2`` bytes per class, ``8 D_k**2`` while it is solved, one class at a time;
  :data:`RIDGE_STATS_BYTES` for all classes, counted at 8; a class over
  it is fitted on a uniform random subset of its windows of :data:`RIDGE_SAMPLE_BYTES`).

Where no cap bites, the model is the one of keeping every window: the same windows, the same
negative cache (the easiest go first, see :func:`_negative_cache`), the same SVM optimum (up to
the solver's tolerance, liblinear's), the same ridge (up to float rounding). The fit report says
how many windows each cap dropped (``memory``) and gives the peak resident memory of the whole
process tree (``peak_memory_mb``, see :class:`_MemoryMonitor`). The fit has glibc give freed large blocks
back to the OS at once (:func:`_large_blocks_to_the_os`), in this process and the workers.
"""

import dataclasses
import math
import os
import threading
import time

import numpy as np

from .._progress import log, progress
from ..boxes import _intersection, box_area, box_iou
from ..errors import DataError
from ..parallel import parallel_imap
from ..pyramid import reachable_scales, scale_range
from ..scan import (Template, candidate_features, detect_image, main_first, recalibrate, scan_image, size_features,
                    template_dim)
from .haar_select import candidate_pool, l1_select
from .samples import choose_window, image_samples, reachability, training_image

__all__ = ["train_templates", "SAMPLE_BYTES", "POSITIVE_SHARE", "IMAGE_BYTES", "WAVE_IMAGES", "WAVE_BYTES",
           "RIDGE_STATS_BYTES", "RIDGE_SAMPLE_BYTES", "HAAR_SAMPLE_BYTES", "tree_rss_bytes", "rss_bytes"]

MB = 2**20
#: Bytes of SVM training windows (positives and negative caches of all classes) held at most. The whole fit's
#: peak is about this plus 60 MB in this process plus 250 MB for two workers (caltech101_subset, n_jobs=2).
#: Where it bites, accuracy drops: caltech101_subset (3 classes of ~2500 features, 51,000 positive windows,
#: 40,000 negatives per class uncapped) 0.997 uncapped, 0.987 at 576 MB, 0.992 at 800 MB.
SAMPLE_BYTES = 640 * MB
#: Share of a class's rows its positives may take at most (the negatives matter more: caltech101_subset at
#: 576 MB, a share of 0.5 gave accuracy 0.882, 0.25 gave 0.984, 0.15 gave 0.987).
POSITIVE_SHARE = 0.15
#: Bytes of one image's results (windows) at most.
IMAGE_BYTES = 32 * MB
#: Images in flight at once (sent to the processes, or done and not yet taken by this one) at most ...
WAVE_IMAGES = 32
#: ... and fewer when the largest result seen so far times their number would exceed these bytes (at least 2 per process).
WAVE_BYTES = 96 * MB
#: Bytes of the ridge's statistics (8 D**2 per class, counted as when solving) at most; classes over it use a sample
#: of their windows.
RIDGE_STATS_BYTES = 512 * MB
#: Bytes of regression windows kept for the classes whose statistics do not fit.
RIDGE_SAMPLE_BYTES = 128 * MB
#: Rows of regression windows are added to the statistics in batches of this many bytes.
RIDGE_BATCH_BYTES = 16 * MB
#: Bytes of Haar candidate windows (all classes) the Haar feature selection holds at most.
HAAR_SAMPLE_BYTES = 192 * MB
#: Seconds between two samples of the process tree's memory.
MEMORY_SAMPLE_SECONDS = 0.05


# ------------------------------------------------------------------ memory of the process tree
def _rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0  # gone, or a zombie


def _children(pid):
    out = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                out.extend(int(x) for x in fh.read().split())
        except (OSError, ValueError):
            pass
    return out


def rss_bytes(pid=None):
    """Resident bytes (``VmRSS``) of process ``pid`` alone (default: this one); None without /proc."""
    pid = os.getpid() if pid is None else pid
    if not os.path.exists(f"/proc/{pid}/status"):
        return None
    return _rss_kb(pid) * 1024


def tree_rss_bytes(pid=None):
    """Resident bytes (``VmRSS``) of process ``pid`` (default: this one) and all its descendants; None without /proc."""
    pid = os.getpid() if pid is None else pid
    if not os.path.exists(f"/proc/{pid}/status"):
        return None
    total, todo, seen = _rss_kb(pid), _children(pid), {pid}
    while todo:
        c = todo.pop()
        if c not in seen:
            seen.add(c)
            total += _rss_kb(c)
            todo.extend(_children(c))
    return total * 1024


def _large_blocks_to_the_os():
    """Have glibc's malloc give every block of 128 KiB or more back to the OS when freed (once per process).

    Its default raises the threshold for mmap'ed blocks each time one is freed (up to 32 MiB),
    after which freed arrays stay in the heap: the many short-lived arrays of a fit (an image's
    windows, the results in flight) then hold hundreds of MB (measured: the main process's peak
    784 -> 479 MB on a 40-image set). Fixing the threshold at its initial 128 KiB stops that.
    Nothing elsewhere than glibc.
    """
    global _MALLOC_SET
    if _MALLOC_SET:
        return
    _MALLOC_SET = True
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass


_MALLOC_SET = False


def _vm_hwm_bytes():
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None


class _MemoryMonitor:
    """The peak resident memory of this process and all its descendants (the worker processes) during a fit.

    A thread sums, every :data:`MEMORY_SAMPLE_SECONDS`, the ``VmRSS`` of ``/proc/<pid>/status``
    of this process and of every descendant (found through ``/proc/<pid>/task/*/children``);
    the largest sum is the peak, overall and per stage of the fit. Pages shared between
    processes (libraries, copy-on-write pages) count once per process, so the sum is an upper
    bound of what the tree holds; a peak shorter than the interval can be missed. Beside it,
    this process's ``VmHWM`` (its own exact peak, since the process started). Linux only: where
    there is no ``/proc``, the figures are None.
    """

    def __init__(self):
        self.stage, self.peak, self.by_stage = "setup", 0, {}
        self.seconds, self._since = {}, time.perf_counter()  # wall time per stage (a stage may come back: summed)
        self.available = tree_rss_bytes() is not None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = None
        if self.available:
            self._sample()
            self._thread = threading.Thread(target=self._run, name="classic-loc-fit-memory", daemon=True)
            self._thread.start()

    def _sample(self):
        v = tree_rss_bytes()
        if v is None:
            return
        with self._lock:
            self.peak = max(self.peak, v)
            self.by_stage[self.stage] = max(self.by_stage.get(self.stage, 0), v)

    def _run(self):
        while not self._stop.wait(MEMORY_SAMPLE_SECONDS):
            self._sample()

    def _clock(self):
        now = time.perf_counter()
        self.seconds[self.stage] = self.seconds.get(self.stage, 0.0) + now - self._since
        self._since = now

    def set_stage(self, name):
        self._clock()
        if not self.available:
            self.stage = name
        else:
            self._sample()  # the end of the stage before
            with self._lock:
                self.stage = name
            self._sample()

    def stop(self):
        self._clock()
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._sample()

    def report(self):
        """``(peak_memory_mb, details)`` for the fit report."""
        seconds = {k: round(v, 2) for k, v in self.seconds.items()}
        if not self.available:
            return None, {"measured": False, "seconds_by_stage": seconds}
        hwm = _vm_hwm_bytes()
        return round(self.peak / MB, 1), {
            "seconds_by_stage": seconds,
            "measured": "sum of VmRSS over this process and its descendants, sampled every "
                        f"{MEMORY_SAMPLE_SECONDS} s",
            "peak_by_stage_mb": {k: round(v / MB, 1) for k, v in self.by_stage.items()},
            "main_process_vm_hwm_mb": None if hwm is None else round(hwm / MB, 1)}


# ------------------------------------------------------------------ work over images, streamed from the processes
def _run_job(job):
    _large_blocks_to_the_os()
    task, dataset, originals = job
    return [task(dataset, j, i) for j, i in enumerate(originals)]


def _nbytes(obj):
    if isinstance(obj, np.ndarray):
        return obj.nbytes
    if isinstance(obj, (list, tuple)):
        return sum(_nbytes(x) for x in obj)
    return 0


class _Stream:
    """``task(dataset, i, i)`` for every image index in ``indices``, in order (iterate it); in processes when n_jobs != 1.

    Each job carries its image's record alone (``task(sub_dataset, 0, i)``). The results stream
    (:func:`~classic_loc.parallel.parallel_imap`): the processes go on with the next images while
    this one takes a result. At most :data:`WAVE_IMAGES` images are in flight or done and not yet
    taken, fewer when the largest result seen so far times their number exceeds :data:`WAVE_BYTES`
    (at least 2 per process); each result is dropped once consumed. ``largest`` is the largest
    result's bytes.
    """

    def __init__(self, n_jobs, task, dataset, indices, desc, verbose):
        self.n_jobs, self.task, self.dataset, self.desc, self.verbose = n_jobs, task, dataset, desc, verbose
        self.indices = [int(i) for i in indices]
        self.largest = 0

    def _ahead(self):
        return max(2 * self.n_jobs, min(WAVE_IMAGES, WAVE_BYTES // max(self.largest, 1)))

    def __iter__(self):
        indices, n_jobs = self.indices, self.n_jobs
        bar = progress(iter(()), self.desc, self.verbose, total=len(indices)) if self.verbose else None
        if n_jobs == 1 or len(indices) < 8:
            results = (self.task(self.dataset, i, i) for i in indices)
        else:
            jobs = ((self.task, self.dataset.subset([i]), [i]) for i in indices)
            results = (out[0] for out in parallel_imap(_run_job, jobs, n_jobs, self._ahead))
        try:
            for res in results:
                self.largest = max(self.largest, _nbytes(res))
                yield res
                del res
                if bar is not None:
                    bar.update(1)
        finally:
            results.close()
            if bar is not None:
                bar.close()


def _cap_rows(arrays, limit, rng):
    """``arrays`` (row arrays) cut to ``limit`` bytes together: each keeps the same share of its rows, a random subset.

    Returns (arrays, rows dropped). ``None`` for ``rng``: each keeps its first rows (the hardest, when sorted so).
    """
    total = sum(a.nbytes for a in arrays)
    if total <= limit:
        return arrays, 0
    frac = limit / total
    out, dropped = [], 0
    for a in arrays:
        n = int(len(a) * frac)
        if rng is None:
            keep = np.arange(n)
        else:
            keep = np.sort(rng.choice(len(a), n, replace=False))
        out.append(a[keep])
        dropped += len(a) - n
    return out, dropped


# ------------------------------------------------------------------ row caches in bytes
def _reservoir_slots(seen, m, cap, rng):
    """Algorithm R for ``m`` more rows after ``seen`` (all slots full): (rows kept, their slots); a slot drawn twice keeps the later row."""
    t = seen + np.arange(m)  # each row's 0-based place in the stream
    j = rng.integers(0, t + 1)
    sel = np.flatnonzero(j < cap)
    if not len(sel):
        return sel, sel
    slots = j[sel]
    last = len(slots) - 1 - np.unique(slots[::-1], return_index=True)[1]
    return sel[last], slots[last]


class _Reservoir:
    """At most ``cap`` float32 rows of ``dim`` values: all rows added while they fit, then a uniform random subset.

    The buffer is allocated once; its pages become resident only as rows are written.
    """

    def __init__(self, dim, cap, rng):
        self.cap, self.rng = max(int(cap), 1), rng
        self.rows = np.empty((self.cap, dim), np.float32)
        self.n = self.seen = 0

    def add(self, x):
        m = len(x)
        room = min(self.cap - self.n, m)
        if room > 0:
            self.rows[self.n:self.n + room] = x[:room]
            self.n += room
        if m > room:
            rows, slots = _reservoir_slots(self.seen + room, m - room, self.cap, self.rng)
            self.rows[slots] = x[room:][rows]
        self.seen += m

    @property
    def dropped(self):
        return self.seen - self.n

    def array(self):
        return self.rows[:self.n]


def _lowest(scores, seq, r):
    """Indices of the ``r`` lowest ``scores``, among equal scores the latest (largest ``seq``)."""
    if r >= len(scores):
        return np.arange(len(scores))
    kth = np.partition(scores, r - 1)[r - 1]
    below = np.flatnonzero(scores < kth)
    eq = np.flatnonzero(scores == kth)
    eq = eq[np.argsort(-seq[eq], kind="stable")[:r - len(below)]]
    return np.concatenate([below, eq])


class _NegativeCache:
    """A class's negatives, at most ``cap`` float32 rows, kept in place.

    Before any template (:meth:`add_unscored`, the first negatives) rows are kept while they
    fit, then a uniform random subset. Mined rows (:meth:`merge`) join as Felzenszwalb et al.'s
    cache: when full, the rows the template scores lowest go first (the ones beyond the margin,
    the easiest; among equal scores the later), which keeps the ``cap`` highest-scoring rows of
    the old and the new together, however the new ones are split into batches.
    """

    def __init__(self, dim, cap, rng=None, capacity=None):
        self.cap = max(int(cap), 1)
        self.rows = np.empty((max(self.cap, capacity or 0), dim), np.float32)  # resident only where written
        self.seq = np.empty(len(self.rows), np.int64)
        self.scores = None
        self.template = None
        self.n = self.seen = self.next = self.dropped = 0
        self.rng = rng

    def set_cap(self, cap):
        """Raise the cap (up to the capacity allocated); only before any row is dropped."""
        self.cap = max(self.cap, min(int(cap), len(self.rows)))

    def _append(self, x, seq):
        m = len(x)
        self.rows[self.n:self.n + m] = x
        self.seq[self.n:self.n + m] = seq
        self.n += m

    def add_unscored(self, x):
        m = len(x)
        seq = np.arange(self.next, self.next + m)
        self.next += m
        room = min(self.cap - self.n, m)
        if room > 0:
            self._append(x[:room], seq[:room])
        if m > room:
            rows, slots = _reservoir_slots(self.seen + room, m - room, self.cap, self.rng)
            self.rows[slots] = x[room:][rows]
            self.seq[slots] = seq[room:][rows]
            self.dropped += m - room
        self.seen += m

    def _score(self, x):
        return x @ self.template.weights + self.template.bias

    def merge(self, x, template):
        """Add mined negatives ``x`` under ``template`` (the one that mined them); returns the rows dropped."""
        m = len(x)
        if m == 0:
            return 0
        if template is not self.template:
            self.template, self.scores = template, None
        seq = np.arange(self.next, self.next + m)
        self.next += m
        n = self.n
        if n + m <= self.cap:
            if self.scores is not None:
                self.scores[n:n + m] = self._score(x)
            self._append(x, seq)
            return 0
        if self.scores is None:
            self.scores = np.empty(len(self.rows), np.float32)
            self.scores[:n] = self._score(self.rows[:n])
        s_new = self._score(x)
        r = n + m - self.cap
        drop = _lowest(np.concatenate([self.scores[:n], s_new]), np.concatenate([self.seq[:n], seq]), r)
        kept = np.ones(n + m, bool)
        kept[drop] = False
        enter = np.flatnonzero(kept[n:])
        slots = np.concatenate([np.flatnonzero(~kept[:n]), np.arange(n, self.cap)])[:len(enter)]
        self.rows[slots] = x[enter]
        self.seq[slots] = seq[enter]
        self.scores[slots] = s_new[enter]
        self.n = self.cap
        self.dropped += r
        return r

    def array(self):
        return self.rows[:self.n]


def _negative_cache(old, new, template, cap):
    """Old negatives plus newly mined ones, at most ``cap``: when full, the easiest go first.

    As Felzenszwalb et al.'s cache: negatives the current template already puts
    beyond the margin (score < -1) are dropped before any hard one; if still over
    the cap, the highest-scoring (hardest) are kept. Returns (negatives, number dropped).
    (The fit keeps its cache in place, :class:`_NegativeCache`; this is the same rule on two arrays.)
    """
    cache = _NegativeCache(old.shape[1], cap)
    dropped = cache.merge(old, template) + cache.merge(new, template)
    return cache.array().copy(), dropped


# ------------------------------------------------------------------ the SVMs, on the cached rows in place
def _one_blas_thread():
    """A context in which BLAS uses one thread: the SVM solver runs its products in threads of its own, and
    its sums then do not depend on the number of processes asked for."""
    try:
        from threadpoolctl import threadpool_limits

        return threadpool_limits(limits=1, user_api="blas")
    except Exception:  # no threadpoolctl: BLAS as configured
        import contextlib

        return contextlib.nullcontext()


def _fit_svm(pos, neg, C, start=None, n_threads=1):
    """The class's linear SVM (weights (D,) float32, bias) on its cached rows, read in place.

    ``LinearSVC(C, loss="squared_hinge", class_weight={1: max(1, n_neg / n_pos / 4), 0: 1})``'s
    problem, solved by :func:`~classic_loc.training.svm.fit_linear_svm` (the same optimum, without
    liblinear's float64 and sparse copies of the rows), from ``start`` = (weights, bias) if given,
    with its products over the rows in ``n_threads`` threads.
    """
    from .svm import fit_linear_svm

    cw = max(1.0, len(neg) / max(len(pos), 1) / 4)
    w, b, _ = fit_linear_svm([(pos, 1, C * cw), (neg, -1, C)],
                             w0=None if start is None else np.r_[np.asarray(start[0], np.float64), start[1]],
                             n_threads=n_threads)
    return w, b


def _fit_svms(pos, neg, C, n_jobs, start=None):
    """Every class's SVM (:func:`_fit_svm`), one class after the other, each on ``n_jobs`` threads.

    The rows are shared, not copied. Splitting each class's products over the threads keeps every
    core busy whatever the number of classes (one class per thread left cores idle with fewer
    classes than cores, and at the last class of an odd number).
    """
    with _one_blas_thread():
        return [_fit_svm(pos[k], neg[k], C, None if start is None else start[k], n_threads=n_jobs)
                for k in range(len(pos))]


# ------------------------------------------------------------------ the ridge, from streamed statistics
class _RidgeStats:
    """Sufficient statistics of sklearn's ``Ridge(alpha)`` (with intercept) of targets (n, T) on float32 rows (n, D).

    Rows are added in batches of :data:`RIDGE_BATCH_BYTES`: each batch, less a fixed shift
    (the first batch's mean, against cancellation), adds the upper triangle of its float32
    product ``X.T @ X`` to a float64 sum (the product is symmetric); the rest is summed in
    float64. :meth:`solve` gives what ``Ridge`` fitted on all the rows gives (up to float
    rounding). Holds about ``5 D**2`` bytes (the sums and the triangle's mask), ``8 D**2`` while solving.
    """

    def __init__(self, dim, n_targets=4):
        self.dim, self.n = dim, 0
        self.shift = None
        self.upper = None  # (D, D) bool: the upper triangle, diagonal included
        self.xx = None  # its float64 sums, (D (D + 1) / 2,) in row order
        self.x = np.zeros(dim)
        self.y = np.zeros(n_targets)
        self.xy = np.zeros((dim, n_targets))
        self._bx, self._by, self._rows = [], [], 0
        self.batch_rows = max(1, RIDGE_BATCH_BYTES // (4 * dim))

    def add(self, X, Y):
        if len(X):
            self._bx.append(X)
            self._by.append(Y)
            self._rows += len(X)
            if self._rows >= self.batch_rows:
                self._flush()

    def _flush(self):
        if not self._rows:
            return
        X = np.concatenate(self._bx).astype(np.float32, copy=False)
        Y = np.concatenate(self._by).astype(np.float64, copy=False)
        self._bx, self._by, self._rows = [], [], 0
        if self.shift is None:
            self.shift = X.mean(axis=0, dtype=np.float64).astype(np.float32)
            self.upper = np.triu(np.ones((self.dim, self.dim), bool))
            self.xx = np.zeros(int(self.upper.sum()))
        X -= self.shift
        self.xx += (X.T @ X)[self.upper]
        self.x += X.sum(axis=0, dtype=np.float64)
        for s in range(0, len(X), 256):  # in float64, a few rows at a time (not a float64 copy of the batch)
            self.xy += X[s:s + 256].T.astype(np.float64) @ Y[s:s + 256]
        self.y += Y.sum(axis=0)
        self.n += len(X)

    def solve(self, alpha):
        """(coef (D, T), intercept (T,)) of the ridge; frees the statistics."""
        import scipy.linalg

        self._flush()
        n, d = self.n, self.dim
        mx, my = self.x / n, self.y / n
        A = np.zeros((d, d))
        A[self.upper] = self.xx
        self.xx = None
        if alpha <= 0:  # lstsq reads both triangles
            A += np.triu(A, 1).T
        for r in range(0, d, 256):  # less the means' outer product, a few rows at a time
            A[r:r + 256] -= np.outer(n * mx[r:r + 256], mx)
        A.flat[::d + 1] += alpha
        B = self.xy - n * np.outer(mx, my)
        if alpha > 0:  # Cholesky, which reads the upper triangle
            coef = scipy.linalg.solve(A, B, assume_a="pos", lower=False, overwrite_a=True, check_finite=False)
        else:
            coef = scipy.linalg.lstsq(A, B, overwrite_a=True, check_finite=False)[0]
        return coef, my - (self.shift.astype(np.float64) + mx) @ coef


class _RidgeSample:
    """Regression windows of a class whose statistics would not fit: a uniform random subset of :attr:`cap` rows."""

    def __init__(self, dim, cap, rng):
        self.res = _Reservoir(dim + 4, cap, rng)  # the features and the 4 targets, side by side

    def add(self, X, Y):
        if len(X):
            self.res.add(np.concatenate([X, Y.astype(np.float32)], axis=1))

    def solve(self, alpha):
        from sklearn.linear_model import Ridge

        data = self.res.array()
        ridge = Ridge(alpha=alpha, solver="lsqr").fit(data[:, :-4], data[:, -4:].astype(np.float64))
        return ridge.coef_.T, ridge.intercept_


# ------------------------------------------------------------------ per-image work (picklable for the processes)
def _usable(rec):
    """Boxes that can be positives: not VOC difficult, not COCO crowd."""
    return ~(rec.difficult | rec.crowd)


class _Task:
    """Per-image work: ``task(dataset, j, i)`` works on record ``j`` of ``dataset``, image ``i`` of the training set."""

    def __init__(self, p, templates):
        self.p, self.templates = p, templates


class _Initial(_Task):
    """Positives and first negatives of an image, and with ``regression`` its box-regression windows.

    Returns ``(pos, neg, reg, rows dropped)`` (lists per class; ``reg`` of (features, deltas) pairs, empty
    without ``regression``), at most :data:`IMAGE_BYTES` together (a random subset of each part when over).
    """

    def __init__(self, p, templates, regression=False):
        super().__init__(p, templates)
        self.regression = regression

    def __call__(self, dataset, j, i):
        rec, p = dataset[j], self.p
        image = training_image(dataset, j, p["fp"])
        n_k = len(self.templates)
        positives = [rec.boxes[(rec.labels == k) & _usable(rec)] for k in range(n_k)]  # no difficult or crowd
        avoid = [rec.boxes[rec.labels == k] for k in range(n_k)]  # ... which are no negatives either
        pos, neg, reg = image_samples(image, positives, avoid, self.templates, p["fp"], p,
                                      np.random.default_rng([p["seed"], i]), regression=self.regression)
        # over IMAGE_BYTES together, the samples and the regression windows each keep the same share of their rows
        sample_bytes = sum(x.nbytes for x in pos + neg)
        reg_bytes = sum(x.nbytes + y.nbytes for x, y in reg) if self.regression else 0
        frac = min(1.0, IMAGE_BYTES / max(sample_bytes + reg_bytes, 1))
        parts, dropped = _cap_rows(pos + neg, frac * sample_bytes, np.random.default_rng([p["seed"], i, 1]))
        if not self.regression:
            return parts[:n_k], parts[n_k:], [], dropped
        if frac < 1.0:
            cap_rng = np.random.default_rng([p["seed"], i, 1])
            keep = [np.sort(cap_rng.choice(len(x), int(len(x) * frac), replace=False)) for x, _ in reg]
            dropped += sum(len(x) - len(kk) for (x, _), kk in zip(reg, keep))
            reg = [(x[kk], y[kk]) for (x, y), kk in zip(reg, keep)]
        return parts[:n_k], parts[n_k:], reg, dropped


class _Mine(_Task):
    """The hardest negatives of an image under the current templates: per class at most ``max_negatives_per_image``."""

    def __call__(self, dataset, j, i):
        rec, p = dataset[j], self.p
        floors = [-1.0] * len(self.templates)  # inside the SVM margin
        cand = scan_image(training_image(dataset, j, p["fp"]), self.templates, p["fp"], p["scale_step"], p["upsample"],
                          floors, max_per_level=50, keep_levels=True)
        out = []
        for k, t in enumerate(self.templates):
            sel = np.flatnonzero(cand.labels == k)
            gt = rec.boxes[rec.labels == k]
            if len(sel) and len(gt):
                sel = sel[box_iou(cand.boxes[sel], gt).max(axis=1) < p["neg_iou"]]
            sel = sel[np.argsort(-cand.scores[sel], kind="stable")[:p["max_negatives_per_image"]]]
            out.append(candidate_features(cand, sel, t, p["fp"]))  # only the windows kept: not every candidate's
        del cand
        out, dropped = _cap_rows(out, IMAGE_BYTES, None)  # sorted hardest first: the hardest stay
        return out, dropped


class _Calib(_Task):
    def __call__(self, dataset, j, i):
        rec, p = dataset[j], self.p
        gray = training_image(dataset, j, p["fp"])
        cand = scan_image(gray, self.templates, p["fp"], p["scale_step"], p["upsample"],
                          [-2.0] * len(self.templates), max_per_level=50)
        rows = []
        for k in range(len(self.templates)):
            sel = cand.labels == k
            gt = rec.boxes[rec.labels == k]
            pos = box_iou(cand.boxes[sel], gt).max(axis=1) >= 0.5 if len(gt) else np.zeros(int(sel.sum()), bool)
            rows.append((cand.scores[sel], pos))
        return rows


class _Detect(_Task):
    def __call__(self, dataset, j, i):
        p = self.p
        gray = training_image(dataset, j, p["fp"])
        return detect_image(gray, self.templates, p["fp"], p["scale_step"], p["upsample"], p["min_score"],
                            p["nms_iou"], nms_cover=p["nms_cover"])


def _select_haar(dataset, fit_idx, geometry, p, rng, verbose):
    """``geometry`` with each class's selected Haar features (see :mod:`.haar_select`).

    The candidates are computed, Haar alone, on the positives and about 4000
    random negatives per class of up to 150 training images (at most
    :data:`HAAR_SAMPLE_BYTES` of them: a random subset when over).
    """
    fp = p["fp"]
    pools = [candidate_pool(fp.haar_window(t.window_cells), p["haar_candidates"], rng) for t in geometry]
    images = np.sort(rng.choice(fit_idx, min(len(fit_idx), 150), replace=False))
    q = dict(p, fp=dataclasses.replace(fp, variant=None), flip=False,
             random_negatives_per_image=int(math.ceil(4000 / max(len(images), 1))))
    cand = [dataclasses.replace(t, haar=pool) for t, pool in zip(geometry, pools)]
    res_rng = np.random.default_rng([p["seed"], 2])
    per_class = HAAR_SAMPLE_BYTES // max(len(geometry), 1) // 2
    pos = [_Reservoir(2 * len(pool), per_class // (8 * len(pool)), res_rng) for pool in pools]
    neg = [_Reservoir(2 * len(pool), per_class // (8 * len(pool)), res_rng) for pool in pools]
    for ps, ns, _, _ in _Stream(p["n_jobs"], _Initial(q, cand), dataset, images, "Haar feature selection", verbose):
        for k in range(len(geometry)):
            pos[k].add(ps[k])
            neg[k].add(ns[k])
    out = []
    for k, t in enumerate(geometry):
        pk, nk = pos[k].array(), neg[k].array()
        keep = l1_select(pk, nk, p["haar_features"], p["seed"]) if len(pk) and len(nk) else np.arange(
            min(len(pools[k]), p["haar_features"]))
        out.append(dataclasses.replace(t, haar=pools[k][keep]))
    del pos, neg
    log(verbose, "  Haar features: " + ", ".join(f"{c} {len(t.haar)} of {len(pool)} candidates"
                                                 for c, t, pool in zip(dataset.classes, out, pools)))
    return out


def _first_stage(t, pos, fp, floor, recall=0.99):
    """Give ``t`` the first stage of the optional cascade, passing ``recall`` of its positive windows ``pos``.

    Only the positives the full template scores at least ``floor`` (the raw score of
    ``min_score``) count: the others would not be reported anyway (at least 20 are kept).
    A HOG + Haar template's first stage is its HOG part (the Haar part, the costly
    one, is then computed only for the windows that pass); a Haar template's is its
    strongest tenth of features (weight times spread over the positives, at least 10).
    HOG-only templates get none: there the features, not the scoring, take the time.
    """
    if not fp.haar or len(pos) == 0:
        return t
    final = pos @ t.weights + t.bias
    if (final >= floor).sum() >= 20:
        pos = pos[final >= floor]
    d_hog = fp.hog_dim(t.window_cells)
    if d_hog:
        s1 = pos[:, :d_hog] @ t.weights[:d_hog] + t.bias
        sub = None
    else:
        n, w = len(t.haar), t.weights
        spread = pos.std(axis=0)
        strength = np.maximum(np.abs(w[:n]) * spread[:n], np.abs(w[n:]) * spread[n:])
        sub = np.sort(np.argsort(-strength, kind="stable")[:max(10, n // 10)])
        cols = np.r_[sub, n + sub]
        s1 = pos[:, cols] @ w[cols] + t.bias
        sub = sub.astype(np.int32)
    return dataclasses.replace(t, stage1_threshold=float(np.quantile(s1, 1 - recall)), stage1_haar=sub)


def _max_cover(dataset):
    """The largest share of a training box's area inside another box of its class (0 without pairs)."""
    best = 0.0
    for r in dataset:
        for k in np.unique(r.labels):
            b = r.boxes[(r.labels == k) & _usable(r)]
            if len(b) < 2:
                continue
            inter = _intersection(b, b)
            np.fill_diagonal(inter, 0)
            best = max(best, float((inter / box_area(b)[:, None]).max()))
    return best


def _platt(scores, labels):
    """Calibration (a, b) for one class from held-out window scores; a > 0."""
    if labels.all() or not labels.any():
        return (1.0, 0.0)
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=1e4, class_weight=None)
    lr.fit(scores[:, None], labels.astype(int))
    a, b = float(lr.coef_[0, 0]), float(lr.intercept_[0])
    return (a, b) if a > 1e-6 else (1.0, 0.0)


SIZE_CALIBRATION_MIN = 20  # hits and misses each, at least, for a size calibration


def _size_calibration(dets, records):
    """``(coef, log)``: the size calibration ``(alpha, beta, gamma)`` of the held-out detections ``dets``, or None.

    A logistic regression of "hit" (IoU >= 0.5 with a box of the detection's class, as AP50
    counts it) on :func:`~classic_loc.scan.size_features` (the score's logit and the log of the
    window's side). None when there are fewer than :data:`SIZE_CALIBRATION_MIN` hits or misses,
    or when the fit would not keep the scores' order within one size (alpha <= 0).
    """
    x, y = [], []
    for (boxes, labels, scores, windows), rec in zip(dets, records):
        hit = np.zeros(len(scores), bool)
        for k in np.unique(labels):
            gt = rec.boxes[rec.labels == k]
            if len(gt):
                hit[labels == k] = box_iou(boxes[labels == k], gt).max(axis=1) >= 0.5
        x.append(size_features(scores, windows))
        y.append(hit)
    x, y = (np.concatenate(x), np.concatenate(y)) if x else (np.zeros((0, 2)), np.zeros(0, bool))
    log = {"detections": int(len(y)), "hits": int(y.sum()), "coef": None}
    if y.sum() < SIZE_CALIBRATION_MIN or (~y).sum() < SIZE_CALIBRATION_MIN:
        return None, log
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=1e4).fit(x, y.astype(int))
    coef = (float(lr.coef_[0, 0]), float(lr.coef_[0, 1]), float(lr.intercept_[0]))
    if coef[0] <= 1e-6:
        return None, log
    log["coef"] = list(coef)
    return coef, log


#: The ratios tried for the main object's choice (:func:`~classic_loc.scan.main_first`); 1: the top detection.
MAIN_RATIOS = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5)


def _main_ratio(dets, records):
    """``(ratio, log)``: the :func:`~classic_loc.scan.main_first` ratio of the held-out detections ``dets``.

    The ratio of :data:`MAIN_RATIOS` whose first detection is the main object's (the largest box;
    its class and IoU >= 0.5, as ``loc_accuracy`` counts it) in the most held-out images; ties go
    to the higher mean IoU with the main object, then to the higher ratio (the least change).
    """
    rows = []
    for ratio in MAIN_RATIOS:
        hits, ious = 0, []
        for (boxes, labels, scores, _), rec in zip(dets, records):
            if rec.n_objects == 0:
                continue
            main = int(np.argmax(box_area(rec.boxes)))
            if len(scores) == 0:
                ious.append(0.0)
                continue
            c = main_first(boxes, scores, ratio)[0]
            iou = float(box_iou(boxes[c:c + 1], rec.boxes[main:main + 1])[0, 0])
            ious.append(iou)
            hits += int(iou >= 0.5 and labels[c] == rec.labels[main])
        rows.append((hits, float(np.mean(ious)) if ious else 0.0, ratio))
    best = max(rows, key=lambda r: (r[0], round(r[1], 9), r[2]))
    return best[2], {"ratio": best[2], "images": len([r for r in records if r.n_objects]),
                     "tried": [{"ratio": r, "main_hits": h, "mean_iou": round(m, 4)} for h, m, r in rows]}


def _presence_threshold(top_scores, has_object, floor):
    """The threshold on the top detection's probability that maximises presence accuracy (lowest on ties)."""
    if has_object.all() or not len(top_scores):
        return float(floor)
    cands = np.unique(np.r_[floor, top_scores])  # ascending
    acc = np.array([np.mean((top_scores >= t) == has_object) for t in cands])
    best = int(np.flatnonzero(acc == acc.max())[0])
    # every threshold in (cands[best - 1], cands[best]] is as good: take the middle for a margin
    return float(cands[best] if best == 0 else (cands[best - 1] + cands[best]) / 2)


def train_templates(dataset, p, verbose=False):
    """Train one template per class on ``dataset``; returns (templates, presence_threshold, nms_cover,
    size_calibration, main_ratio, report) (``size_calibration``: see :func:`_size_calibration`;
    ``main_ratio``: :func:`_main_ratio`, None with ``main_first`` off).

    ``p`` holds the Localizer's settings (see :class:`classic_loc.Localizer`). The report's
    ``peak_memory_mb`` is the peak resident memory of the whole process tree during the fit
    (this process and its worker processes: the largest sum of their ``VmRSS``, sampled every
    :data:`MEMORY_SAMPLE_SECONDS` by a thread, see :class:`_MemoryMonitor`; None without
    ``/proc``); ``memory`` has it per stage, this process's ``VmHWM``, and what the memory
    caps of this module dropped.
    """
    _large_blocks_to_the_os()
    monitor = _MemoryMonitor()
    try:
        templates, presence, cover, rescore, main_ratio, report = _train(dataset, p, verbose, monitor)
    finally:
        monitor.stop()
    report["peak_memory_mb"], report["memory"]["process_tree"] = monitor.report()
    return templates, presence, cover, rescore, main_ratio, report


def _train(dataset, p, verbose, monitor):
    t_start = time.perf_counter()
    rng = np.random.default_rng(p["seed"])
    fp = p["fp"]
    n_k = len(dataset.classes)
    all_boxes = [np.concatenate([r.boxes[(r.labels == k) & _usable(r)] for r in dataset] + [np.zeros((0, 4))])
                 for k in range(n_k)]
    for k, b in enumerate(all_boxes):
        if len(b) == 0:
            raise DataError(dataset.root or "the training data", f"class {dataset.classes[k]!r}",
                            "has no training box (difficult and crowd boxes do not count)",
                            "remove it from the class list, or add boxes of it", kind="bad dataset")
    min_cells = fp.grid_block + 1
    windows = [tuple(p["window_cells"]) if p["window_cells"] else choose_window(b, p["window_area"], min_cells, fp.cell_size, p["context"], p["upsample"])
               for b in all_boxes]
    ranges = []
    for k, wc in enumerate(windows):
        px = ((wc[0] - 2 * p["context"]) * fp.cell_size, (wc[1] - 2 * p["context"]) * fp.cell_size)
        sizes = np.maximum(all_boxes[k][:, 2] - all_boxes[k][:, 0], all_boxes[k][:, 3] - all_boxes[k][:, 1])
        lo_size = p["min_size"] or float(sizes.min()) / 1.25
        hi_size = p["max_size"] or float(sizes.max()) * 1.25
        ranges.append(scale_range(px, lo_size, hi_size))
        if not reachable_scales(ranges[-1], p["scale_step"], p["upsample"]):
            lo, hi = ranges[-1]
            raise DataError("Localizer", f"class {dataset.classes[k]!r}",
                            f"no pyramid level (upsample={p['upsample']}, scale_step={p['scale_step']}) is in the "
                            f"scales [{lo:.3g}, {hi:.3g}] at which its {px[1]}x{px[0]}-pixel window frames objects "
                            f"of {lo_size:.0f}-{hi_size:.0f} pixels: it could never be detected",
                            "use a smaller window_cells or window_area, a larger upsample, or a wider "
                            "min_size..max_size", kind="bad parameter")
    report = {"classes": list(dataset.classes), "window_cells": [list(w) for w in windows],
              "window_pixels": [[w[0] * fp.cell_size, w[1] * fp.cell_size] for w in windows]}

    # boxes no window of the search grid can reach with IoU >= pos_iou
    unreachable = {"count": 0, "iou_threshold": p["pos_iou"], "per_class": {}}
    for k, name in enumerate(dataset.classes):
        rows = []
        for r in dataset:
            b = r.boxes[(r.labels == k) & _usable(r)]
            if len(b):
                best = reachability((r.height, r.width), b, windows[k], fp, p["scale_step"], p["upsample"], ranges[k],
                                    p["context"])
                for box, iou in zip(b, best):
                    if iou < p["pos_iou"]:
                        w, h = box[2] - box[0], box[3] - box[1]
                        rows.append({"image": r.image_id, "width": round(float(w), 1), "height": round(float(h), 1),
                                     "aspect": round(float(w / h), 3), "best_iou": round(float(iou), 3)})
        unreachable["per_class"][name] = {"count": len(rows), "boxes": rows[:50]}
        unreachable["count"] += len(rows)
        if rows:
            ws = np.array([x["width"] for x in rows])
            log(verbose, f"  {name}: {len(rows)} of {len(all_boxes[k])} training boxes cannot be reached with IoU >= "
                          f"{p['pos_iou']} (sizes {ws.min():.0f}-{ws.max():.0f} px wide, best IoU "
                          f"{min(x['best_iou'] for x in rows):.2f}-{max(x['best_iou'] for x in rows):.2f}; "
                          f"window {windows[k][1] * fp.cell_size}x{windows[k][0] * fp.cell_size} px)")
    report["unreachable_boxes"] = unreachable

    # suppression of boxes covered by a better one: no pair of training boxes may be suppressed so
    if p["nms_cover"] == "auto":
        p = dict(p, nms_cover=min(1.0, max(0.7, _max_cover(dataset) + 0.1)))
    report["nms_cover"] = p["nms_cover"]

    # images for fitting and held-out images for calibration and the presence threshold
    order = rng.permutation(len(dataset))
    n_cal = int(round(p["calibration_fraction"] * len(dataset))) if len(dataset) >= 10 else 0
    cal_idx, fit_idx = np.sort(order[:n_cal]), np.sort(order[n_cal:])

    # 1. positives, first negatives and the box-regression windows, in one pass over the images
    per_image = lambda total: max(1, int(math.ceil(total / max(len(fit_idx), 1))))  # noqa: E731
    mined = p["max_negatives_per_image"]
    p = dict(p, random_negatives_per_image=per_image(p["n_random_negatives"]),
             max_negatives_per_image=max(20, per_image(10000)) if mined == "auto" else int(mined))
    geometry = [Template(wc, None, scale_range=r, context=p["context"]) for wc, r in zip(windows, ranges)]
    if fp.haar:
        monitor.set_stage("Haar feature selection")
        geometry = _select_haar(dataset, fit_idx, geometry, p, rng, verbose)
        report["haar_features"] = {c: len(t.haar) for c, t in zip(dataset.classes, geometry)}
    dims = [template_dim(fp, t) for t in geometry]
    cap_mb = p.get("max_sample_mb")
    rows = (SAMPLE_BYTES if cap_mb is None else cap_mb * MB) // (4 * sum(dims))  # per class: equal rows
    pos_cap = max(1, int(rows * POSITIVE_SHARE))
    cache_rng = np.random.default_rng([p["seed"], 3])
    pos_res = [_Reservoir(d, pos_cap, cache_rng) for d in dims]
    neg = [_NegativeCache(d, min(p["max_negatives"], max(1, rows - pos_cap)), cache_rng,
                          capacity=min(p["max_negatives"], max(1, rows))) for d in dims]
    memory = {"sample_bytes": SAMPLE_BYTES, "image_bytes": IMAGE_BYTES, "wave_images": WAVE_IMAGES,
              "wave_bytes": WAVE_BYTES,
              "positive_cap_rows": pos_cap, "image_cap_dropped_rows": 0}
    report["memory"] = memory
    streams = []

    def stream(*args):
        streams.append(_Stream(p["n_jobs"], *args, verbose))
        return streams[-1]

    # the ridge's statistics (or samples) of the box-regression windows, gathered in the same pass
    budget, fits = RIDGE_STATS_BYTES, []
    for d in dims:
        fits.append(8 * d * d <= budget)
        budget -= 8 * d * d if fits[-1] else 0
    n_sampled = max(1, n_k - sum(fits))
    ridge_rng = np.random.default_rng([p["seed"], 4])
    stats = [_RidgeStats(d) if ok else _RidgeSample(d, RIDGE_SAMPLE_BYTES // n_sampled // (4 * (d + 4)), ridge_rng)
             for d, ok in zip(dims, fits)]

    monitor.set_stage("positives and negatives")
    for ps, ns, reg, dropped in stream(_Initial(p, geometry, regression=True), dataset, fit_idx,
                                       "positives and negatives"):
        for k in range(n_k):
            pos_res[k].add(ps[k])
            neg[k].add_unscored(ns[k])
            stats[k].add(*reg[k])
        memory["image_cap_dropped_rows"] += dropped
        del ps, ns, reg
    # 3. ridge box regression per class, solved now (it does not depend on the SVMs) to free its statistics
    monitor.set_stage("box regression")
    ridge, how = [None] * n_k, {}
    for k in range(n_k):
        st = stats[k]
        n_rows = st.n + st._rows if fits[k] else st.res.seen
        how[dataset.classes[k]] = {"windows": int(n_rows), "solved": "statistics" if fits[k] else
                                   f"a random {st.res.n} of them"}
        if n_rows:
            ridge[k] = st.solve(p["ridge_alpha"])
        stats[k] = None
    memory["ridge"] = how
    del stats
    pos = [r.array() for r in pos_res]
    memory["positives_found"] = dict(zip(dataset.classes, (r.seen for r in pos_res)))
    memory["positives_dropped"] = dict(zip(dataset.classes, (r.dropped for r in pos_res)))
    for k, name in enumerate(dataset.classes):
        if len(pos[k]) == 0:
            raise DataError("Localizer", f"class {name!r}", f"no scan window reaches one of its boxes with IoU >= "
                            f"{p['pos_iou']}", "lower pos_iou, set window_cells or upsample (see the unreachable "
                            "boxes in fit_report_)", kind="bad parameter")
        neg[k].set_cap(min(p["max_negatives"], rows - len(pos[k])))  # what the positives leave of the share
    memory["negative_cap_rows"] = dict(zip(dataset.classes, (c.cap for c in neg)))
    log(verbose, "  positives " + ", ".join(f"{c} {len(x)}" for c, x in zip(dataset.classes, pos))
         + "; negatives " + ", ".join(f"{c.n}" for c in neg)
         + (f" (kept at most {pos_cap} positives per class of "
            + ", ".join(f"{r.seen}" for r in pos_res) + ")" if any(r.dropped for r in pos_res) else ""))

    def fit_all(pos, neg, prev=None):
        monitor.set_stage("SVM")
        out = _fit_svms(pos, [c.array() for c in neg], p["C"], p["n_jobs"],
                        None if prev is None else [(t.weights, t.bias) for t in prev])
        return [dataclasses.replace(geometry[k], weights=w, bias=b) for k, (w, b) in enumerate(out)]

    templates = fit_all(pos, neg)
    rounds = []
    for rnd in range(p["mining_rounds"]):
        monitor.set_stage(f"mining round {rnd + 1}")
        added, dropped = [0] * n_k, [0] * n_k
        for ms, cut in stream(_Mine(p, templates), dataset, fit_idx, f"mining round {rnd + 1}"):
            for k, t in enumerate(templates):
                dropped[k] += neg[k].merge(ms[k], t)
                added[k] += len(ms[k])
            memory["image_cap_dropped_rows"] += cut
            del ms
        rounds.append({"round": rnd + 1, "added": dict(zip(dataset.classes, added)),
                       "dropped_easy": dict(zip(dataset.classes, dropped))})
        log(verbose, f"  mining round {rnd + 1}: added " + ", ".join(f"{c} {a}" for c, a in zip(dataset.classes, added))
             + (f"; dropped {sum(dropped)} easy negatives (cache full)" if sum(dropped) else ""))
        templates = fit_all(pos, neg, templates)
        if sum(added) == 0:
            break
    report["mining_rounds"] = rounds
    report["n_positives"] = dict(zip(dataset.classes, map(len, pos)))
    report["n_negatives"] = dict(zip(dataset.classes, (c.n for c in neg)))
    del neg

    # 2. calibration on held-out images (or the fit images when there are too few)
    monitor.set_stage("calibration")
    cal_src = cal_idx if len(cal_idx) else fit_idx
    cal = list(stream(_Calib(p, templates), dataset, cal_src, "calibration"))
    for k, t in enumerate(templates):
        s = np.concatenate([c[k][0] for c in cal])
        y = np.concatenate([c[k][1] for c in cal])
        t.calibration = _platt(s, y)
    del cal
    report["calibration"] = {c: list(t.calibration) for c, t in zip(dataset.classes, templates)}
    templates = [_first_stage(t, pos[k], fp, t.raw_floor(p["min_score"])) for k, t in enumerate(templates)]
    del pos, pos_res

    # 3. the ridges, solved after the first pass
    for t, fitted in zip(templates, ridge):
        if fitted is not None:
            t.ridge, t.ridge_bias = fitted[0].astype(np.float32), np.asarray(fitted[1], np.float64)

    # 4. size calibration, presence threshold and the effect of refinement, on the held-out images
    monitor.set_stage("presence threshold")
    dets = list(stream(_Detect(p, templates), dataset, cal_src, "presence threshold"))
    rescore, report["size_calibration"] = None, None
    if p["size_calibration"]:
        rescore, report["size_calibration"] = _size_calibration(dets, [dataset[i] for i in cal_src])
    if rescore is not None:
        for j, (boxes, labels, scores, windows) in enumerate(dets):
            order, new = recalibrate(scores, windows, rescore)
            dets[j] = (boxes[order], labels[order], new, windows[order])
    main_ratio, report["main_first"] = None, None
    if p["main_first"]:
        main_ratio, report["main_first"] = _main_ratio(dets, [dataset[i] for i in cal_src])
        for j, (boxes, labels, scores, windows) in enumerate(dets):
            order = main_first(boxes, scores, main_ratio)
            dets[j] = (boxes[order], labels[order], scores, windows[order])
    top = np.array([d[2][0] if len(d[2]) else 0.0 for d in dets])
    has = np.array([dataset[i].n_objects > 0 for i in cal_src])
    presence = _presence_threshold(top, has, p["min_score"])
    before, after = [], []
    for i, (boxes, labels, scores, windows_kept) in zip(cal_src, dets):
        rec = dataset[i]
        if rec.n_objects == 0 or len(scores) == 0:
            continue
        main = int(np.argmax(box_area(rec.boxes)))
        before.append(box_iou(windows_kept[:1], rec.boxes[main:main + 1])[0, 0])
        after.append(box_iou(boxes[:1], rec.boxes[main:main + 1])[0, 0])
    memory["largest_image_result_mb"] = round(max(s.largest for s in streams) / MB, 2)
    report["presence_threshold"] = presence
    report["heldout_images"] = int(len(cal_idx))
    report["heldout_mean_iou_before_refinement"] = float(np.mean(before)) if before else None
    report["heldout_mean_iou_after_refinement"] = float(np.mean(after)) if after else None
    report["train_seconds"] = time.perf_counter() - t_start
    return templates, presence, p["nms_cover"], rescore, main_ratio, report
