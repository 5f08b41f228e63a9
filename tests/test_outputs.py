"""Output paths of every kind: devices and FIFOs are written through, links keep, odd paths are refused.

Never a real device: the character devices here are private nodes made in
tmp_path (``os.mknod``, the numbers of /dev/null, so a write through one goes
nowhere), and every test checks they are still character devices afterwards.
"""

import errno
import hashlib
import json
import os
import re
import shutil
import socket
import stat
import tempfile
import threading

import cv2
import numpy as np
import pytest

import classic_loc.workflow as wf
from classic_loc import Localizer
from classic_loc._fileio import atomic_path, atomic_write_text, output_kind
from classic_loc.cli import main
from classic_loc.errors import DataError

QUICK = ["--quiet", "--set", "mining_rounds=0", "--set", "n_random_negatives=200"]
ROOT = os.geteuid() == 0 if hasattr(os, "geteuid") else False
needs_root = pytest.mark.skipif(not ROOT or not hasattr(os, "mknod"), reason="making device nodes needs root")
needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")


@pytest.fixture
def photos(voc, tmp_path):
    jpgs = sorted((voc / "JPEGImages").iterdir())
    root = tmp_path / "photos"
    root.mkdir()
    shutil.copy(jpgs[0], root / "a.jpg")
    shutil.copy(jpgs[1], root / "b.jpg")
    return root


def _null(path):
    """A private character device with /dev/null's numbers (writes to it go nowhere)."""
    os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    return path


def _is_null(path):
    st = os.lstat(path)
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)


def _one_line(capsys, prefix="error: "):
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(prefix), err
    return lines[0]


def _hash(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


class _Reader(threading.Thread):
    """Reads a FIFO to its end (opened by the thread, so the writer's open does not block forever)."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.path, self.data = path, None
        self.start()

    def run(self):
        with open(self.path, "rb") as fh:
            self.data = fh.read()


# ------------------------------------------------------------------ 1. devices and FIFOs are written through
@needs_root
def test_a_character_device_output_stays_a_device(voc, trained, photos, tmp_path, capsys):
    null = _null(tmp_path / "null")
    assert main(["predict", "--model", str(trained), str(photos), "--out", str(null), "--quiet"]) == 0
    assert _is_null(null)
    # fit: the model and the report to devices (the same one twice is fine: nothing is replaced)
    assert main(["fit", "--data", str(voc), "--out", str(null), "--report", str(null)] + QUICK) == 0
    assert _is_null(null)
    # no --report: no report file is made beside a device
    capsys.readouterr()
    assert main(["fit", "--data", str(voc), "--out", str(null)] + QUICK) == 0
    out = capsys.readouterr().out
    assert re.search(r"\n +no report +--out is a stream; give --report PATH for one\n", out), out
    assert "predict --model" not in out  # nothing to predict with: the model went into the device
    assert _is_null(null)
    report = tmp_path / "r.json"
    assert main(["fit", "--data", str(voc), "--out", str(null), "--report", str(report)] + QUICK) == 0
    assert _is_null(null) and json.loads(report.read_text())["metrics"]["n_images"] > 0
    preds = tmp_path / "p.json"
    preds.write_text("[]")
    assert main(["evaluate", "--gt", str(voc), "--pred", str(preds), "--out", str(null)]) == 0
    assert _is_null(null)
    assert sorted(os.listdir(tmp_path)) == ["null", "p.json", "photos", "r.json"]  # no temporary or probe file


@needs_root
def test_the_writability_check_makes_no_probe_beside_a_device(tmp_path, monkeypatch):
    null = _null(tmp_path / "null")
    real_open = os.open
    monkeypatch.setattr(os, "open", lambda p, *a, **k: pytest.fail(f"probe {p}") if ".classic-loc-probe" in
                        os.fspath(p) else real_open(p, *a, **k))
    wf.check_writable("--out", null)
    assert os.listdir(tmp_path) == ["null"]
    null.chmod(0o444)
    monkeypatch.setattr(os, "access", lambda p, mode: False)  # root may write anything: pretend not
    with pytest.raises(DataError, match=r"null: --out: cannot be written \(permission denied\)"):
        wf.check_writable("--out", null)


@needs_fifo
def test_a_fifo_output_receives_the_results(trained, photos, tmp_path, capsys):
    plain = tmp_path / "plain.json"
    assert main(["predict", "--model", str(trained), str(photos), "--out", str(plain), "--quiet"]) == 0
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = _Reader(fifo)
    assert main(["predict", "--model", str(trained), str(photos), "--out", str(fifo), "--quiet"]) == 0
    reader.join(30)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert json.loads(reader.data) == json.loads(plain.read_text()) != []
    assert sorted(os.listdir(tmp_path)) == ["photos", "pipe", "plain.json"]


@needs_fifo
def test_a_model_saves_into_a_pipe(voc, trained, tmp_path):
    """np.savez writes a zip to a stream that cannot seek; the bytes read back load as the same model."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    model = Localizer.load(trained)
    reader = _Reader(fifo)
    model.save(fifo)
    reader.join(30)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and reader.data[:2] == b"PK"
    copy = tmp_path / "copy.npz"
    copy.write_bytes(reader.data)
    again = Localizer.load(copy)
    assert again.classes_ == model.classes_
    image = cv2.cvtColor(cv2.imread(str(sorted((voc / "JPEGImages").iterdir())[0])), cv2.COLOR_BGR2RGB)
    a, b = model.detect(image), again.detect(image)
    assert len(a.scores) and np.array_equal(a.boxes, b.boxes) and np.array_equal(a.scores, b.scores)


def test_an_open_file_of_the_process_is_written_through(tmp_path):
    """/dev/stdout and /dev/fd/N lead to /proc/self/fd/N: written through the open file, never replaced."""
    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc")
    target = tmp_path / "stdout.txt"
    with open(target, "w") as fh:
        link = tmp_path / "out"
        os.symlink(f"/proc/self/fd/{fh.fileno()}", link)
        assert output_kind(link) == "stream"
        inode = os.stat(target).st_ino
        atomic_write_text(link, "through")
        assert os.stat(target).st_ino == inode and target.read_text() == "through"
    assert os.path.islink(link)


@needs_root
def test_other_existing_non_files_are_refused_before_any_work(voc, trained, photos, tmp_path, capsys, no_training):
    sock_path = os.path.join(tempfile.mkdtemp(dir=tmp_path), "s")  # short: AF_UNIX paths are limited
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(sock_path)
        block = tmp_path / "blk"
        os.mknod(block, stat.S_IFBLK | 0o600, os.makedev(7, 255))  # never opened: refused first
        for path, kind in ((sock_path, "a socket"), (str(block), "a block device")):
            for argv in (["predict", "--model", str(trained), str(photos), "--out", path],
                         ["fit", "--data", str(voc), "--out", path] + QUICK,
                         ["fit", "--data", str(voc), "--out", str(tmp_path / "m.npz"), "--report", path] + QUICK):
                assert main(argv) == 2
                line = _one_line(capsys)
                assert line.endswith(f"{path}: {argv[argv.index(path) - 1]}: is {kind}, not a regular file; give a "
                                     "file path (or a character device or FIFO, written through)"), line
        assert stat.S_ISSOCK(os.lstat(sock_path).st_mode) and stat.S_ISBLK(os.lstat(block).st_mode)
        with pytest.raises(DataError, match="is a block device, not a regular file; give a file path"):
            with atomic_path(block):
                pytest.fail("a block device was opened for writing")
    finally:
        sock.close()
    assert main(["predict", "--model", str(trained), str(photos), "--out", str(tmp_path)]) == 2
    assert "--out: is a folder; give a file path" in _one_line(capsys)
    assert not (tmp_path / "m.npz").exists()


# ------------------------------------------------------------------ 2. links
def test_an_output_link_stays_a_link_and_its_target_is_replaced(trained, photos, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    target = elsewhere / "real.json"
    target.write_text("old")
    link = tmp_path / "p.json"
    os.symlink(os.path.relpath(target, tmp_path), link)
    chain = tmp_path / "chain.json"
    os.symlink(link, chain)
    assert main(["predict", "--model", str(trained), str(photos), "--out", str(chain), "--quiet"]) == 0
    assert os.path.islink(chain) and os.path.islink(link) and not os.path.islink(target)
    results = json.loads(target.read_text())
    assert results and {r["image_id"] for r in results} <= {"a.jpg", "b.jpg"}
    assert sorted(os.listdir(elsewhere)) == ["real.json"]  # the temporary file was beside the target, and is gone
    dangling = tmp_path / "d.json"
    os.symlink(elsewhere / "new.json", dangling)
    atomic_write_text(dangling, "made")
    assert os.path.islink(dangling) and (elsewhere / "new.json").read_text() == "made"


# ------------------------------------------------------------------ 3. empty paths
@pytest.mark.parametrize("argv", [
    ["fit", "--out", ""], ["fit", "--report", ""], ["fit", "--data", ""], ["fit", "--test-data", ""],
    ["predict", "--model", "", "x.jpg"], ["predict", "--model", "m.npz", ""], ["predict", "--model", "m.npz",
                                                                              "x.jpg", "--out", ""],
    ["predict", "--model", "m.npz", "x.jpg", "--draw", ""], ["evaluate", "--gt", "", "--pred", "p.json"],
    ["evaluate", "--gt", "g", "--pred", ""], ["evaluate", "--gt", "g", "--pred", "p.json", "--out", ""],
    ["demo", "--out", ""],
])
def test_an_empty_path_is_refused_at_the_start(argv, capsys, no_training, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    line = _one_line(capsys)
    assert "'' is an empty path; give a file or folder path" in line and line.startswith(f"error: classic-loc {argv[0]}")
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------------------ 4. a rescue that fails
@pytest.fixture
def places(tmp_path, monkeypatch):
    """The three rescue locations as empty private folders: temp, current, home."""
    out = {name: tmp_path / name for name in ("tmp", "cwd", "home")}
    for p in out.values():
        p.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(out["tmp"]))
    monkeypatch.chdir(out["cwd"])
    monkeypatch.setenv("HOME", str(out["home"]))
    return out


def _failing_save(monkeypatch, works_under=None):
    real = Localizer.save

    def save(self, path):
        if works_under is not None and str(path).startswith(str(works_under)):
            return real(self, path)
        raise OSError(errno.EFBIG, os.strerror(errno.EFBIG))  # as a write past `ulimit -f`: names no file

    monkeypatch.setattr(Localizer, "save", save)


def test_when_every_rescue_fails_one_line_says_the_model_is_lost(voc, tmp_path, places, capsys, monkeypatch):
    out = tmp_path / "out" / "m.npz"
    _failing_save(monkeypatch)
    assert main(["fit", "--data", str(voc), "--out", str(out)] + QUICK) == 1
    line = _one_line(capsys)
    t, c, h = places["tmp"], places["cwd"], places["home"]
    assert line == (f"error: {out}: cannot write the model (File too large), and keeping a copy failed too "
                    f"(in {t}: File too large; in {c}: File too large; in {h}: File too large): the model is lost; "
                    "free space there or write it elsewhere (fit --out PATH), and run again")
    assert [os.listdir(p) for p in places.values()] == [[], [], []]  # no empty rescue folder left
    report = json.loads((tmp_path / "out" / "m.report.json").read_text())  # the metrics are not lost
    assert report["model"] is None and report["model_bytes"] is None and report["metrics"]["n_images"] > 0
    assert os.listdir(tmp_path / "out") == ["m.report.json"]


def test_the_rescue_tries_temp_then_current_then_home(voc, tmp_path, places, capsys, monkeypatch):
    out = tmp_path / "m.npz"
    _failing_save(monkeypatch, works_under=places["home"])
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "gone"))  # mkdtemp fails there
    assert main(["fit", "--data", str(voc), "--out", str(out)] + QUICK) == 1
    line = _one_line(capsys)
    (kept_dir,) = os.listdir(places["home"])
    kept = places["home"] / kept_dir / "m.npz"
    assert kept_dir.startswith("classic-loc-rescue-")
    assert line == (f"error: {out}: cannot write the model (File too large); it is kept in {kept}: copy it from "
                    "there, or free space and run again")
    assert Localizer.load(kept).classes_ == ("ring", "triangle", "cross")
    assert os.listdir(places["cwd"]) == [] and not (tmp_path / "gone").exists()


def test_an_unnamed_write_error_names_the_output(tmp_path):
    out = tmp_path / "p.json"
    out.write_text("previous")
    with pytest.raises(OSError) as info:
        with atomic_path(out) as tmp:
            with open(tmp, "w") as fh:
                fh.write("partial")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert info.value.filename == str(out) and info.value.errno == errno.ENOSPC
    assert out.read_text() == "previous" and os.listdir(tmp_path) == ["p.json"]


# ------------------------------------------------------------------ 5. file names that are not UTF-8
@pytest.mark.skipif(os.name != "posix", reason="byte file names are a POSIX thing")
def test_a_file_name_that_is_not_utf8_is_refused_or_skipped(trained, photos, tmp_path, capsys):
    try:
        bad = os.path.join(os.fsencode(photos), b"\xff\xfebad.jpg")
        shutil.copy(os.fsencode(photos / "a.jpg"), bad)
    except (OSError, UnicodeError):
        pytest.skip("the file system refuses such names")
    out = tmp_path / "p.json"
    m = ["predict", "--model", str(trained), str(photos), "--out", str(out), "--quiet"]
    assert main(m) == 2
    assert _one_line(capsys) == (f"error: {photos}/\\xff\\xfebad.jpg: the file name is not valid UTF-8, so its "
                                 "image_id cannot be written in JSON; rename the file to a UTF-8 name (or pass "
                                 "--skip-bad to skip it)")
    assert not out.exists()
    assert main(m + ["--skip-bad"]) == 0
    warning = _one_line(capsys, "warning: ")
    assert warning.startswith("warning: skipped 1 image whose file name is not UTF-8 (first: ")
    results = json.loads(out.read_bytes().decode("utf-8", "strict"))  # strict JSON, strict UTF-8
    assert {r["image_id"] for r in results} <= {"a.jpg", "b.jpg"} and results


# ------------------------------------------------------------------ 6. --draw inside an input folder, twice
def test_drawing_into_an_input_folder_can_run_again(trained, photos, tmp_path, capsys):
    drawn = photos / "drawn"
    originals = {n: _hash(photos / n) for n in ("a.jpg", "b.jpg")}
    m = ["predict", "--model", str(trained), str(photos), "--draw", str(drawn), "--quiet"]
    for _ in range(2):
        assert main(m + ["--out", str(tmp_path / "p.json")]) == 0
        assert {r["image_id"] for r in json.loads((tmp_path / "p.json").read_text())} <= {"a.jpg", "b.jpg"}
        assert sorted(os.listdir(drawn)) == ["a.jpg", "b.jpg"]
        assert {n: _hash(photos / n) for n in originals} == originals
    assert os.path.isfile(wf.drawn_manifest(drawn)) and wf.drawn_manifest(drawn) == str(photos / ".drawn"
                                                                                        ".classic-loc-drawn.json")
    # an image named explicitly inside the draw folder is an input: refused, as any overwrite
    before = _hash(drawn / "a.jpg")
    assert main(["predict", "--model", str(trained), str(drawn / "a.jpg"), str(photos), "--draw", str(drawn)]) == 2
    assert "--draw: would overwrite the input image" in _one_line(capsys) and _hash(drawn / "a.jpg") == before
    # a drawn file changed since (not ours any more) is an input again: refused
    with open(drawn / "b.jpg", "ab") as fh:
        fh.write(b"edited")
    before = _hash(drawn / "b.jpg")
    assert main(m) == 2
    assert "would overwrite the input image" in _one_line(capsys) and _hash(drawn / "b.jpg") == before


def test_a_draw_folder_outside_the_inputs_writes_no_list(trained, photos, tmp_path):
    assert main(["predict", "--model", str(trained), str(photos), "--draw", str(tmp_path / "d"), "--quiet",
                 "--out", str(tmp_path / "p.json")]) == 0
    assert sorted(os.listdir(tmp_path)) == ["d", "p.json", "photos"]


# ------------------------------------------------------------------ 7, 8. --set cascade and booleans
def test_cascade_on_a_model_without_haar_features_warns(trained, photos, tmp_path, capsys):
    m = ["predict", "--model", str(trained), str(photos), "--quiet", "--out", str(tmp_path / "p.json")]
    assert main(m + ["--set", "cascade=true"]) == 0
    assert _one_line(capsys, "warning: ") == (f"warning: {trained}: --set cascade=true has no effect: the model has no "
                                              "Haar features (train with --features haar, fhog+haar or hog+haar for "
                                              "a cascade)")
    assert main(m + ["--set", "cascade=false"]) == 0
    assert capsys.readouterr().err == ""


def test_a_bad_boolean_in_set_says_true_or_false(voc, trained, photos, tmp_path, capsys, no_training):
    assert main(["predict", "--model", str(trained), str(photos), "--set", "refine=1"]) == 2
    line = _one_line(capsys)
    assert line.endswith("refine: 1 (int) is not a bool; use true or false (--set values are JSON: --set "
                         "refine=true)"), line
    assert main(["fit", "--data", str(voc), "--out", str(tmp_path / "m.npz"), "--set", "flip=0"] + QUICK) == 2
    assert _one_line(capsys).endswith("flip: 0 (int) is not a bool; use true or false (--set values are JSON: "
                                      "--set flip=true)")
    assert main(["fit", "--data", str(voc), "--out", str(tmp_path / "m.npz"), "--set", "flip=False"] + QUICK) == 2
    assert "False is Python, not JSON (VALUE is read as JSON); write --set flip=false" in _one_line(capsys)
    assert os.listdir(tmp_path) == ["photos"]
