"""The embedded demo data set: deterministic, readable as VOC, cached once."""

import os
import subprocess
import sys

import numpy as np
import pytest

import classic_loc._demo as demo
from classic_loc.datasets.voc import read_voc



N = 40


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    out = tmp_path_factory.mktemp("run1") / "demo"
    assert demo.generate(out, n_images=N, seed=3) == str(out)
    return str(out)


def _files(root):
    out = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as fh:
                out[os.path.relpath(path, root)] = fh.read()
    return out


def test_generation_is_deterministic(small, tmp_path):
    again = demo.generate(tmp_path / "demo", n_images=N, seed=3)
    a, b = _files(small), _files(again)
    assert sorted(a) == sorted(b)
    assert sum(k.startswith("JPEGImages") for k in a) == N
    assert sum(k.startswith("Annotations") for k in a) == N
    for key in a:
        assert a[key] == b[key], key
    other = _files(demo.generate(tmp_path / "seed4" / "demo", n_images=N, seed=4))
    assert other["JPEGImages/demo_0000.jpg".replace("/", os.sep)] != a["JPEGImages/demo_0000.jpg".replace("/", os.sep)]


def test_reads_back_as_voc(small):
    train, test = read_voc(small, "train"), read_voc(small, "test")
    assert len(train) == N - round(0.3 * N) and len(test) == round(0.3 * N)
    assert train.classes == test.classes == tuple(demo.CLASSES)
    assert len(train.classes) >= 3
    assert not {r.image_id for r in train} & {r.image_id for r in test}
    for ds in (train, test):
        counts = ds.counts()
        assert counts["empty_images"] >= 1
        assert counts["empty_images"] < len(ds) / 2
        assert counts["boxes"] > len(ds)
        for rec in ds:
            assert rec.n_objects <= 3
            img = ds.image(ds.index_of(rec.image_id))
            assert img.shape == (rec.height, rec.width, 3)
            b = rec.boxes
            assert np.all(b[:, 0] >= 0) and np.all(b[:, 1] >= 0)
            assert np.all(b[:, 2] <= rec.width) and np.all(b[:, 3] <= rec.height)
            assert np.all(b[:, 2] - b[:, 0] >= 8) and np.all(b[:, 3] - b[:, 1] >= 8)
    per_class = np.array(list(train.counts()["per_class"].values())) + np.array(
        list(test.counts()["per_class"].values()))
    assert np.all(per_class > 0)


def test_boxes_are_tight_and_apart(small):
    ds = read_voc(small, None)
    from classic_loc.boxes import box_iou

    sizes = []
    for rec in ds:
        iou = box_iou(rec.boxes, rec.boxes)
        np.fill_diagonal(iou, 0)
        assert np.all(iou < 0.3)
        sizes.extend(np.maximum(rec.boxes[:, 2] - rec.boxes[:, 0], rec.boxes[:, 3] - rec.boxes[:, 1]))
    assert 15 <= min(sizes) and max(sizes) <= 140


def test_demo_path_generates_once(tmp_path, monkeypatch):
    monkeypatch.setenv("CLASSIC_LOC_DATA", str(tmp_path))
    monkeypatch.setattr(demo, "DEMO_IMAGES", 12)
    calls = []
    path = demo.demo_path(progress=lambda done, total: calls.append((done, total)))
    assert path == os.path.join(str(tmp_path), f"demo-v{demo.DEMO_VERSION}")
    assert calls[-1] == (12, 12)
    assert sorted(os.listdir(tmp_path)) == [f"demo-v{demo.DEMO_VERSION}"]  # no partial folder left
    assert len(read_voc(path, "train")) + len(read_voc(path, "test")) == 12
    marker = os.path.join(path, "DONE")
    mtime = os.stat(marker).st_mtime_ns
    calls.clear()
    assert demo.demo_path(progress=lambda done, total: calls.append(done)) == path
    assert calls == [] and os.stat(marker).st_mtime_ns == mtime


def test_demo_path_replaces_incomplete_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("CLASSIC_LOC_DATA", str(tmp_path))
    monkeypatch.setattr(demo, "DEMO_IMAGES", 5)
    half = tmp_path / f"demo-v{demo.DEMO_VERSION}"
    (half / "Annotations").mkdir(parents=True)  # as if written by hand or by a broken run
    path = demo.demo_path()
    assert os.path.isfile(os.path.join(path, "DONE"))
    assert len(read_voc(path, None)) == 5
    assert sorted(os.listdir(tmp_path)) == [f"demo-v{demo.DEMO_VERSION}"]


def test_script_help():
    script = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "generate.py")
    if not os.path.isfile(script):
        pytest.skip("not a source checkout")
    out = subprocess.run([sys.executable, script, "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "OUT_DIR" in out.stdout.upper() and "--n-images" in out.stdout


def test_demo_path_interrupted_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("CLASSIC_LOC_DATA", str(tmp_path))
    monkeypatch.setattr(demo, "DEMO_IMAGES", 6)

    def interrupt(done, total):
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        demo.demo_path(progress=interrupt)
    assert os.listdir(tmp_path) == []
