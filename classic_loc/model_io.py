"""The model file: one ``.npz`` holding named arrays and a JSON metadata block, no pickle.

Layout: every array of the model under its own name, plus ``__meta__``, the
UTF-8 bytes of a JSON object with ``format`` (``"classic_loc.model"``),
``format_version``, the library versions, and the caller's metadata. The JSON
also holds a SHA-256 over every array's name, dtype, shape and bytes, so a file
whose arrays were changed after writing is refused. The file is read with
``allow_pickle=False`` and written atomically (temporary file, then rename).
Only this module knows the layout.
"""

import hashlib
import json
import os
import platform
import zipfile

import numpy as np

from ._fileio import atomic_path
from .errors import ModelFileError

__all__ = ["FORMAT", "FORMAT_VERSION", "save_model", "load_model"]

FORMAT = "classic_loc.model"
FORMAT_VERSION = 1
_META = "__meta__"


def _checksum(arrays):
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _versions():
    import cv2

    from . import __version__

    return {"classic_loc": __version__, "numpy": np.__version__, "opencv": cv2.__version__,
            "python": platform.python_version()}


def save_model(path, meta, arrays):
    """Write ``arrays`` (name -> ndarray) and ``meta`` (a JSON-able dict) to ``path``, atomically.

    Returns
    -------
    int
        The size of the written file in bytes.
    """
    arrays = {name: np.asarray(a) for name, a in arrays.items()}
    for name, a in arrays.items():
        if name == _META or a.dtype.hasobject:
            raise ValueError(f"array {name!r} cannot be stored (reserved name or object dtype)")
    full = {"format": FORMAT, "format_version": FORMAT_VERSION, "versions": _versions(),
            "checksum": _checksum(arrays), **meta}
    blob = np.frombuffer(json.dumps(full, sort_keys=True).encode("utf-8"), dtype=np.uint8)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays, **{_META: blob})
    return os.path.getsize(path)


def _fail(path, problem, fix):
    return ModelFileError(path, "", problem, fix, kind="bad model file")


def load_model(path):
    """Read a model file and check its format, version and checksum.

    Returns
    -------
    meta : dict
    arrays : dict of str to ndarray

    Raises
    ------
    ModelFileError
        For a missing file, a file that is not a classic_loc model, one of
        another format version, or one whose arrays do not match their checksum.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise _fail(path, "no such model file", "check the path, or train one with `python -m classic_loc fit`")
    try:
        with np.load(path, allow_pickle=False) as npz:
            names = list(npz.files)
            if _META not in names:
                raise _fail(path, "not a classic_loc model file (no metadata)",
                            "give a model written by `classic_loc fit` or Localizer.save")
            meta = json.loads(npz[_META].tobytes().decode("utf-8"))
            arrays = {n: npz[n] for n in names if n != _META}
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise _fail(path, f"not a classic_loc model file ({type(exc).__name__})",
                    "give a model written by `classic_loc fit` or Localizer.save") from None
    except ValueError as exc:  # object arrays need pickle, which is refused
        raise _fail(path, f"the file holds data that needs pickle or is damaged ({exc})",
                    "only load model files written by classic_loc") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise _fail(path, "the metadata is not valid JSON", "the file is damaged: train the model again") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise _fail(path, "not a classic_loc model file (unknown format)",
                    "give a model written by `classic_loc fit` or Localizer.save")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        written_by = meta.get("versions", {}).get("classic_loc", "?")
        raise _fail(path, f"model format version {version} (written by classic_loc {written_by}); "
                          f"this classic_loc reads version {FORMAT_VERSION}",
                    "train the model again with this version, or load it with the version that wrote it")
    if meta.get("checksum") != _checksum(arrays):
        raise _fail(path, "the arrays do not match the checksum in the metadata: the file was modified or damaged",
                    "use an unmodified model file or train the model again")
    return meta, arrays
