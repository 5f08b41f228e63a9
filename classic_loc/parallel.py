"""Where work is spread over processes: joblib's loky workers on one machine.

Only this module knows joblib (training imports it through here; the prediction
path never does). Worker processes end with the process that started them,
however it ends, even by SIGKILL (:func:`workers_die_with_parent`), so a killed
``fit`` leaves no process behind.
"""

import os
import sys
import time
from contextlib import contextmanager

__all__ = ["parallel_map", "workers_die_with_parent"]


def parallel_map(func, items, n_jobs):
    """``[func(item) for item in items]``, in order; in ``n_jobs`` worker processes when ``n_jobs`` != 1.

    ``func`` and the items must pickle (module-level functions, plain data). The
    workers end with this process (:func:`workers_die_with_parent`).
    """
    if n_jobs == 1:
        return [func(item) for item in items]
    from joblib import Parallel, delayed

    with workers_die_with_parent():
        return Parallel(n_jobs=n_jobs)(delayed(func)(item) for item in items)


def _die_with_parent(parent_pid, use_pdeathsig):
    """Initializer of every worker process: end when the parent process ends, even by SIGKILL.

    On Linux the kernel sends SIGKILL to the worker when the parent's thread that
    started it ends (prctl PR_SET_PDEATHSIG; used only when that thread is the
    parent's main thread). Everywhere, a daemon thread checks every 0.2 s that
    the parent is still the worker's parent and ends the worker when it is not.
    """
    import threading

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
    import threading

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
