"""Fuzzing the model loader: ``TARGETS = {"model_file": (strategy, run)}`` (see benchmarks/fuzz.py).

An example is the bytes of one model file:

- random bytes, and random zip files of random ``.npy`` members;
- byte flips, truncations and insertions of a small valid model file (a HOG model
  and a Haar model with a cascade first stage, each fitted once per process on
  synthetic arrays, about a second);
- valid files whose metadata has one value replaced (random JSON of every type,
  NaN, huge numbers, NUL and odd unicode, deep nesting) or one key deleted, or one
  array replaced (other dtype, shape, NaN, extra or missing arrays), written with a
  re-computed valid checksum, so the checks after the checksum are exercised too.

``run`` writes the bytes to ``workdir/model.npz``, calls :meth:`Localizer.load` and,
when the file loads, one :meth:`Localizer.detect` on a small array image. A
:class:`~classic_loc.errors.DataError` (ModelFileError included) is a clear refusal;
any other exception is a crash.
"""

import functools
import io
import json
import math
import warnings
import zipfile

import numpy as np
from hypothesis import strategies as st

from classic_loc import Localizer
from classic_loc.model_io import checksum

__all__ = ["TARGETS", "base_models", "write_npz"]

_IMAGE = np.random.default_rng(7).integers(0, 256, (40, 56)).astype(np.uint8)


def _synthetic(seed=0, n=10):
    """Tiny images (48 x 48) with a bright textured square and a dark bar, as arrays with boxes."""
    rng = np.random.default_rng(seed)
    images, boxes, labels = [], [], []
    for _ in range(n):
        img = rng.integers(40, 90, (48, 48)).astype(np.uint8)
        y, x = (int(v) for v in rng.integers(2, 20, 2))
        img[y:y + 24, x:x + 24] = 200 + rng.integers(0, 40, (24, 24))
        by, bx = (int(v) for v in rng.integers(0, 30, 2))
        img[by:by + 16, bx:bx + 16] //= 4
        images.append(img)
        boxes.append([[x, y, x + 24, y + 24], [bx, by, bx + 16, by + 16]])
        labels.append(["square", "bar"])
    return images, boxes, labels


@functools.lru_cache(maxsize=None)
def base_models():
    """The bytes of two small valid model files (fhog; haar with a first stage), fitted once per process."""
    import tempfile
    from pathlib import Path

    images, boxes, labels = _synthetic()
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for k, kw in enumerate((dict(features="fhog"),
                                dict(features="haar", haar_candidates=60, haar_features=12))):
            model = Localizer(window_cells=(4, 4), mining_rounds=0, n_random_negatives=150, flip=False,
                              calibration_fraction=0.0, **kw).fit(images, boxes, labels)
            path = Path(tmp) / f"m{k}.npz"
            model.save(path)
            out.append(path.read_bytes())
    return tuple(out)


def _parts(data):
    """(meta dict, arrays dict) of a model file's bytes."""
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(arrays.pop("__meta__").tobytes())
    return meta, arrays


def write_npz(meta_text, arrays):
    """Model file bytes from metadata text and arrays (object arrays are pickled by numpy, as an attacker could)."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays, __meta__=np.frombuffer(meta_text.encode("utf-8", "surrogatepass"), np.uint8))
    return buf.getvalue()


def _signed(meta, arrays, deep=None):
    """The file with ``meta`` re-signed (when it can be: NaN and deep nesting cannot be written canonically)."""
    try:
        meta = dict(meta, checksum=checksum(meta, arrays))
    except (ValueError, RecursionError, TypeError):
        pass
    text = json.dumps(meta, allow_nan=True)
    if deep is not None:  # nesting deeper than json.dumps writes: spliced in as text
        text = text.replace('"__DEEP__"', "[" * deep + "]" * deep)
    return write_npz(text, arrays)


# ------------------------------------------------------------------ values
_ODD = st.sampled_from(["", "\x00", "a\x00b", "\u202e", "\ud800", "\U0001f600", "fhog\n", " ", "NaN", "inf", "-1",
                        "8", "True", "auto", "x" * 5000])
_NUMBERS = st.one_of(st.integers(min_value=-2**70, max_value=2**70), st.sampled_from(
    [0, -1, 1, 2, 3, 7, 8, 64, 129, 2**31, 2**63, -2**63, 0.0, -0.0, 0.5, 1.5, 1e-308, 1e308, -1e308,
     math.nan, math.inf, -math.inf]), st.floats(allow_nan=True, allow_infinity=True))
_SCALARS = st.one_of(st.none(), st.booleans(), _NUMBERS, st.text(max_size=20), _ODD)
_JSON = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.text(max_size=6), inner, max_size=4), max_leaves=12)


def _paths(obj, prefix=()):
    """Every key path in a JSON value (dict keys and list indices)."""
    out = [prefix] if prefix else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, prefix + (i,))
    return out


def _set(obj, path, value, delete=False):
    for key in path[:-1]:
        obj = obj[key]
    if delete and isinstance(obj, dict):
        del obj[path[-1]]
    elif delete:
        obj.pop(path[-1])
    else:
        obj[path[-1]] = value


# ------------------------------------------------------------------ strategies
@st.composite
def _random_bytes(draw):
    return draw(st.binary(max_size=400))


@st.composite
def _random_zip(draw):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are wanted
        for _ in range(draw(st.integers(0, 4))):
            name = draw(st.sampled_from(["__meta__.npy", "weights_0.npy", "x.npy", "a/../b.npy", "noext"]))
            z.writestr(name, draw(st.binary(max_size=200)))
    return buf.getvalue()


@st.composite
def _damaged(draw):
    data = bytearray(draw(st.sampled_from(base_models())))
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["flip", "flip", "flip", "truncate", "insert", "delete"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[pos] ^= draw(st.integers(1, 255))
        elif op == "truncate":
            del data[pos:]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif data:
            del data[pos:pos + draw(st.integers(1, 16))]
    return bytes(data)


@st.composite
def _edited_meta(draw):
    meta, arrays = _parts(draw(st.sampled_from(base_models())))
    meta.pop("checksum", None)
    path = draw(st.sampled_from(_paths(meta)))
    op = draw(st.sampled_from(["value", "value", "value", "delete", "deep"]))
    deep = None
    if op == "delete":
        _set(meta, path, None, delete=True)
    elif op == "deep":
        deep = draw(st.sampled_from([50, 900, 3000, 100_000]))
        _set(meta, path, "__DEEP__")
    else:
        _set(meta, path, draw(_JSON))
    return _signed(meta, arrays, deep)


_DTYPES = ["float64", "float16", "float32", ">f4", "int64", "int32", "uint8", "bool", "complex64", "S4", "U2", "O"]


@st.composite
def _edited_arrays(draw):
    meta, arrays = _parts(draw(st.sampled_from(base_models())))
    meta.pop("checksum", None)
    name = draw(st.sampled_from(sorted(arrays)))
    a = arrays[name]
    op = draw(st.sampled_from(["dtype", "shape", "values", "short", "delete", "extra", "empty"]))
    if op == "dtype":
        arrays[name] = a.astype(draw(st.sampled_from(_DTYPES)))
    elif op == "shape":
        arrays[name] = a.reshape(-1) if a.ndim > 1 else a.reshape(1, -1)
    elif op == "values" and a.size:
        b = a.astype(np.float64) if a.dtype.kind == "f" else a.copy()
        idx = draw(st.integers(0, a.size - 1))
        value = draw(st.sampled_from([math.nan, math.inf, -1e30, 1e30, -1, 0, 10**6, -(10**6)]))
        if b.dtype.kind in "iu":
            value = int(np.clip(value, np.iinfo(b.dtype).min, np.iinfo(b.dtype).max)) if math.isfinite(value) else -1
        b.reshape(-1)[idx] = value
        arrays[name] = b.astype(a.dtype)
    elif op == "short":
        arrays[name] = a[: max(0, len(a) - draw(st.integers(1, 3)))]
    elif op == "delete":
        del arrays[name]
    elif op == "extra":
        arrays[draw(st.sampled_from(["weights_9", "haar_0", "stage1_haar_0", "ridge_1", "evil"]))] = np.zeros(
            draw(st.sampled_from([(0,), (3,), (2, 5)])), draw(st.sampled_from(["int32", "float32"])))
    else:
        arrays[name] = np.zeros((0,) + a.shape[1:], a.dtype)
    return _signed(meta, arrays)


@st.composite
def _valid(draw):
    return draw(st.sampled_from(base_models()))


MODEL_FILES = st.one_of(_random_bytes(), _random_zip(), _damaged(), _damaged(), _edited_meta(), _edited_meta(),
                        _edited_arrays(), _valid())


def run_model_file(example, workdir):
    """Load the model file ``example`` (bytes) and, when it loads, detect on one small image."""
    path = workdir / "model.npz"
    path.write_bytes(example)
    model = Localizer.load(path)
    model.detect(_IMAGE)


TARGETS = {"model_file": (MODEL_FILES, run_model_file)}
