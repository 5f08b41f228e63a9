"""The model file (format version 2) and the fitted state it holds.

- What a model learned is fitted state: changing a fit-only parameter of a fitted
  (here: loaded) model makes it unfitted (NotFittedError naming the parameter) until
  it is set back, never changes its predictions silently.
- The checksum covers the canonical metadata and the arrays: edited class names,
  thresholds or feature parameters are refused; version 1 files are refused.
- Declared sizes are checked before any array is read: zip bombs are refused fast
  and without memory; damaged files and inconsistent metadata give ModelFileError.
"""

import hashlib
import json
import os
import sys
import time
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

from classic_loc import Localizer
from classic_loc.errors import DataError, ModelFileError
from classic_loc.localizer import NotFittedError
from classic_loc.model_io import FORMAT_VERSION, MAX_MODEL_BYTES, checksum, load_model
from classic_loc.settings import FIT_ONLY

sys.path.insert(0, str(Path(__file__).parent))
from fuzz_models import _synthetic, base_models  # noqa: E402

IMAGES = [np.random.default_rng(k).integers(0, 256, (48, 64)).astype(np.uint8) for k in range(3)]
for _img, (_y, _x) in zip(IMAGES, [(5, 9), (12, 30), (20, 4)]):
    _img[_y:_y + 24, _x:_x + 24] = 230  # something the tiny models detect

# a valid value other than the tiny fhog model's for every fit-only parameter
CHANGED = {"features": "hog", "cell_size": 6, "block_size": 3, "n_bins": 12, "block_norm": "L1", "signed": True,
           "interpolate": True, "color": True, "preprocess": "clahe", "haar_features": 50, "haar_candidates": 1000, "window_cells": (5, 5),
           "window_area": 30, "context": 0, "min_size": 10.0, "max_size": 100.0, "C": 0.1, "flip": True,
           "n_random_negatives": 500, "mining_rounds": 1, "max_negatives_per_image": 30, "max_negatives": 1000, "max_sample_mb": 100,
           "neg_iou": 0.4, "pos_iou": 0.7, "calibration_fraction": 0.1, "size_calibration": False, "main_first": False, "ridge_alpha": 1.0,
           "nms_cover": 0.8,
           "random_state": 1}


@pytest.fixture
def model_path(tmp_path):
    path = tmp_path / "m.npz"
    path.write_bytes(base_models()[0])
    return path


@pytest.fixture
def haar_path(tmp_path):
    path = tmp_path / "h.npz"
    path.write_bytes(base_models()[1])
    return path


def _detections(model):
    return [(d.boxes.tolist(), d.labels.tolist(), d.scores.tolist()) for d in model.detect(IMAGES)]


def _parts(path):
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return json.loads(arrays.pop("__meta__").tobytes()), arrays


def _write(path, meta, arrays, sign=True, text=None):
    meta = dict(meta)
    if sign:
        meta["checksum"] = checksum(meta, arrays)
    blob = (text if text is not None else json.dumps(meta)).encode()
    with open(path, "wb") as fh:
        np.savez(fh, **arrays, __meta__=np.frombuffer(blob, np.uint8))


# ------------------------------------------------------------------ fitted state
def test_the_tiny_models_detect_something(model_path, haar_path):
    for path in (model_path, haar_path):
        dets = _detections(Localizer.load(path))
        assert all(len(scores) for _, _, scores in dets)


def test_changing_a_fit_only_parameter_makes_a_loaded_model_unfitted(model_path, tmp_path):
    assert set(CHANGED) == set(FIT_ONLY)
    model = Localizer.load(model_path)
    before = _detections(model)
    for name, value in CHANGED.items():
        was = model.fit_settings_[name]
        assert was != value
        model.set_params(**{name: value})
        message = (f"Localizer: {name}: {name} was {was!r} when the model was trained and is now {value!r}: its "
                   f"learned templates depend on it, so the model is no longer fitted; set it back with "
                   f"set_params({name}={was!r}), or fit again")
        for call in (lambda: model.detect(IMAGES[0]), lambda: model.predict(IMAGES[0]),
                     lambda: model._detect_one(IMAGES[0]), lambda: model.save(tmp_path / "x.npz")):
            with pytest.raises(NotFittedError) as info:
                call()
            assert str(info.value) == message
        model.set_params(**{name: was})  # set back: the learned state was kept
        assert _detections(model) == before
    assert not (tmp_path / "x.npz").exists()
    # an attribute changed directly is caught the same way; an equal value of another type is no change
    model.cell_size = 4
    with pytest.raises(NotFittedError, match="cell_size was 8 when the model was trained and is now 4"):
        model.detect(IMAGES[0])
    model.cell_size = 8.0
    model.window_cells = [4, 4]
    assert _detections(model) == before
    model.cell_size = "8"
    with pytest.raises(NotFittedError, match="cell_size was 8 when the model was trained and is now '8'"):
        model.detect(IMAGES[0])


def test_prediction_settings_may_change_and_are_saved(model_path, tmp_path):
    model = Localizer.load(model_path)
    before = _detections(model)
    model.set_params(scale_step=1.3, min_score=0.3, n_jobs=2, verbose=True)
    coarse = _detections(model)
    assert coarse != before
    model.save(tmp_path / "coarse.npz")
    again = Localizer.load(tmp_path / "coarse.npz")
    assert (again.scale_step, again.min_score) == (1.3, 0.3) and _detections(again) == coarse
    model.set_params(scale_step=1.1, min_score=0.02)
    assert _detections(model) == before


def test_a_changed_model_can_be_fitted_again(model_path):
    model = Localizer.load(model_path).set_params(mining_rounds=1)
    with pytest.raises(NotFittedError):
        model.detect(IMAGES[0])
    model.fit(*_synthetic())
    assert model.fit_settings_["mining_rounds"] == 1 and model.feature_params_.cell_size == 8
    model.detect(IMAGES[0])


def test_predictions_read_the_fitted_features_not_the_parameters(model_path):
    """feature_params_ (fixed at fit) is what the scan uses; the parameters only tell whether it still applies."""
    model = Localizer.load(model_path)
    fp = model.feature_params_
    assert (fp.cell_size, fp.variant, fp.haar) == (8, "felzenszwalb", False)
    before = _detections(model)
    model.feature_params_ = type(fp)(cell_size=4, variant="felzenszwalb")  # tampering with the fitted state shows
    assert _detections(model) != before


# ------------------------------------------------------------------ the checksum
def test_checksum_covers_the_canonical_metadata_and_the_arrays(model_path):
    meta, arrays = _parts(model_path)
    assert meta["format_version"] == FORMAT_VERSION == 2
    body = {k: v for k, v in meta.items() if k != "checksum"}
    h = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode())
    for name in sorted(arrays):
        a = arrays[name]
        h.update(f"|{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    assert h.hexdigest() == meta["checksum"]


def test_edited_metadata_is_refused(model_path, tmp_path):
    meta, arrays = _parts(model_path)

    def classes(m):
        m["classes"][0] = "ring"

    def threshold(m):
        m["presence_threshold"] = 0.5

    def cell(m):
        m["features"]["cell_size"], m["params"]["cell_size"] = 4, 4

    def bias(m):
        m["templates"][0]["bias"] += 1.0

    def min_score(m):
        m["params"]["min_score"] = 0.5

    def report(m):
        m["training"]["presence_threshold"] = 0.9

    for k, edit in enumerate([classes, threshold, cell, bias, min_score, report]):
        m = json.loads(json.dumps(meta))
        edit(m)
        bad = tmp_path / f"edited{k}.npz"
        _write(bad, m, arrays, sign=False)
        with pytest.raises(ModelFileError) as info:
            Localizer.load(bad)
        assert str(info.value) == (f"{bad}: the metadata or arrays do not match the checksum in the metadata: the file "
                                   "was modified or damaged; use an unmodified model file or train the model again")


def test_metadata_written_another_way_with_the_same_content_loads(model_path, tmp_path):
    meta, arrays = _parts(model_path)
    text = json.dumps(dict(reversed(list(meta.items()))), indent=3, ensure_ascii=False)
    _write(tmp_path / "pretty.npz", meta, arrays, sign=False, text=text)
    assert _detections(Localizer.load(tmp_path / "pretty.npz")) == _detections(Localizer.load(model_path))


def test_version_1_files_are_refused(model_path, tmp_path):
    meta, arrays = _parts(model_path)
    meta["format_version"] = 1
    h = hashlib.sha256()  # version 1's checksum: the arrays only
    for name in sorted(arrays):
        h.update(f"{name}|{arrays[name].dtype.str}|{arrays[name].shape}|".encode())
        h.update(arrays[name].tobytes())
    meta["checksum"] = h.hexdigest()
    _write(tmp_path / "v1.npz", meta, arrays, sign=False)
    with pytest.raises(ModelFileError) as info:
        Localizer.load(tmp_path / "v1.npz")
    version = meta["versions"]["classic_loc"]
    assert str(info.value) == (f"{tmp_path / 'v1.npz'}: model format version 1 (written by classic_loc {version}) (its "
                               "checksum does not cover the metadata); this classic_loc reads version 2; train the "
                               "model again with this version, or load it with the version that wrote it")


# ------------------------------------------------------------------ metadata that is signed but wrong
SIGNED_BAD = [
    ("presence_threshold", lambda m, a: m.update(presence_threshold=1.5), "presence_threshold 1.5 is not in [0, 1]"),
    ("presence_threshold", lambda m, a: m.update(presence_threshold="0.5"), "presence_threshold '0.5' is not in [0, 1]"),
    ("negative window", lambda m, a: m["templates"][0].update(window_cells=[-4, 4]),
     "template 0: window_cells [-4, 4] is not two integers in [2, 128]"),
    ("bool window", lambda m, a: m["templates"][1].update(window_cells=[True, 4]),
     "template 1: window_cells [True, 4] is not two integers in [2, 128]"),
    ("missing key", lambda m, a: m.pop("templates"), "no 'templates'"),
    ("classes type", lambda m, a: m.update(classes="square"), "'classes' is not a list of distinct, non-empty names"),
    ("duplicate class", lambda m, a: m.update(classes=["bar", "bar"]), "'classes' is not a list of distinct"),
    ("param type", lambda m, a: m["params"].update(cell_size="8"),
     "params: Localizer: cell_size: '8' (str) is not an integer; use an integer in [2, 64]"),
    ("param missing", lambda m, a: m["params"].pop("context"), "'params' lacks context"),
    ("features vs params", lambda m, a: m["features"].update(cell_size=4), "features: cell_size is 4, the parameters give 8"),
    ("features bool", lambda m, a: m["features"].update(signed=0), "features: signed is 0, the parameters give False"),
    ("context", lambda m, a: m["templates"][0].update(context=2), "template 0: context 2 is not the parameter context=1"),
    ("calibration", lambda m, a: m["templates"][0].update(calibration=[-1.0, 0.0]),
     "template 0: calibration [-1.0, 0.0] is not [a > 0, b]"),
    ("scale range", lambda m, a: m["templates"][0].update(scale_range=[2.0, 1.0]),
     "template 0: scale_range [2.0, 1.0] is not [lo >= 0, hi > lo or null]"),
    ("bias", lambda m, a: m["templates"][0].update(bias=None), "template 0: bias None is not a finite number"),
    ("nms_cover", lambda m, a: m.update(nms_cover=0), "nms_cover 0 is not None or in (0, 1]"),
    ("size calibration", lambda m, a: m.update(size_calibration=[0.0, 1.0, 0.0]),
     "size_calibration [0.0, 1.0, 0.0] is not null or [alpha > 0, beta, gamma]"),
    ("size calibration length", lambda m, a: m.update(size_calibration=[1.0, 1.0]),
     "size_calibration [1.0, 1.0] is not null or [alpha > 0, beta, gamma]"),
    ("size calibration switched off", lambda m, a: (m["params"].update(size_calibration=False),
                                                    m.update(size_calibration=[1.0, 0.5, -2.0])),
     "size_calibration values with the parameter size_calibration=false"),
    ("main ratio", lambda m, a: m.update(main_ratio=1.5), "main_ratio 1.5 is not null or in (0, 1]"),
    ("main ratio text", lambda m, a: m.update(main_ratio="0.9"), "main_ratio '0.9' is not null or in (0, 1]"),
    ("main first switched off", lambda m, a: (m["params"].update(main_first=False), m.update(main_ratio=0.9)),
     "main_ratio with the parameter main_first=false"),
    ("one template short", lambda m, a: m["templates"].pop(), "not one template per class"),
    ("weights dtype", lambda m, a: a.update(weights_0=a["weights_0"].astype(np.float64)),
     "template 0: array 'weights_0' is float64 with 1 dimensions, not float32 with 1"),
    ("weights short", lambda m, a: a.update(weights_0=a["weights_0"][:-1]),
     "template 0 has 495 weights for a [4, 4] window (496 features)"),  # 16 cells x 31
    ("weights nan", lambda m, a: a["weights_1"].__setitem__(3, np.nan), "template 1: array 'weights_1' holds NaN"),
    ("ridge shape", lambda m, a: a.update(ridge_0=a["ridge_0"][:, :3].copy()),
     "template 0: box regressor of shape (496, 3), (4,), not (496, 4), (4,)"),
    ("half ridge", lambda m, a: a.pop("ridge_bias_1"), "template 1 has half a box regressor"),
    ("extra array", lambda m, a: a.update(evil=np.zeros(3, np.float32)), "unexpected arrays evil"),
    ("no weights", lambda m, a: a.pop("weights_0"), "template 0 has no weights"),
    ("a Haar array in a HOG model", lambda m, a: a.update(haar_0=np.zeros((1, 5), np.int32)),
     "template 0 has Haar features"),
    ("upsample below every scale", lambda m, a: m["params"].update(upsample=0.1),
     "Localizer: upsample: 0.1 is below every scale at which class 'bar' is searched"),
]


@pytest.mark.parametrize("what, change, fragment", SIGNED_BAD, ids=[c[0] for c in SIGNED_BAD])
def test_signed_but_inconsistent_metadata_is_refused(model_path, tmp_path, what, change, fragment):
    meta, arrays = _parts(model_path)
    meta.pop("checksum")
    change(meta, arrays)
    bad = tmp_path / "bad.npz"
    _write(bad, meta, arrays)
    with pytest.raises(ModelFileError) as info:
        Localizer.load(bad)
    text = str(info.value)
    assert text.startswith(f"{bad}: the model's metadata is inconsistent (") and fragment in text, text
    assert text.endswith("); the file is damaged or was edited: train the model again") and "\n" not in text


def test_signed_but_inconsistent_haar_arrays_are_refused(haar_path, tmp_path):
    cases = [
        (lambda a: a["haar_0"].__setitem__((0, 3), 100), "template 0: a Haar feature extends past its 8 x 8 window"),
        (lambda a: a["haar_0"].__setitem__((1, 0), 7), "template 0: Haar feature coordinates out of range"),
        (lambda a: a.update(stage1_haar_0=np.array([0, 99], np.int32)),
         "template 0's first-stage features are not among its Haar features"),
        (lambda a: a.pop("stage1_haar_1"), "template 1: first-stage features missing"),
        (lambda a: a.pop("haar_0"), "template 0 lacks Haar features"),
        (lambda a: a.update(haar_0=a["haar_0"].astype(np.int64)), "template 0: array 'haar_0' is int64"),
    ]
    for k, (change, fragment) in enumerate(cases):
        meta, arrays = _parts(haar_path)
        meta.pop("checksum")
        change(arrays)
        _write(tmp_path / f"h{k}.npz", meta, arrays)
        with pytest.raises(ModelFileError, match="metadata is inconsistent") as info:
            Localizer.load(tmp_path / f"h{k}.npz")
        assert fragment in str(info.value), str(info.value)


def test_nan_and_unparsable_metadata_is_refused(model_path, tmp_path):
    meta, arrays = _parts(model_path)
    for k, text in enumerate([json.dumps(meta).replace('"presence_threshold": 0.02', '"presence_threshold": NaN'),
                              json.dumps(meta)[:-10], "[" * 100_000 + "]" * 100_000, '"just a string"']):
        _write(tmp_path / f"j{k}.npz", meta, arrays, sign=False, text=text)
        with pytest.raises(ModelFileError) as info:
            Localizer.load(tmp_path / f"j{k}.npz")
        expected = "not a classic_loc model file (unknown format)" if k == 3 else "the metadata is not valid JSON"
        assert str(info.value).startswith(f"{tmp_path / f'j{k}.npz'}: {expected}")


# ------------------------------------------------------------------ sizes declared before reading
def _npy_header(shape, dtype="<f4"):
    header = repr({"descr": dtype, "fortran_order": False, "shape": shape}).encode()
    header += b" " * (63 - (10 + len(header)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header


def _refused_load(path):
    """The ModelFileError of loading ``path``, the seconds it took and the peak of traced memory (bytes)."""
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(ModelFileError) as info:
            Localizer.load(path)
        return info, time.perf_counter() - t0, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_declared_10_gb_array_is_refused_fast_and_without_memory(model_path, tmp_path):
    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as dst:  # the header says 10 GiB, 16 bytes follow
        with zipfile.ZipFile(model_path) as src:
            for item in src.infolist():
                if item.filename != "weights_0.npy":
                    dst.writestr(item.filename, src.read(item.filename))
        dst.writestr("weights_0.npy", _npy_header((2_684_354_560,)) + bytes(16))
    info, elapsed, peak = _refused_load(bomb)
    assert str(info.value).startswith(f"{bomb}: array 'weights_0' declares shape (2684354560,) of float32 "
                                      "(10,737,418,240 bytes) in 16 bytes of data; the file is damaged")
    assert elapsed < 5.0 and peak < 5 * 2**20


def test_a_zip_bomb_is_refused_from_its_declared_sizes(model_path, tmp_path):
    bomb = tmp_path / "deflate_bomb.npz"
    with zipfile.ZipFile(model_path) as src, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            dst.writestr(item.filename, src.read(item.filename))
        with dst.open("zeros.npy", "w") as fh:  # 100 MiB of zeros, about 100 KB compressed
            fh.write(_npy_header((100 * 2**20 // 4,)))
            chunk = bytes(2**20)
            for _ in range(100):
                fh.write(chunk)
    assert bomb.stat().st_size < 2**20
    info, elapsed, peak = _refused_load(bomb)
    assert "the file declares 104,8" in str(info.value) and (
        f"bytes of arrays when uncompressed, more than the limit of {MAX_MODEL_BYTES:,} bytes "
        "(classic_loc.model_io.MAX_MODEL_BYTES); give a classic_loc model file (this one may be a zip bomb)") in str(
        info.value)
    assert MAX_MODEL_BYTES == 64 * 2**20 and elapsed < 5.0 and peak < 2**20


def test_an_oversized_file_and_other_dtypes_are_refused_up_front(model_path, tmp_path):
    big = tmp_path / "big.npz"
    with open(big, "wb") as fh:
        fh.truncate(MAX_MODEL_BYTES + 1)  # sparse: no time, no disk
    with pytest.raises(ModelFileError, match=r"big.npz: the file is 67,108,865 bytes, more than the limit of "
                                             r"67,108,864 bytes \(classic_loc.model_io.MAX_MODEL_BYTES\)"):
        Localizer.load(big)
    meta, arrays = _parts(model_path)
    for k, odd in enumerate([np.array(["ab"]), np.zeros(2, np.complex64), np.zeros(2, [("a", "<f4")])]):
        _write(tmp_path / f"odd{k}.npz", meta, {**arrays, "weights_0": odd}, sign=False)
        with pytest.raises(ModelFileError, match=r"array 'weights_0' has the dtype .*not a plain number type: it "
                                                 r"needs pickle or is damaged"):
            load_model(tmp_path / f"odd{k}.npz")


# ------------------------------------------------------------------ damage
def test_every_damaged_file_gives_a_model_file_error(model_path, haar_path, tmp_path):
    """Flipped, inserted and cut bytes: a ModelFileError or (rarely: bytes zip does not read) a working model."""
    outcomes = {"refused": 0, "loaded": 0}
    rng = np.random.default_rng(0)
    bad = tmp_path / "bad.npz"
    for good in (model_path, haar_path):
        data = good.read_bytes()
        variants = []
        for _ in range(150):
            b = bytearray(data)
            b[int(rng.integers(len(b)))] ^= int(rng.integers(1, 256))
            variants.append(bytes(b))
        variants += [data[:int(len(data) * f)] for f in np.linspace(0, 0.99, 40)]
        variants += [data[:p] + b"\x00\xff" + data[p:] for p in rng.integers(0, len(data), 30)]
        for v in variants:
            bad.write_bytes(v)
            try:
                Localizer.load(bad).detect(IMAGES[0])
                outcomes["loaded"] += 1
            except ModelFileError as exc:
                assert str(exc).startswith(f"{bad}: ") and "\n" not in str(exc)
                outcomes["refused"] += 1
    assert outcomes["refused"] >= 400  # of 440: flips in unused zip fields may leave a readable file
    for f in np.linspace(0, 0.99, 10):  # a cut file is always refused
        bad.write_bytes(model_path.read_bytes()[:int(model_path.stat().st_size * f)])
        with pytest.raises(ModelFileError):
            Localizer.load(bad)


def test_load_errors_are_data_errors_with_kind(model_path, tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"PK\x05\x06" + bytes(18))
    with pytest.raises(DataError) as info:
        Localizer.load(tmp_path / "junk.npz")
    assert isinstance(info.value, ModelFileError) and info.value.kind == "bad model file"


def test_a_model_path_that_is_a_fifo_or_folder_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "model.npz"
    os.mkfifo(fifo)
    (tmp_path / "dir.npz").mkdir()
    for path in (fifo, tmp_path / "dir.npz"):
        with pytest.raises(ModelFileError) as info:
            Localizer.load(path)
        assert str(info.value) == (f"{path}: the model path is not a regular file; give the path of a model file "
                                   "written by `classic_loc fit` or Localizer.save")
    with pytest.raises(ModelFileError, match="no such model file"):
        Localizer.load(tmp_path / "missing.npz")


def test_save_writes_through_a_character_device_and_returns_the_true_size(model_path, tmp_path):
    import stat
    import threading

    model = Localizer.load(model_path)
    null = tmp_path / "null"
    os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a private /dev/null
    size = model.save(null)
    assert stat.S_ISCHR(os.stat(null).st_mode) and sorted(os.listdir(tmp_path)) == ["m.npz", "null"]
    regular = tmp_path / "again.npz"
    assert model.save(regular) == size == regular.stat().st_size
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo, "rb").read()))
    reader.start()
    model.save(fifo)
    reader.join(10)
    assert got and len(got[0]) == size  # one in-memory zip, written once: a whole model came through the pipe
    (tmp_path / "from_pipe.npz").write_bytes(got[0])
    assert Localizer.load(tmp_path / "from_pipe.npz").classes_ == model.classes_
