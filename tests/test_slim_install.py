"""The base install (numpy, OpenCV, defusedxml) predicts and evaluates; training needs the ``train`` extra.

One allow-list of the packages the prediction and evaluation paths import, checked in a fresh
interpreter; and the base install itself, in a fresh virtual environment with the base
dependencies only (pip from the package index; in CI this test must run, elsewhere it is skipped
when the index cannot be reached).
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

#: Packages (top-level modules) that prediction and evaluation may import: the base install's.
ALLOWED = {"numpy", "cv2", "defusedxml", "yaml", "classic_loc"}
TRAINING_ONLY = ("sklearn", "skimage", "scipy", "joblib", "tqdm")


@pytest.fixture(scope="module")
def haar_model(voc, tmp_path_factory):
    from classic_loc import Localizer, load_dataset

    path = tmp_path_factory.mktemp("haar") / "h.npz"
    Localizer(features="fhog+haar", haar_features=10, haar_candidates=100, mining_rounds=0,
              n_random_negatives=200).fit(load_dataset(voc, split="train")).save(path)
    return path


def test_predict_and_evaluate_import_only_the_base_packages(trained, haar_model, voc, tmp_path):
    """Load HOG and HOG + Haar models, detect, predict, write and evaluate predictions (VOC ground truth,
    read with defusedxml), and import the feature modules and the command line: nothing outside the
    standard library and the base install's packages is imported."""
    code = textwrap.dedent(f"""
        import sys
        from classic_loc import Localizer, load_dataset, evaluate
        import classic_loc.features.hog, classic_loc.features.fhog, classic_loc.features.haar, classic_loc.cli
        import classic_loc.sources, classic_loc.pretrained
        test = load_dataset({str(voc)!r}, split="test")
        preds = []
        for path in ({str(trained)!r}, {str(haar_model)!r}):
            model = Localizer.load(path)
            model.predict([test[0].path])
            preds = model.detect(test.image(1)).to_coco(test[1].image_id)
        evaluate(test.subset([1]), preds)
        names = {{k.split(".")[0] for k in sys.modules}}
        names -= set(sys.stdlib_module_names) | set(sys.builtin_module_names)
        print(sorted(n for n in names if not n.startswith("_")))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path)
    imported = set(eval(out.stdout.strip()))  # a printed list of names
    assert imported <= ALLOWED, f"the prediction path imported {sorted(imported - ALLOWED)}"
    assert {"numpy", "cv2", "classic_loc"} <= imported


def test_the_base_install_predicts_and_evaluates_and_fit_names_the_extra(trained, voc, tmp_path):
    """A fresh virtual environment with ``pip install <repo>`` (no extra): predict and evaluate run end to
    end, with a model file and with a shipped model; fit and demo stop with one line naming the ``train``
    extra; no training package is installed."""
    env_dir = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(env_dir)], check=True)
    python = str(env_dir / "bin" / "python")
    install = subprocess.run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(REPO)],
                             capture_output=True, text=True, check=False)
    if install.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"pip install of the base package failed:\n{install.stderr[-3000:]}")
        pytest.skip(f"pip could not install the base package here (no package index?): {install.stderr[-300:]}")
    listed = subprocess.run([python, "-m", "pip", "list", "--format", "json"], capture_output=True, text=True,
                            check=True).stdout
    installed = {p["name"].lower() for p in json.loads(listed)}
    assert not installed & {"scikit-learn", "scikit-image", "scipy", "joblib", "tqdm", "pillow"}
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = dict(capture_output=True, text=True, check=False, cwd=tmp_path, env=env)
    from classic_loc import load_dataset

    preds = tmp_path / "preds.json"
    images = [r.path for r in load_dataset(voc, split="test")]
    p = subprocess.run([python, "-m", "classic_loc", "predict", "--model", str(trained), *images,
                        "--out", str(preds), "--quiet"], **run)
    assert p.returncode == 0, p.stderr
    e = subprocess.run([python, "-m", "classic_loc", "evaluate", "--gt", str(voc), "--split", "test", "--pred",
                        str(preds), "--json"], **run)
    assert e.returncode == 0, e.stderr
    assert 0 <= json.loads(e.stdout)["map50"] <= 1
    shipped = subprocess.run([python, "-m", "classic_loc", "predict", "--model", "person", images[0], "--quiet"],
                             **run)  # the shipped models are in the installed package
    assert shipped.returncode == 0 and isinstance(json.loads(shipped.stdout), list), shipped.stderr
    for command in (["fit"], ["demo"]):
        f = subprocess.run([python, "-m", "classic_loc", *command], **run)
        assert f.returncode == 2
        assert f.stderr.strip().count("\n") == 0 and "pip install 'classic-loc[train]'" in f.stderr
