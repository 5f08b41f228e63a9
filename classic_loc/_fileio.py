"""Atomic file writes: write to a temporary file in the same folder, then rename.

A reader never sees a half-written file, and an existing file is only replaced
once the new one is complete. The temporary file is named
``.<name>.classic-loc-tmp-<pid>-<n>``: it is removed when the write fails or is
interrupted (Ctrl-C, SIGTERM through the command line's handler); after a
SIGKILL it may stay, clearly named, and the next write into that folder by any
process removes the ones whose process is no longer alive.
"""

import itertools
import os
import re
import threading
from contextlib import contextmanager

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "TMP_MARKER", "remove_stale_temporaries",
           "pid_alive"]

TMP_MARKER = ".classic-loc-tmp-"
_TMP_RE = re.compile(r"^\..*" + re.escape(TMP_MARKER) + r"(\d+)-\d+$")


_counter = itertools.count()
_cleaned = set()  # folders already swept by this process
_lock = threading.Lock()


def pid_alive(pid):
    """True when a process ``pid`` exists (or cannot be checked: then it is assumed alive)."""
    if pid <= 0:
        return True
    if os.name != "posix":
        return True  # no cheap check: never remove another process's file
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, owned by someone else
        return True
    return True


def remove_stale_temporaries(folder):
    """Remove this package's temporary files in ``folder`` whose writing process is gone; return their names."""
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        m = _TMP_RE.match(name)
        if not m or int(m.group(1)) == os.getpid() or pid_alive(int(m.group(1))):
            continue
        try:
            os.unlink(os.path.join(folder, name))
            removed.append(name)
        except OSError:
            pass
    return removed


def _sweep_once(folder):
    key = os.path.normcase(os.path.realpath(folder))
    with _lock:
        if key in _cleaned:
            return
        _cleaned.add(key)
    remove_stale_temporaries(folder)


def temporary_name(path):
    """The temporary path :func:`atomic_path` writes before renaming to ``path``."""
    path = os.fspath(path)
    folder, name = os.path.split(os.path.abspath(path))
    return os.path.join(folder, f".{name}{TMP_MARKER}{os.getpid()}-{next(_counter)}")


@contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; rename it to ``path`` if the block succeeds.

    The temporary file exists (empty, with the mode a plain ``open()`` gives) when
    the block starts; on any exception, KeyboardInterrupt included, it is removed
    and ``path`` is left as it was.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    _sweep_once(folder)
    while True:
        tmp = temporary_name(path)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as for open()
            break
        except FileExistsError:  # left by an earlier process with our pid: take the next number
            continue
    try:
        os.close(fd)
        yield tmp
        os.replace(tmp, path)
    finally:
        try:
            os.unlink(tmp)
        except OSError:  # renamed (FileNotFoundError), or nothing more to do without hiding the first error
            pass


def atomic_write_bytes(path, data):
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())


def atomic_write_text(path, text):
    atomic_write_bytes(path, text.encode("utf-8"))
