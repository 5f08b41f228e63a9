"""The command line never writes over its inputs, checks its outputs first, and ends with one line.

Every refused command is checked against the sha256 of every file it could
have touched, before and after. The commands run in-process through
``classic_loc.cli.main`` on a 40-image demo data set and a model trained on
it with quick settings.
"""

import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys

import cv2
import pytest

import classic_loc.workflow as wf
from classic_loc import Localizer, load_dataset
from classic_loc.cli import build_parser, main
from classic_loc.errors import DataError

QUICK = ["--quiet", "--set", "mining_rounds=0", "--set", "n_random_negatives=200"]


@pytest.fixture
def model_file(trained, tmp_path):
    path = tmp_path / "model.npz"
    shutil.copy(trained, path)
    return path


@pytest.fixture
def photos(voc, tmp_path):
    """photos/a.jpg, photos/b.jpg, photos/sub/a.jpg, photos/sub/c.png: four different images."""
    jpgs = sorted((voc / "JPEGImages").iterdir())
    root = tmp_path / "photos"
    (root / "sub").mkdir(parents=True)
    shutil.copy(jpgs[0], root / "a.jpg")
    shutil.copy(jpgs[1], root / "b.jpg")
    shutil.copy(jpgs[2], root / "sub" / "a.jpg")
    cv2.imwrite(str(root / "sub" / "c.png"), cv2.imread(str(jpgs[3])))
    return root


def _hashes(*roots):
    out = {}
    for root in roots:
        root = str(root)
        files = [root] if os.path.isfile(root) else [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs]
        for path in files:
            with open(path, "rb") as fh:
                out[path] = hashlib.sha256(fh.read()).hexdigest()
    return out


def _one_error(capsys):
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def _refused(capsys, argv, fragment, *watched):
    """``argv`` exits 2 with one line holding ``fragment`` and changes no file under ``watched``."""
    before = _hashes(*watched)
    assert main(argv) == 2
    line = _one_error(capsys)
    assert fragment in line, line
    assert _hashes(*watched) == before
    return line


# ------------------------------------------------------------------ 1. never over an input
def test_predict_refuses_to_draw_or_write_over_its_inputs(photos, model_file, tmp_path, capsys):
    m = ["predict", "--model", str(model_file), "--quiet"]
    p = str(photos)
    inputs = (photos, model_file)
    # the input folder itself (this overwrote 20 original photos)
    line = _refused(capsys, m + [p, "--draw", p], "--draw: would overwrite the input image", *inputs)
    assert line.startswith(f"error: {photos / 'a.jpg'}: --draw")
    # an explicit image drawn into its own folder
    _refused(capsys, m + [str(photos / "b.jpg"), "--draw", p], "would overwrite the input image", *inputs)
    # a folder that contains the inputs where their drawn copies would land on them
    _refused(capsys, m + [str(photos / "sub"), str(photos / "a.jpg"), "--draw", p], "would overwrite the input image",
             *inputs)
    # a folder inside the input folder: photos/a.jpg would be drawn over photos/sub/a.jpg
    _refused(capsys, m + [p, "--draw", str(photos / "sub")], "would overwrite the input image", *inputs)
    # --out over the model, an input image, a drawn file, or a link to the model
    _refused(capsys, m + [p, "--out", str(model_file)], "--out: would overwrite the model file", *inputs)
    _refused(capsys, m + [p, "--out", str(photos / "sub" / "c.png")], "--out: would overwrite the input image",
             *inputs)
    drawn = tmp_path / "drawn"
    _refused(capsys, m + [p, "--draw", str(drawn), "--out", str(drawn / "b.jpg")], "is also the --out output",
             *inputs)
    os.symlink(model_file, tmp_path / "link.json")
    _refused(capsys, m + [p, "--out", str(tmp_path / "link.json")], "would overwrite the model file", *inputs)
    assert not drawn.exists()  # refused before any work


def test_fit_refuses_outputs_over_its_data(voc, tmp_path, capsys, no_training):
    data = tmp_path / "data"
    shutil.copytree(voc, data)
    other = tmp_path / "other"
    shutil.copytree(voc, other)
    fit = ["fit", "--data", str(data)] + QUICK
    watched = (data, other)
    same = str(tmp_path / "x.npz")
    _refused(capsys, fit + ["--out", same, "--report", same], "--report: is also the --out output", *watched)
    xml = data / "Annotations" / "demo_0000.xml"
    _refused(capsys, fit + ["--report", str(xml)], "would overwrite a file of the training data folder", *watched)
    _refused(capsys, fit + ["--out", str(data / "ImageSets" / "Main" / "train.txt")],
             "--out: would overwrite a file of the training data folder", *watched)
    _refused(capsys, fit + ["--report", str(data / "JPEGImages" / "demo_0003.jpg")], "training data folder",
             *watched)
    _refused(capsys, fit + ["--test-data", str(other), "--report", str(other / "classes.txt")],
             "--report: would overwrite a file of the test data (--test-data) folder", *watched)
    # single-file data sets: the COCO or CSV file itself, as --data or as --test-data
    coco = tmp_path / "instances.json"
    coco.write_text("{}")
    _refused(capsys, ["fit", "--data", str(coco), "--out", str(coco)] + QUICK, "--out: would overwrite the training data",
             coco, *watched)
    csv = tmp_path / "test.csv"
    csv.write_text("image,x1,y1,x2,y2,label\n")
    _refused(capsys, fit + ["--test-data", str(csv), "--report", str(csv)],
             "--report: would overwrite the test data (--test-data)", csv, *watched)
    # an image of the data set reached through a link from outside the folder
    os.link(data / "JPEGImages" / "demo_0005.jpg", tmp_path / "hard.jpg")
    _refused(capsys, fit + ["--report", str(tmp_path / "hard.jpg")], "--report: would overwrite the training image",
             *watched)


def test_evaluate_and_demo_refuse_to_overwrite_their_inputs(voc, tmp_path, capsys):
    from classic_loc.datasets import write_coco

    data = tmp_path / "data"
    shutil.copytree(voc, data)
    preds = tmp_path / "preds.json"
    preds.write_text("[]")
    ev = ["evaluate", "--gt", str(data), "--split", "test", "--pred", str(preds)]
    _refused(capsys, ev + ["--out", str(preds)], "--out: would overwrite the predictions file", data, preds)
    _refused(capsys, ev + ["--out", str(data / "Annotations" / "demo_0001.xml")],
             "would overwrite a file of the ground truth folder", data, preds)
    gt = tmp_path / "gt.json"
    write_coco(load_dataset(data, split="test"), gt)
    _refused(capsys, ["evaluate", "--gt", str(gt), "--pred", str(preds), "--out", str(gt)],
             "--out: would overwrite the ground truth", gt, preds, data)
    # demo --out: never into a folder that holds files, never over a file
    _refused(capsys, ["demo", "--out", str(data)], "--out: is a folder with files in it", data)
    _refused(capsys, ["demo", "--out", str(preds)], "--out: exists and is not a folder", preds)


def test_demo_writes_a_new_folder_whole(tmp_path, capsys, monkeypatch):
    import classic_loc._demo as demo_pkg

    real = demo_pkg.generate
    monkeypatch.setattr(demo_pkg, "generate", lambda out: real(out, n_images=6))
    assert main(["demo", "--out", str(tmp_path / "d")]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "d")
    assert sorted(os.listdir(tmp_path / "d")) == ["Annotations", "ImageSets", "JPEGImages", "classes.txt"]
    assert len(load_dataset(tmp_path / "d", split="train")) + len(load_dataset(tmp_path / "d", split="test")) == 6
    assert sorted(os.listdir(tmp_path)) == ["d"]  # nothing left beside it

    def interrupted(out):
        real(out, n_images=2)
        raise KeyboardInterrupt

    monkeypatch.setattr(demo_pkg, "generate", interrupted)
    assert main(["demo", "--out", str(tmp_path / "e")]) == 130
    assert sorted(os.listdir(tmp_path)) == ["d"]  # no half data set


# ------------------------------------------------------------------ 2. same file name in two folders
def test_same_file_name_in_two_folders_keeps_results_and_drawings_apart(voc, model_file, tmp_path, capsys):
    jpgs = sorted((voc / "JPEGImages").iterdir())
    for sub, src in (("a", jpgs[4]), ("b", jpgs[6])):
        (tmp_path / sub).mkdir()
        shutil.copy(src, tmp_path / sub / "img.jpg")
    out, drawn = tmp_path / "p.json", tmp_path / "drawn"
    assert main(["predict", "--model", str(model_file), str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(out),
                 "--draw", str(drawn), "--quiet", "--threshold", "0"]) == 0
    results = json.loads(out.read_text())
    model = Localizer.load(model_file)
    for sub in ("a", "b"):  # each image's results are its own, under its relative path
        alone = wf.predict_files(model, [tmp_path / sub / "img.jpg"], threshold=0)
        assert alone and {r["image_id"] for r in alone} == {"img.jpg"}
        assert [r for r in results if r["image_id"] == f"{sub}/img.jpg"] == [{**r, "image_id": f"{sub}/img.jpg"}
                                                                               for r in alone]
    assert {r["image_id"] for r in results} == {"a/img.jpg", "b/img.jpg"}
    a, b = (drawn / "a" / "img.jpg").read_bytes(), (drawn / "b" / "img.jpg").read_bytes()
    assert a[:2] == b[:2] == b"\xff\xd8" and a != b
    assert sorted(os.listdir(drawn)) == ["a", "b"]


def test_image_ids_are_paths_relative_to_the_common_folder(photos, model_file, tmp_path, capsys):
    ids = lambda inputs: [i for _, i in wf.collect_images(inputs)]  # noqa: E731
    assert ids([photos]) == ["a.jpg", "b.jpg", "sub/a.jpg", "sub/c.png"]
    assert ids([photos / "sub" / "c.png"]) == ["c.png"]
    assert ids([photos / "a.jpg", photos / "sub"]) == ["a.jpg", "sub/a.jpg", "sub/c.png"]
    assert ids([photos / "sub", photos / "sub" / "a.jpg"]) == ["a.jpg", "c.png"]  # the same file once
    assert wf.relative_ids(["/x/a/img.jpg", "/x/b/img.jpg"]) == ["a/img.jpg", "b/img.jpg"]
    (photos / ".hidden.jpg").write_bytes(b"x")
    (photos / ".cache").mkdir()
    shutil.copy(photos / "a.jpg", photos / ".cache" / "t.jpg")
    (photos / "notes.txt").write_text("x")
    assert ids([photos]) == ["a.jpg", "b.jpg", "sub/a.jpg", "sub/c.png"]
    drawn = tmp_path / "drawn"
    assert main(["predict", "--model", str(model_file), str(photos), "--draw", str(drawn), "--quiet"]) == 0
    assert {r["image_id"] for r in json.loads(capsys.readouterr().out)} <= {"a.jpg", "b.jpg", "sub/a.jpg", "sub/c.png"}
    assert (drawn / "sub" / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # drawn in the input's format
    assert sorted(os.path.relpath(os.path.join(d, f), drawn) for d, _, fs in os.walk(drawn) for f in fs) == \
        ["a.jpg", "b.jpg", os.path.join("sub", "a.jpg"), os.path.join("sub", "c.png")]


# ------------------------------------------------------------------ 4. outputs checked before the work
def test_unwritable_outputs_are_found_before_training(voc, tmp_path, capsys, monkeypatch, no_training):
    fit = ["fit", "--data", str(voc)] + QUICK
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    _refused(capsys, fit + ["--out", str(blocker / "sub" / "m.npz")], f"{blocker} is a file, not a folder", blocker)
    _refused(capsys, fit + ["--report", str(tmp_path)], "--report: is a folder; give a file path")
    real_open = os.open

    def full_disk(path, *args, **kwargs):
        if ".classic-loc-probe" in os.fspath(path):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", full_disk)
    line = _refused(capsys, fit + ["--out", str(tmp_path / "new" / "m.npz")], "--out: cannot write in")
    assert line.endswith(f"cannot write in {tmp_path} (No space left on device); choose a writable location with "
                         "free space")
    assert not (tmp_path / "new").exists()
    monkeypatch.setattr(os, "open", real_open)
    if os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        try:
            _refused(capsys, fit + ["--out", str(ro / "m.npz")], "(Permission denied)")
        finally:
            ro.chmod(0o700)
    assert sorted(os.listdir(tmp_path)) == ["afile"]  # no probe file left


def test_predict_checks_its_outputs_before_reading_an_image(photos, model_file, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(wf, "read_image", lambda p: pytest.fail("an image was read before the checks"))
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    m = ["predict", "--model", str(model_file), str(photos), "--quiet"]
    _refused(capsys, m + ["--draw", str(blocker)], "--draw: exists and is not a folder", blocker, photos)
    _refused(capsys, m + ["--out", str(blocker / "p.json")], "is a file, not a folder", blocker, photos)


def test_a_failed_final_write_keeps_the_model_in_a_rescue_folder(voc, tmp_path, capsys, monkeypatch):
    out = tmp_path / "m.npz"
    out.write_bytes(b"previous model")
    real_save = Localizer.save

    def save(self, path):
        if os.path.abspath(path) == str(out):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real_save(self, path)

    monkeypatch.setattr(Localizer, "save", save)
    assert main(["fit", "--data", str(voc), "--out", str(out)] + QUICK) == 1
    line = _one_error(capsys)
    prefix = f"error: {out}: cannot write the model (No space left on device); it is kept in "
    assert line.startswith(prefix) and line.endswith(": copy it from there, or free space and run again")
    kept = line[len(prefix):-len(": copy it from there, or free space and run again")]
    try:
        assert os.path.basename(kept) == "m.npz" and os.path.dirname(kept) != str(tmp_path)
        assert Localizer.load(kept).classes_ == ("ring", "triangle", "cross")
        assert out.read_bytes() == b"previous model"
        report = json.loads((tmp_path / "m.report.json").read_text())
        assert report["model"] == kept and report["model_bytes"] == os.path.getsize(kept)
        assert sorted(os.listdir(tmp_path)) == ["m.npz", "m.report.json"]
    finally:
        shutil.rmtree(os.path.dirname(kept), ignore_errors=True)


# ------------------------------------------------------------------ 5. exit status and one line
def test_internal_errors_and_write_failures_exit_1_with_one_line(voc, tmp_path, capsys, monkeypatch):
    import classic_loc.cli as cli
    import classic_loc.evaluation as evaluation

    def boom(args):
        raise RuntimeError("boom\non two lines")

    monkeypatch.setattr(cli, "_cmd_demo", boom)
    monkeypatch.delenv("CLASSIC_LOC_DEBUG", raising=False)
    assert main(["demo"]) == 1
    assert capsys.readouterr().err == ("error: internal error: RuntimeError: boom on two lines; please report it "
                                       "(set CLASSIC_LOC_DEBUG=1 for the traceback)\n")
    monkeypatch.setenv("CLASSIC_LOC_DEBUG", "1")
    with pytest.raises(RuntimeError, match="boom"):
        main(["demo"])
    monkeypatch.delenv("CLASSIC_LOC_DEBUG")

    def eio(result, path):
        raise OSError(errno.EIO, os.strerror(errno.EIO), str(path))

    monkeypatch.setattr(evaluation, "save_json", eio)
    preds = tmp_path / "p.json"
    preds.write_text("[]")
    report = tmp_path / "r.json"
    assert main(["evaluate", "--gt", str(voc), "--split", "test", "--pred", str(preds), "--out", str(report)]) == 1
    assert capsys.readouterr().err == f"error: {report}: Input/output error\n"


@pytest.mark.parametrize("setting, fragment", [
    ("C=abc", "--set: C=abc: 'abc' is not a JSON number; write a number, e.g. --set C="),
    ("flip=False", "--set: flip=False: False is Python, not JSON (VALUE is read as JSON); write --set flip=false"),
    ("flip=yes", "--set: flip=yes: 'yes' is not a JSON boolean; write --set flip=true or --set flip=false"),
    ("bogus_param=1", "--set: bogus_param: is not a Localizer parameter"),
    ("window_area", "--set: window_area: expected NAME=VALUE"),
    ("window_cells=" + "[" * 50000 + "]" * 50000, "nested too deeply"),
    ('window_cells="x"', "window_cells"),
    ("cell_size=1.5", "cell_size"),
    ("scale_step=1.00001", "scale_step"),
])
def test_bad_set_values_are_one_line(voc, tmp_path, capsys, no_training, setting, fragment):
    assert main(["fit", "--data", str(voc), "--out", str(tmp_path / "m.npz"), "--quiet", "--set", setting]) == 2
    assert fragment in _one_error(capsys)
    assert os.listdir(tmp_path) == []


def test_bad_prediction_settings_are_one_line(photos, model_file, capsys):
    m = ["predict", "--model", str(model_file), str(photos)]
    for setting, fragment in [("scale_step=abc", "'abc' is not a JSON number"),
                              ("cascade=True", "True is Python, not JSON"),
                              ("scale_step=1.00001", "scale_step"), ("nms_iou=[1, 2]", "nms_iou"),
                              ("cell_size=4", "cell_size: is not a prediction setting")]:
        assert main(m + ["--set", setting]) == 2
        assert fragment in _one_error(capsys)


@pytest.mark.parametrize("argv, fragment", [
    (["evaluate", "--iou", "nan"], "argument --iou: nan is not in (0, 1]"),
    (["evaluate", "--iou", "1.5"], "argument --iou: 1.5 is not in (0, 1]"),
    (["evaluate", "--iou", "-1"], "argument --iou: -1 is not in (0, 1]"),
    (["evaluate", "--iou", "0"], "argument --iou: 0 is not in (0, 1]"),
    (["evaluate", "--iou", "inf"], "argument --iou: inf is not in (0, 1]"),
    (["evaluate", "--iou", "half"], "argument --iou: 'half' is not a number"),
    (["predict", "--model", "m.npz", "x.jpg", "--threshold", "nan"], "argument --threshold: nan is not in [0, 1]"),
    (["predict", "--model", "m.npz", "x.jpg", "--n-jobs", "0"], "argument --n-jobs: 0 is not a positive integer"),
    (["fit", "--n-jobs", "-2"], "argument --n-jobs: -2 is not a positive integer or -1"),
])
def test_bad_numbers_are_refused_at_argument_parsing(tmp_path, capsys, argv, fragment):
    if argv[0] == "evaluate":  # files that do not exist: the number is refused before any is read
        argv = argv + ["--gt", str(tmp_path / "nogt"), "--pred", str(tmp_path / "nopred.json")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert fragment in err and "nogt" not in err
    # one line, naming the command and where its options are explained
    assert err.count("\n") == 1 and err.startswith(f"error: classic-loc {argv[0]}: argument --")
    assert err.rstrip().endswith(f"see `classic-loc {argv[0]} --help`")


def test_one_iou_of_1_is_accepted():
    args = build_parser().parse_args(["evaluate", "--gt", "g", "--pred", "p", "--iou", "1"])
    assert args.iou == 1.0


# ------------------------------------------------------------------ 6. corrupt images and non-regular files
def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])  # the header stays readable, the pixels do not decode


def test_predict_names_a_corrupt_image_or_skips_it(photos, model_file, tmp_path, capsys):
    _truncate(photos / "b.jpg")
    m = ["predict", "--model", str(model_file), str(photos), "--n-jobs", "2", "--quiet", "--threshold", "0"]
    line = _refused(capsys, m + ["--out", str(tmp_path / "p.json")], f"error: {photos / 'b.jpg'}: cannot decode",
                    photos)
    assert "BrokenProcessPool" not in line and not (tmp_path / "p.json").exists()
    assert main(m + ["--out", str(tmp_path / "p.json"), "--skip-bad"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("warning: skipped 1 image that cannot be read (first: ") and str(photos / "b.jpg") in err
    ids = {r["image_id"] for r in json.loads((tmp_path / "p.json").read_text())}
    assert "b.jpg" not in ids and ids <= {"a.jpg", "sub/a.jpg", "sub/c.png"} and ids


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_named_like_an_image_does_not_hang_predict(photos, model_file, tmp_path):
    os.mkfifo(photos / "x.jpg")
    run = [sys.executable, "-m", "classic_loc", "predict", "--model", str(model_file), "--quiet"]
    done = subprocess.run(run + [str(photos)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "x.jpg" not in {r["image_id"] for r in json.loads(done.stdout)}
    done = subprocess.run(run + [str(photos / "x.jpg")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr == (f"error: {photos / 'x.jpg'}: is not a regular file (a FIFO, device, socket or broken "
                           "link); give image files or folders of images\n")
    assert wf.image_files([photos]) == [str(photos / n) for n in ("a.jpg", "b.jpg", "sub/a.jpg", "sub/c.png")]


def test_fit_checks_every_image_once_before_training(voc, tmp_path, capsys, monkeypatch):
    data = tmp_path / "data"
    shutil.copytree(voc, data)
    train_ids = (data / "ImageSets" / "Main" / "train.txt").read_text().split()
    bad = data / "JPEGImages" / f"{train_ids[1]}.jpg"
    _truncate(bad)
    real_fit = Localizer.fit
    monkeypatch.setattr(Localizer, "fit", lambda *a, **k: pytest.fail("training started before the image check"))
    _refused(capsys, ["fit", "--data", str(data), "--out", str(tmp_path / "m.npz")] + QUICK,
             f"error: {bad}: cannot decode the image", data)
    monkeypatch.setattr(Localizer, "fit", real_fit)
    assert main(["fit", "--data", str(data), "--out", str(tmp_path / "m.npz"), "--skip-bad"] + QUICK) == 0
    err = capsys.readouterr().err
    assert f"skipped 1 image that cannot be read (first: {bad}: cannot decode the image" in err
    report = json.loads((tmp_path / "m.report.json").read_text())
    assert report["train"]["images"] == len(train_ids) - 1


def test_check_images_decodes_each_image_once(voc, monkeypatch):
    ds = load_dataset(voc, split="test")
    reads = []
    real = wf.read_image
    monkeypatch.setattr(wf, "read_image", lambda p: reads.append(p) or real(p))
    assert wf.check_images(ds, n_jobs=2) is ds
    assert sorted(reads) == sorted(r.path for r in ds)
    broken = ds.with_records([*ds.records[:3], type(ds[0])("gone", str(voc / "nope.jpg"), 10, 10)])
    with pytest.raises(DataError, match="nope.jpg: cannot read the image"):
        wf.check_images(broken)
    with pytest.warns(UserWarning, match=r"skipped 1 image that cannot be read \(first: .*nope.jpg"):
        kept = wf.check_images(broken, skip_bad=True)
    assert [r.image_id for r in kept] == [r.image_id for r in ds.records[:3]]


# ------------------------------------------------------------------ 7. help
def test_every_command_help_explains_its_options(capsys):
    for command, words in [("predict", ["--skip-bad", "relative to the deepest folder", "never the model",
                                        "refused if it would overwrite an input", "default: -1, one per core"]),
                           ("fit", ["--skip-bad", "decoded once before training", "kept in a temporary folder",
                                    "they end with this command", "default: -1, every core", "runs/fit2",
                                    "A previous run is never replaced", "replacing that run's files"]),
                           ("evaluate", ["in (0, 1]", "never one of the input files"]),
                           ("demo", ["a new or empty folder"])]:
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        for word in words:
            assert word in text, (command, word)


def test_the_command_lines_prediction_settings_are_the_estimators():
    # cli.py keeps its own copy (importing settings would load numpy before the BLAS threads are set)
    from classic_loc import cli, settings

    assert cli.PREDICT_SETTINGS == settings.PREDICTION_SETTINGS
