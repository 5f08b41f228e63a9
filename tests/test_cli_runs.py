"""``fit`` without --out: a new run folder per run, never a silent overwrite; the summary it prints."""

import hashlib
import json
import os
import shlex
import shutil
import subprocess

import pytest

from classic_loc.cli import fit_summary, main
from classic_loc.errors import DataError
from classic_loc.parallel import available_cores, resolve_n_jobs
from classic_loc.workflow import new_run_folder

QUICK = ["--quiet", "--n-jobs", "1", "--set", "mining_rounds=0", "--set", "n_random_negatives=200"]
RUN_FILES = ["model.npz", "predictions.json", "report.json", "settings.json"]


def _digest(folder):
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in sorted(os.listdir(folder))}


def test_two_fits_keep_both_runs(voc, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["fit", "--data", str(voc)] + QUICK) == 0
    first = tmp_path / "runs" / "fit"
    assert sorted(os.listdir(first)) == RUN_FILES
    before = _digest(first)
    assert main(["fit", "--data", str(voc), "--seed", "1"] + QUICK) == 0
    second = tmp_path / "runs" / "fit2"
    assert sorted(os.listdir(second)) == RUN_FILES
    assert _digest(first) == before  # the first run is untouched
    assert _digest(second)["model.npz"] != before["model.npz"]  # another seed, another model, in its own folder
    out = capsys.readouterr().out
    assert "runs/fit/model.npz" in out and "runs/fit2/model.npz" in out
    # what the run was asked is kept beside it
    settings = json.loads((second / "settings.json").read_text())
    assert settings["data"] == str(voc) and settings["params"]["random_state"] == 1
    assert json.loads((second / "report.json").read_text())["model"] == str(second / "model.npz")


def test_exist_ok_replaces_that_run_only(voc, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["fit", "--data", str(voc), "--name", "faces"] + QUICK) == 0
    old = _digest(tmp_path / "runs" / "faces")
    assert main(["fit", "--data", str(voc), "--name", "faces", "--exist-ok", "--seed", "3"] + QUICK) == 0
    assert sorted(os.listdir(tmp_path / "runs")) == [".gitignore", "faces"]  # no faces2
    assert _digest(tmp_path / "runs" / "faces")["model.npz"] != old["model.npz"]


def test_project_and_name(voc, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["fit", "--data", str(voc), "--project", str(tmp_path / "exp"), "--name", "a"] + QUICK) == 0
    assert sorted(os.listdir(tmp_path / "exp" / "a")) == RUN_FILES
    assert not (tmp_path / "runs").exists()


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_fit_inside_a_git_checkout_leaves_it_clean(voc, tmp_path, monkeypatch):
    repo = tmp_path / "checkout"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(git + ["init", "-q"], check=True)
    (repo / "README.md").write_text("x\n")
    subprocess.run(git + ["add", "README.md"], check=True)
    subprocess.run(git + ["commit", "-qm", "x"], check=True)
    monkeypatch.chdir(repo)
    assert main(["fit", "--data", str(voc)] + QUICK) == 0
    assert (repo / "runs" / "fit" / "model.npz").is_file()
    status = subprocess.run(git + ["status", "--porcelain", "--untracked-files=all"], check=True,
                            capture_output=True, text=True).stdout
    assert status == ""


def test_this_repository_ignores_runs():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    assert "runs/" in open(os.path.join(root, ".gitignore")).read().split()


def test_a_failed_fit_leaves_no_run_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["fit", "--data", str(tmp_path / "nosuch")] + QUICK) == 2
    assert "error:" in capsys.readouterr().err
    assert os.listdir(tmp_path / "runs") == [".gitignore"]  # the reserved runs/fit was removed again


def test_run_folder_numbering(tmp_path):
    project = tmp_path / "runs"
    assert new_run_folder(str(project)) == (str(project / "fit"), True)
    assert (project / ".gitignore").read_text().splitlines()[-1] == "*"
    assert new_run_folder(str(project)) == (str(project / "fit2"), True)
    (project / "fit7").mkdir()
    (project / "fitness").mkdir()  # another name: not a number of "fit"
    assert new_run_folder(str(project)) == (str(project / "fit8"), True)
    assert new_run_folder(str(project), exist_ok=True) == (str(project / "fit"), False)
    assert new_run_folder(str(project), "other", exist_ok=True) == (str(project / "other"), True)
    (tmp_path / "mine").mkdir()  # a folder the user made: used, but no .gitignore written into it
    new_run_folder(str(tmp_path / "mine"))
    assert os.listdir(tmp_path / "mine") == ["fit"]
    for bad in ("", "a/b", ".."):
        with pytest.raises(DataError, match="is not a folder name"):
            new_run_folder(str(project), bad)
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="is a file, not a folder"):
        new_run_folder(str(tmp_path / "file"))


def test_n_jobs_default_is_every_available_core(capsys):
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert available_cores() == resolve_n_jobs(-1) == cores
    assert resolve_n_jobs(None) == 1 and resolve_n_jobs(3) == 3
    from classic_loc.cli import build_parser

    for command in (["fit"], ["predict", "--model", "m.npz", "x.jpg"]):
        assert build_parser().parse_args(command).n_jobs == -1
    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    assert "default: -1, every core this process may use" in capsys.readouterr().out


def test_summary_says_what_the_report_says_and_its_commands_run(voc, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["fit", "--data", str(voc)] + QUICK) == 0
    out = capsys.readouterr().out
    run = tmp_path / "runs" / "fit"
    report = json.loads((run / "report.json").read_text())
    m = report["metrics"]
    lines = out.splitlines()
    assert lines[0].startswith("classic_loc fit: done in ") and "peak memory" in lines[0]
    row = {line.split()[0]: line.split()[1] for line in lines if line.startswith("  ") and len(line.split()) > 2}
    for key, name in (("accuracy", "accuracy"), ("loc_accuracy", "loc_accuracy"), ("map50", "mAP50"),
                      ("map", "mAP"), ("presence_accuracy", "presence")):
        assert row[name] == f"{m[key]:.3f}", name
    assert row["speed"] == f"{report['predict_ms_per_image']:.1f}"
    assert f"{report['train']['images']} images" in out and "ring, triangle, cross" in out
    assert "cluttered on purpose" not in out  # only said of the demo data
    # the "next" commands are real: run them
    start = next(i for i, line in enumerate(lines) if line.startswith("  next"))
    commands = [shlex.split(line.strip().removeprefix("next").strip()) for line in lines[start:] if line.strip()]
    assert [c[:4] for c in commands] == [["python", "-m", "classic_loc", "predict"],
                                          ["python", "-m", "classic_loc", "evaluate"]]
    assert main(commands[0][3:] + ["--quiet"]) == 0
    assert len(os.listdir(run / "drawn")) == 1
    capsys.readouterr()
    assert main(commands[1][3:] + ["--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    for key in ("accuracy", "loc_accuracy", "map50"):
        assert again[key] == m[key], key
    # predictions.json has boxes to 0.01 px (COCO results as written by predict): IoUs move by about 1e-6
    for key in ("mean_iou", "map"):
        assert again[key] == pytest.approx(m[key], abs=1e-4), key


def _report(**metrics):
    m = dict(accuracy=0.5, loc_accuracy=0.25, mean_iou=0.375, map50=0.6, map=0.3, presence_accuracy=0.875,
             iou_threshold=0.5, n_with_object=7)
    m.update(metrics)
    return {"metrics": m, "predict_ms_per_image": 12.34, "model_bytes": 2048,
            "unreachable_boxes": {"count": 2}, "params": {"features": "fhog"},
            "train": {"images": 10, "per_class": {"a": 6, "b": 4}}, "test": {"images": 8},
            "training": {"classes": ["a", "b"], "window_pixels": [[72, 72], [64, 80]], "peak_memory_mb": 512.4}}


def test_summary_layout():
    text = fit_summary(_report(), [("r/m.npz", "the model"), ("r/predictions.json", "dets")], data="d d",
                       test_split="test", test_data=None, demo=True, seconds=41.6, n_jobs=2,
                       first_test_image="d d/x.jpg")
    lines = text.splitlines()
    assert lines[0] == "classic_loc fit: done in 42 s on 2 processes, peak memory 512 MB (all processes)"
    # window_pixels are (rows, cols): shown as width x height
    assert "  windows   a 72x72, b 80x64 px (object plus context); 2 of 10 training boxes unreachable" in text
    assert "  tested    8 images, 7 with an object: the demo data, cluttered on purpose" in text
    assert "  accuracy      0.500  main (largest) object" in text
    assert "  speed          12.3  ms per image (median, one thread); model 2 KiB" in text
    assert lines[-2] == "  next      python -m classic_loc predict --model r/m.npz 'd d/x.jpg' --draw r/drawn"
    assert lines[-1] == "            python -m classic_loc evaluate --gt 'd d' --split test --pred r/predictions.json"
    # a hold-out test set has no split to name: no evaluate command
    text = fit_summary(_report(), [("m.npz", "the model")], data="d", test_split=None, test_data=None,
                       demo=False, seconds=1, n_jobs=1)
    assert "evaluate" not in text and "next" not in text and "on 1 process," in text
