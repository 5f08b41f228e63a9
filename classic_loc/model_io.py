"""The model file: one ``.npz`` holding named arrays and a JSON metadata block, no pickle.

Layout (format version 2): every array of the model under its own name, plus
``__meta__``, the UTF-8 bytes of a JSON object with ``format``
(``"classic_loc.model"``), ``format_version``, the library versions, the caller's
metadata and ``checksum``: a SHA-256 over the canonical JSON of the metadata
(every key but ``checksum``, sorted keys, no spaces, ASCII) and every array's name,
dtype, shape and bytes. So every byte that affects predictions (class names,
thresholds, feature parameters, weights) is covered: a file changed after writing
is refused. Version 1 files (whose checksum covered the arrays only) are refused
with a one-line message.

Limits, checked before any array is read: the file and the sum of its declared
uncompressed sizes are at most :data:`MAX_MODEL_BYTES` (64 MiB; today's models are
10-74 KiB per class), the metadata at most :data:`MAX_META_BYTES`, at most
:data:`MAX_ARRAYS` arrays, each a plain numeric dtype (bool, int, uint, float) whose
header shape matches its declared size. The file is never unpickled and is written
atomically (temporary file, then rename). Every damaged, oversized or foreign file
raises :class:`~classic_loc.errors.ModelFileError`. Only this module knows the layout.
"""

import io
import hashlib
import json
import math
import os
import platform
import zipfile

import numpy as np

from ._fileio import atomic_write_bytes
from .errors import ModelFileError

__all__ = ["FORMAT", "FORMAT_VERSION", "MAX_MODEL_BYTES", "MAX_META_BYTES", "MAX_ARRAYS", "save_model", "load_model",
           "canonical_json", "checksum"]

FORMAT = "classic_loc.model"
FORMAT_VERSION = 2
#: Largest model file, and largest sum of its arrays' uncompressed sizes, that is read.
MAX_MODEL_BYTES = 64 * 2**20
#: Largest metadata block that is read.
MAX_META_BYTES = 8 * 2**20
#: Most arrays a model file may hold.
MAX_ARRAYS = 10_000
_META = "__meta__"
_NUMERIC = "biuf"  # dtype kinds a model array may have: bool, int, uint, float


def canonical_json(meta):
    """The bytes the checksum reads for ``meta``: sorted keys, no spaces, ASCII, no NaN (the ``checksum`` key left out)."""
    body = {k: v for k, v in meta.items() if k != "checksum"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode("ascii")


def checksum(meta, arrays):
    """SHA-256 (hex) over the canonical metadata and every array's name, dtype, shape and bytes."""
    h = hashlib.sha256()
    h.update(canonical_json(meta))
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"|{name}|{a.dtype.str}|{a.shape}|".encode())
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
        if name == _META or a.dtype.kind not in _NUMERIC or a.dtype.fields is not None:
            raise ValueError(f"array {name!r} cannot be stored (reserved name or not a plain numeric dtype)")
    full = {**meta, "format": FORMAT, "format_version": FORMAT_VERSION, "versions": _versions()}
    full["checksum"] = checksum(full, arrays)
    blob = np.frombuffer(json.dumps(full, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                                    allow_nan=False).encode("ascii"), dtype=np.uint8)
    buf = io.BytesIO()  # built in memory (models are small), then written in one go: a FIFO or a device works too
    np.savez_compressed(buf, **arrays, **{_META: blob})
    data = buf.getvalue()
    atomic_write_bytes(path, data)
    return len(data)


def _fail(path, problem, fix="the file is damaged or is not a classic_loc model: use the file `classic_loc fit` "
                             "wrote, or train the model again"):
    return ModelFileError(path, "", problem, fix, kind="bad model file")


def _no_constants(name):
    raise ValueError(f"{name} is not valid JSON")


def _read_header(zf, info, path, where):
    """``(shape, fortran_order, dtype)`` of one ``.npy`` member, checked against its declared size (no data read)."""
    with zf.open(info) as fh:
        major, minor = np.lib.format.read_magic(fh)
        if (major, minor) == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        elif (major, minor) == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            raise _fail(path, f"array {where!r} has the unknown .npy version {major}.{minor}")
        if dtype.kind not in _NUMERIC or dtype.fields is not None or dtype.subdtype is not None or dtype.hasobject:
            raise _fail(path, f"array {where!r} has the dtype {dtype}, not a plain number type: it needs pickle or "
                              "is damaged", "only load model files written by classic_loc (they are never unpickled)")
        n_bytes = math.prod(shape) * dtype.itemsize
        if n_bytes != info.file_size - fh.tell():
            raise _fail(path, f"array {where!r} declares shape {shape} of {dtype} ({n_bytes:,} bytes) in "
                              f"{info.file_size - fh.tell():,} bytes of data")
    return shape, fortran, dtype


def _read_data(zf, info, header, path, where):
    """The array of one ``.npy`` member whose header :func:`_read_header` checked."""
    shape, fortran, dtype = header
    n_bytes = math.prod(shape) * dtype.itemsize
    with zf.open(info) as fh:
        fh.seek(info.file_size - n_bytes)
        data = bytearray(n_bytes)
        if n_bytes and fh.readinto(memoryview(data)) != n_bytes:
            raise _fail(path, f"array {where!r} is truncated")
    return np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")


def load_model(path):
    """Read a model file and check its limits, format, version and checksum.

    Returns
    -------
    meta : dict
    arrays : dict of str to ndarray

    Raises
    ------
    ModelFileError
        For a missing file; a file over the size limits (see the module docstring);
        one that is damaged, not a classic_loc model or of another format version; or
        one whose metadata or arrays do not match their checksum.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        if os.path.exists(path):  # a folder, FIFO or device: never opened (a FIFO would block)
            raise _fail(path, "the model path is not a regular file", "give the path of a model file written by "
                        "`classic_loc fit` or Localizer.save")
        raise _fail(path, "no such model file", "check the path, or train one with `python -m classic_loc fit`")
    limit = f"the limit of {MAX_MODEL_BYTES:,} bytes (classic_loc.model_io.MAX_MODEL_BYTES)"
    size = os.path.getsize(path)
    if size > MAX_MODEL_BYTES:
        raise _fail(path, f"the file is {size:,} bytes, more than {limit}", "give a classic_loc model file")
    try:
        with open(path, "rb") as fh, zipfile.ZipFile(fh) as zf:
            infos = zf.infolist()
            if len(infos) > MAX_ARRAYS:
                raise _fail(path, f"the file holds {len(infos):,} entries, more than {MAX_ARRAYS:,}")
            members = {}
            for info in infos:
                name = info.filename[:-4] if info.filename.endswith(".npy") else None
                if name is None or name in members:
                    what = "a second entry" if name in members else "an unexpected entry"
                    raise _fail(path, f"{what} {info.filename[:80]!r} in the file")
                members[name] = info
            declared = sum(info.file_size for info in infos)
            if declared > MAX_MODEL_BYTES:
                raise _fail(path, f"the file declares {declared:,} bytes of arrays when uncompressed, more than {limit}",
                            "give a classic_loc model file (this one may be a zip bomb)")
            if _META not in members:
                raise _fail(path, "not a classic_loc model file (no metadata)",
                            "give a model written by `classic_loc fit` or Localizer.save")
            if members[_META].file_size > MAX_META_BYTES:
                raise _fail(path, f"the metadata declares {members[_META].file_size:,} bytes, more than "
                                  f"{MAX_META_BYTES:,} (classic_loc.model_io.MAX_META_BYTES)")
            headers = {name: _read_header(zf, info, path, name) for name, info in members.items()}
            blob = _read_data(zf, members[_META], headers[_META], path, _META)
            if blob.dtype != np.uint8 or blob.ndim != 1:
                raise _fail(path, "the metadata is not a byte string")
            try:
                meta = json.loads(blob.tobytes().decode("utf-8"), parse_constant=_no_constants)
            except (ValueError, RecursionError):
                raise _fail(path, "the metadata is not valid JSON") from None
            if not isinstance(meta, dict) or meta.get("format") != FORMAT:
                raise _fail(path, "not a classic_loc model file (unknown format)",
                            "give a model written by `classic_loc fit` or Localizer.save")
            _check_version(path, meta)
            arrays = {name: _read_data(zf, info, headers[name], path, name) for name, info in members.items()
                      if name != _META}
    except ModelFileError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure to decode these bytes means a damaged file
        raise _fail(path, f"not a classic_loc model file, or a damaged one ({type(exc).__name__}: "
                          f"{' '.join(str(exc).split())[:120]})") from None
    try:
        expected = checksum(meta, arrays)
    except (ValueError, RecursionError):  # NaN or infinity in the metadata, or nesting too deep to write
        expected = None
    if meta.get("checksum") != expected:
        raise _fail(path, "the metadata or arrays do not match the checksum in the metadata: the file was modified or damaged",
                    "use an unmodified model file or train the model again")
    return meta, arrays


def _check_version(path, meta):
    version = meta.get("format_version")
    if type(version) is int and version == FORMAT_VERSION:
        return
    versions = meta.get("versions")
    written_by = versions.get("classic_loc", "?") if isinstance(versions, dict) else "?"
    written_by = written_by if isinstance(written_by, str) and len(written_by) < 40 and written_by.isprintable() else "?"
    shown = repr(version) if len(repr(version)) < 40 else repr(version)[:37] + "..."
    old = " (its checksum does not cover the metadata)" if version == 1 else ""
    raise _fail(path, f"model format version {shown} (written by classic_loc {written_by}){old}; "
                      f"this classic_loc reads version {FORMAT_VERSION}",
                "train the model again with this version, or load it with the version that wrote it")
