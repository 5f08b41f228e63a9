"""Atomic file writes: write to a temporary file in the same folder, then rename.

A reader never sees a half-written file, and an existing file is only replaced
once the new one is complete. The temporary file is named
``.<name>.classic-loc-tmp-<host>-<pid>-<n>``: it is removed when the write fails or
is interrupted (Ctrl-C, SIGTERM through the command line's handler); after a
SIGKILL it may stay, clearly named, and the next write into that folder by a
process of the same user on the same host removes the ones whose process is no
longer alive (a folder shared between machines, as on a cluster, never loses
another host's file in progress: its pids mean nothing here).

What a path is decides how it is written (:func:`output_kind`), as Unix tools do:

- a regular file, or a path that does not exist yet: atomically, as above; a
  symbolic link stays a link and the file it points to is replaced;
- an existing character device or FIFO (``/dev/null``, a terminal, a named
  pipe), or an open file of a process (``/dev/stdout``, ``/dev/fd/N``): written
  through, opened and written directly (no temporary file, no rename, so a
  device is never replaced by a regular file);
- anything else (a folder, a block device, a socket): refused with a
  :class:`~classic_loc.errors.DataError`.

An ``OSError`` raised inside the block that names no file (a ``write`` on a
full disk names none) or names the temporary file is raised again naming the
output path, so that every error line says which file it concerns.
"""

import itertools
import os
import re
import shutil
import socket
import stat
import threading
import time
from contextlib import contextmanager

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "TMP_MARKER", "HOST", "remove_stale_temporaries",
           "remove_stale", "temporary_suffix", "pid_alive", "output_kind", "describe_file_type", "fsync_file"]

TMP_MARKER = ".classic-loc-tmp-"
#: This machine's name as it appears in temporary names (letters, digits, '.', '-' only).
HOST = re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname() or "")[:40] or "host"
_TMP_RE = re.compile(r"^\..*" + re.escape(TMP_MARKER) + r"(?P<host>.+)-(?P<pid>\d+)-\d+$")


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


def remove_stale(folder, pattern, min_age=0.0):
    """Remove the entries of ``folder`` whose name matches ``pattern`` and whose process is gone; return their names.

    ``pattern``'s group ``pid`` is the process that made the entry, its group
    ``host`` (where it has one) the machine. Kept: entries of another host, of
    another user, of this process or a live one, and entries modified less than
    ``min_age`` seconds ago. A folder is removed with its contents.
    """
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    uid = os.getuid() if hasattr(os, "getuid") else None
    for name in names:
        m = pattern.match(name)
        if not m or m.groupdict().get("host", HOST) != HOST:
            continue
        pid = int(m.group("pid"))
        if not pid or pid == os.getpid() or pid_alive(pid):
            continue
        path = os.path.join(folder, name)
        try:
            st = os.lstat(path)
            if (uid is not None and st.st_uid != uid) or time.time() - st.st_mtime < min_age:
                continue
            if stat.S_ISDIR(st.st_mode):
                shutil.rmtree(path)
            else:
                os.unlink(path)
            removed.append(name)
        except OSError:
            pass
    return removed


def remove_stale_temporaries(folder):
    """Remove this package's temporary files in ``folder`` whose writing process is gone; return their names."""
    return remove_stale(folder, _TMP_RE)


def _sweep_once(folder):
    key = os.path.normcase(os.path.realpath(folder))
    with _lock:
        if key in _cleaned:
            return
        _cleaned.add(key)
    remove_stale_temporaries(folder)


_PROCESS_FILES = ("/proc/", "/dev/fd/")


def _through_process_file(path):
    """True when ``path`` is, or is a chain of links through, an open file of a process (/dev/stdout -> /proc/self/fd/1)."""
    p = os.path.abspath(path)
    for _ in range(40):  # the kernel's own limit on links followed
        if p.startswith(_PROCESS_FILES):
            return True
        try:
            target = os.readlink(p)
        except (OSError, ValueError):  # not a link (or unreadable): the end of the chain
            return False
        p = os.path.normpath(os.path.join(os.path.dirname(p), target))
    return False


def describe_file_type(mode):
    """``"a folder"``, ``"a block device"``, ... for a ``st_mode`` (for error messages)."""
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISREG, "a file")):
        if test(mode):
            return name
    return "not a regular file"


def output_kind(path):
    """How an output ``path`` is written: ``"file"``, ``"stream"`` or ``"other"``.

    ``"file"``: a regular file, or nothing yet (a dangling link included):
    written atomically to ``os.path.realpath(path)``. ``"stream"``: an existing
    character device or FIFO, or an open file of a process (/dev/stdout,
    /dev/fd/N, /proc/PID/fd/N): written through. ``"other"``: a folder, a block
    device or a socket: not written.
    """
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return "file"  # nothing there (or not reachable): the write itself says why it fails
    if stat.S_ISCHR(mode) or stat.S_ISFIFO(mode):
        return "stream"
    if stat.S_ISREG(mode):
        return "stream" if _through_process_file(path) else "file"
    return "other"


def fsync_file(fh):
    """``os.fsync`` an open file object when it is a regular file (a device or a pipe cannot be synced)."""
    fd = fh.fileno()
    if stat.S_ISREG(os.fstat(fd).st_mode):
        os.fsync(fd)


@contextmanager
def _naming(path, *aliases):
    """Raise an OSError of the block that names no file, or names one of ``aliases``, again naming ``path``."""
    try:
        yield
    except OSError as exc:
        if exc.errno is None or (exc.filename is not None and exc.filename not in aliases):
            raise
        raise OSError(exc.errno, exc.strerror or os.strerror(exc.errno), path) from exc


def temporary_suffix():
    """``.classic-loc-tmp-<host>-<pid>-<n>``: what ends every temporary name, unique in this process."""
    return f"{TMP_MARKER}{HOST}-{os.getpid()}-{next(_counter)}"


def temporary_name(path):
    """The temporary path :func:`atomic_path` writes before renaming to ``path``."""
    path = os.fspath(path)
    folder, name = os.path.split(os.path.abspath(path))
    return os.path.join(folder, f".{name}{temporary_suffix()}")


@contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; rename it to ``path`` if the block succeeds.

    The temporary file exists (empty, with the mode a plain ``open()`` gives) when
    the block starts; on any exception, KeyboardInterrupt included, it is removed
    and ``path`` is left as it was. When ``path`` is a symbolic link, the file it
    points to is replaced and the link stays. When ``path`` is a character device
    or a FIFO (see :func:`output_kind`), ``path`` itself is yielded, to be
    written through; a folder, block device or socket is refused (DataError).
    """
    path = os.fspath(path)
    kind = output_kind(path)
    if kind == "stream":
        with _naming(path):
            yield path
        return
    if kind == "other":
        from .errors import DataError

        raise DataError(path, "", f"is {describe_file_type(os.stat(path).st_mode)}, not a regular file",
                        "give a file path", kind="unwritable output")
    target = os.path.realpath(path)  # a link stays a link: the file it leads to is replaced
    folder = os.path.dirname(target)
    with _naming(path):
        os.makedirs(folder, exist_ok=True)
    _sweep_once(folder)
    while True:
        tmp = temporary_name(target)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as for open()
            break
        except FileExistsError:  # left by an earlier process with our pid: take the next number
            continue
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, path) from exc
    try:
        os.close(fd)
        with _naming(path, tmp):
            yield tmp
            os.replace(tmp, target)
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
            fsync_file(fh)


def atomic_write_text(path, text):
    atomic_write_bytes(path, text.encode("utf-8"))
