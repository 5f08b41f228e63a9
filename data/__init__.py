"""The embedded demo data set: generated on first use, no download needed.

Installed as ``classic_loc._demo``. :func:`demo_path` returns the folder of the
cached demo data set (a Pascal VOC folder with ``train`` and ``test`` splits),
generating it the first time into ``$CLASSIC_LOC_DATA/demo-v<N>`` when that
variable is set, else ``$XDG_CACHE_HOME/classic_loc/demo-v<N>`` (by default
``~/.cache/classic_loc/demo-v<N>``).

The data set is written into a temporary folder beside its final place and
renamed into place only when complete (with a ``DONE`` marker inside), so an
interrupted run never leaves half a data set behind, and two processes
generating at the same time both end up with the same complete folder.
"""

import json
import os
import re
import shutil
import tempfile
import time
import warnings

# ``python -m classic_loc._demo.generate`` imports this package, and so the module, before
# running it as __main__; that double import is harmless, so silence runpy's warning about it.
warnings.filterwarnings("ignore", message=re.escape(f"'{__name__}.generate' found in sys.modules"),
                        category=RuntimeWarning)

from .generate import CLASSES, DEMO_IMAGES, DEMO_SEED, DEMO_VERSION, generate  # noqa: E402

__all__ = ["demo_path", "generate", "DEMO_VERSION", "CLASSES", "cache_dir"]

_MARKER = "DONE"
_STALE_SECONDS = 6 * 3600  # partial folders older than this are from crashed runs


def cache_dir():
    """The folder that holds cached data sets: ``$CLASSIC_LOC_DATA`` or ``$XDG_CACHE_HOME/classic_loc``."""
    root = os.environ.get("CLASSIC_LOC_DATA")
    if root:
        return os.path.abspath(os.path.expanduser(root))
    xdg = os.environ.get("XDG_CACHE_HOME")
    if not xdg or not os.path.isabs(xdg):  # the XDG spec says to ignore relative paths
        xdg = os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(xdg, "classic_loc")


def _marker_content():
    return json.dumps({"version": DEMO_VERSION, "n_images": DEMO_IMAGES, "seed": DEMO_SEED}, sort_keys=True) + "\n"


def _is_complete(folder):
    try:
        with open(os.path.join(folder, _MARKER), encoding="utf-8") as fh:
            return fh.read() == _marker_content()
    except OSError:
        return False


def _remove_stale_partials(parent, name):
    now = time.time()
    try:
        entries = os.listdir(parent)
    except OSError:
        return
    for entry in entries:
        if entry.startswith(f".{name}.") and entry.endswith(".partial"):
            path = os.path.join(parent, entry)
            try:
                if now - os.path.getmtime(path) > _STALE_SECONDS:
                    shutil.rmtree(path, ignore_errors=True)
            except OSError:
                pass


def demo_path(progress=None):
    """The folder of the demo data set, generated on first use.

    Parameters
    ----------
    progress : callable, optional
        Called as ``progress(done, total)`` after each image while generating.

    Returns
    -------
    str
        A Pascal VOC folder with ``train`` and ``test`` splits and ``classes.txt``;
        read it with ``classic_loc.datasets.read_voc(path, "train")``.
    """
    name = f"demo-v{DEMO_VERSION}"
    parent = cache_dir()
    final = os.path.join(parent, name)
    if _is_complete(final):
        return final
    os.makedirs(parent, exist_ok=True)
    _remove_stale_partials(parent, name)
    work = tempfile.mkdtemp(prefix=f".{name}.", suffix=".partial", dir=parent)
    try:
        # generate under the final name inside the work folder, so the annotations'
        # <folder> is the same wherever the cache lives
        staged = os.path.join(work, name)
        generate(staged, n_images=DEMO_IMAGES, seed=DEMO_SEED, progress=progress)
        with open(os.path.join(staged, _MARKER), "w", encoding="utf-8") as fh:
            fh.write(_marker_content())
            fh.flush()
            os.fsync(fh.fileno())
        if os.path.lexists(final) and not _is_complete(final):
            # an incomplete or foreign folder under our name (not one of ours: ours appear complete)
            os.replace(final, os.path.join(work, "stale"))
        try:
            os.replace(staged, final)
        except OSError:
            if not _is_complete(final):  # not just another process that finished first
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return final
