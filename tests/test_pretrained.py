"""The shipped models (classic_loc.pretrained): load offline, small, and score what their cards say."""

import json
import os

import cv2
import numpy as np
import pytest

import classic_loc
from classic_loc import Localizer, load_dataset
from classic_loc.cli import main
from classic_loc.errors import DataError
from classic_loc.pretrained import NAMES, model_card, pretrained, pretrained_path


@pytest.mark.parametrize("name, classes", [("face", ("face",)), ("person", ("person",))])
def test_each_shipped_model_loads_and_is_small(name, classes):
    model = pretrained(name)
    assert isinstance(model, Localizer) and model.classes_ == classes
    assert pretrained_path(name).endswith(NAMES[name])
    card = model_card(name)
    assert card["classes"] == list(classes) and card["terms"] and card["source"]
    assert os.path.getsize(pretrained_path(name)) <= 200 * 1024  # at most 200 KB per model


def test_the_package_is_callable_and_the_function_importable():
    assert classic_loc.pretrained("face").classes_ == ("face",)  # the callable module
    from classic_loc import pretrained as p

    assert p("person").classes_ == ("person",)


def test_an_unknown_name_is_one_line():
    with pytest.raises(DataError, match=r"^pretrained: 'cat': is not a shipped model; use one of face, person"):
        pretrained("cat")


@pytest.mark.parametrize("name", list(NAMES))
def test_the_cards_scores_are_what_the_model_scores(name, shared_data):
    """The test-split scores written in models.json come back from the shipped file (the shared evaluator)."""
    card = model_card(name)
    test = load_dataset(shared_data / card["data_set"], split="test")
    got = pretrained(name).score(test)  # the shared evaluator on the model's detections
    for key, want in card["scores_on_test_split"].items():
        assert got[key] == pytest.approx(want, abs=1e-6), key


def test_predict_with_a_shipped_model_by_name(tmp_path, monkeypatch):
    image = (np.random.default_rng(0).random((120, 160, 3)) * 255).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "x.jpg"), image)
    monkeypatch.chdir(tmp_path)
    assert main(["predict", "--model", "face", "x.jpg", "--out", "p.json", "--quiet"]) == 0
    assert isinstance(json.loads((tmp_path / "p.json").read_text()), list)
    (tmp_path / "face").write_text("not a model")  # a file of that name wins over the shipped model
    assert main(["predict", "--model", "face", "x.jpg", "--out", "q.json", "--quiet"]) == 2
