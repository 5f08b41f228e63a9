"""Atomic file writes: write to a temporary file in the same folder, then rename.

A reader never sees a half-written file, and an existing file is only replaced
once the new one is complete.
"""

import os
import tempfile
from contextlib import contextmanager


def _file_mode():
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


_FILE_MODE = _file_mode()


@contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; rename it to ``path`` if the block succeeds."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    os.close(fd)
    os.chmod(tmp, _FILE_MODE)  # mkstemp makes it 0600; give it the mode open() would have
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_bytes(path, data):
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())


def atomic_write_text(path, text):
    atomic_write_bytes(path, text.encode("utf-8"))
