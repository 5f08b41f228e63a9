"""Where work is spread over processes: joblib's loky workers on one machine.

Only this module knows joblib (training imports it through here; the prediction
path never does). Worker processes end with the process that started them,
however it ends, even by SIGKILL (:func:`workers_die_with_parent`), so a killed
``fit`` leaves no process behind.
"""

import collections
import os
import re
import sys
import threading
import time
from contextlib import contextmanager

from ._fileio import remove_stale

__all__ = ["available_cores", "resolve_n_jobs", "parallel_map", "parallel_imap", "workers_die_with_parent",
           "remove_stale_worker_files"]

SHARED_MEMORY = "/dev/shm"
# what loky and joblib leave in shared memory when every process of a run is killed at once (an OOM kill, `docker
# kill`): loky's named semaphores and joblib's memory-mapping folders, each named after the process that made it
_WORKER_FILES = re.compile(r"^(?:sem\.loky-|joblib_memmapping_folder_)(?P<pid>\d+)[-_][\w-]+$")
# /dev/shm may be shared with processes of another pid namespace (containers with the host's IPC), whose live
# entries look like a dead process's here: only entries a day old are taken for leftovers
_WORKER_FILES_MIN_AGE = 24 * 3600
_swept = []  # one sweep per process
_sweep_lock = threading.Lock()


def available_cores():
    """The cores this process may run on (its CPU affinity, as ``taskset`` or a container sets it), at least 1.

    ``os.cpu_count()`` counts the machine's cores even when the process may use only some of them.
    """
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no affinity on this platform (macOS, Windows)
        return max(1, os.cpu_count() or 1)


def resolve_n_jobs(n_jobs):
    """A number of workers: ``n_jobs`` itself, or :func:`available_cores` for -1 (and for None, 1)."""
    if n_jobs is None:
        return 1
    return available_cores() if n_jobs == -1 else max(1, int(n_jobs))


def parallel_map(func, items, n_jobs):
    """``[func(item) for item in items]``, in order; in ``n_jobs`` worker processes when ``n_jobs`` != 1.

    ``func`` and the items must pickle (module-level functions, plain data). The
    workers end with this process (:func:`workers_die_with_parent`).
    """
    if n_jobs == 1:
        return [func(item) for item in items]
    from joblib import Parallel, delayed

    with _sweep_lock:
        if not _swept:
            _swept.append(remove_stale_worker_files())
    with workers_die_with_parent():
        return Parallel(n_jobs=n_jobs)(delayed(func)(item) for item in items)


def parallel_imap(func, items, n_jobs, ahead=None):
    """Yield ``func(item)`` for each of ``items``, in order, computed in ``n_jobs`` worker processes (n_jobs != 1).

    Unlike :func:`parallel_map`, the results stream: the workers go on with the next items while
    the caller works on a result, and at most ``ahead`` items are in the workers or done and not
    yet taken (the memory held), read before each new item is sent: an int, or a function of no
    argument (default ``2 * n_jobs``). Closing the generator early cancels the items not started.

    The workers are loky's (joblib's process pool), ending with this process
    (:func:`workers_die_with_parent`). When the caller chose another joblib backend
    (``joblib.parallel_config``, e.g. Dask), the items go to it through :func:`parallel_map` in
    groups of ``ahead``.
    """
    limit = ahead if callable(ahead) else (lambda: ahead or 2 * n_jobs)
    items = iter(items)
    if n_jobs == 1:
        for item in items:
            yield func(item)
        return
    executor = _loky_executor(n_jobs)
    if executor is None:  # another joblib backend, or no loky: groups through joblib
        while True:
            group = [item for _, item in zip(range(max(1, limit())), items)]
            if not group:
                return
            yield from parallel_map(func, group, n_jobs)
    pending = collections.deque()
    try:
        while True:
            while len(pending) < max(1, limit()):
                item = next(items, _END)
                if item is _END:
                    break
                pending.append(executor.submit(func, item))
            if not pending:
                return
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()


_END = object()


def _loky_executor(n_jobs):
    """joblib's reusable pool of ``n_jobs`` loky processes, dying with this one; None under another joblib backend."""
    try:
        from joblib._parallel_backends import LokyBackend
        from joblib.executor import get_memmapping_executor
        from joblib.parallel import get_active_backend
    except ImportError:
        return None
    if not isinstance(get_active_backend()[0], LokyBackend):
        return None
    with _sweep_lock:
        if not _swept:
            _swept.append(remove_stale_worker_files())
    main = threading.current_thread() is threading.main_thread()
    # as joblib's workers: BLAS and OpenMP get this process's cores shared out (unless set), idle workers stay 5 min
    threads = str(max(1, available_cores() // n_jobs))
    env = {var: os.environ.get(var, threads) for var in LokyBackend.MAX_NUM_THREADS_VARS}
    return get_memmapping_executor(n_jobs, timeout=300, initializer=_die_with_parent, initargs=(os.getpid(), main),
                                   env=env)


def remove_stale_worker_files(folder=SHARED_MEMORY, min_age=_WORKER_FILES_MIN_AGE):
    """Remove what loky's and joblib's processes left in ``folder`` after being killed; return the names.

    Only entries of this user, a day old and named after a process that no longer
    exists are removed (``sem.loky-<pid>-*``, ``joblib_memmapping_folder_<pid>_*``). When the whole
    process group of a run is killed, loky's resource tracker dies with it and
    cannot remove them; the next parallel run of this package does.
    """
    return remove_stale(folder, _WORKER_FILES, min_age=min_age)


def _die_with_parent(parent_pid, use_pdeathsig):
    """Initializer of every worker process: end when the parent process ends, even by SIGKILL.

    On Linux the kernel sends SIGKILL to the worker when the parent's thread that
    started it ends (prctl PR_SET_PDEATHSIG; used only when that thread is the
    parent's main thread). Everywhere, a daemon thread checks every 0.2 s that
    the parent is still the worker's parent and ends the worker when it is not.
    """
    if use_pdeathsig and sys.platform.startswith("linux"):
        try:
            import ctypes
            import signal

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)

    def watch():
        while True:
            time.sleep(0.2)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="classic-loc-parent-watch", daemon=True).start()


@contextmanager
def workers_die_with_parent():
    """Inside the block, joblib's process workers (loky, the default) end when this process ends.

    Without it, workers of a parent killed by SIGKILL keep running (loky's own
    clean-up only runs when the parent can run it). Other joblib backends a
    caller chose (threads, Dask) are left alone.
    """
    try:
        from joblib import parallel_config
        from joblib._parallel_backends import LokyBackend
        from joblib.parallel import get_active_backend

        backend, _ = get_active_backend()
        main = threading.current_thread() is threading.main_thread()
        config = parallel_config(backend="loky", initializer=_die_with_parent, initargs=(os.getpid(), main)) \
            if isinstance(backend, LokyBackend) else None
    except Exception:  # no joblib (prediction-only install), or a joblib without these: leave it as it is
        config = None
    if config is None:
        yield
        return
    with config:
        yield
