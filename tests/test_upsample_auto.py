"""upsample="auto": the first pyramid level's scale chosen at fit from the training boxes, kept as fitted state."""

import math

import numpy as np
import pytest

from classic_loc import Localizer, load_dataset
from classic_loc.errors import ModelFileError
from classic_loc.model_io import load_model, save_model
from classic_loc.pyramid import MAX_AUTO_UPSAMPLE, auto_upsample


def _squares(*sides):
    return np.array([[10, 20, 10 + s, 20 + s] for s in sides], dtype=float)


def test_the_small_boxes_decide():
    # 48 cells of 8 px, aspect 1: sqrt(48) = 6.928 cells = 55.43 px; the 10th percentile of the sides decides
    sides = [30] * 3 + [200] * 17  # numpy's 10th percentile of 20 values lies between the 2nd and 3rd smallest
    assert auto_upsample([_squares(*sides)], 48, 8) == pytest.approx(math.sqrt(48) * 8 / 30)


def test_large_boxes_need_no_upsampling_and_the_largest_need_wins():
    assert auto_upsample([_squares(100, 120, 400)], 48, 8) == 1.0
    big, small = _squares(*[300] * 10), _squares(*[40] * 10)
    assert auto_upsample([big, small], 48, 8) == pytest.approx(math.sqrt(48) * 8 / 40)


def test_the_need_is_capped():
    assert auto_upsample([_squares(*[5] * 10)], 48, 8) == MAX_AUTO_UPSAMPLE == 2.0
    assert auto_upsample([_squares(*[5] * 10)], 48, 8, limit=3.0) == 3.0


def test_aspect_ratio_enters_through_the_window_shape():
    # boxes 4 times wider than tall: the window is sqrt(48 / 4) = 3.46 cells high, 13.86 wide
    boxes = np.array([[0, 0, 4 * h, h] for h in [20] * 5 + [100] * 5], dtype=float)
    rows = math.sqrt(48 / 4)
    assert auto_upsample([boxes], 48, 8) == pytest.approx(max(rows * 8 / 20, 4 * rows * 8 / 80))


def test_degenerate_boxes_are_ignored():
    boxes = np.r_[_squares(*[200] * 10), [[5, 5, 5, 9]]]  # a zero-width box
    assert auto_upsample([boxes, np.zeros((0, 4))], 48, 8) == 1.0


def test_fit_records_the_chosen_scale_and_predict_uses_it(voc, trained, tmp_path):
    train = load_dataset(voc, split="train")
    model = Localizer.load(trained)
    assert model.upsample == "auto"
    from classic_loc.localizer import _class_boxes

    expected = auto_upsample(_class_boxes(train), 48, 8, 2)
    assert expected > 1.0  # the demo's objects are small
    assert model.upsample_ == pytest.approx(expected)
    assert model.fit_report_["upsample"] == pytest.approx(expected)
    test = load_dataset(voc, split="test")
    image = test.image(0)
    auto = model.detect(image)
    same = Localizer.load(trained).set_params(upsample=float(model.upsample_)).detect(image)
    np.testing.assert_array_equal(auto.boxes, same.boxes)  # "auto" is the fitted number
    one = Localizer.load(trained).set_params(upsample=1.0).detect(image)
    assert len(one) != len(auto) or not np.array_equal(one.boxes, auto.boxes)
    # a prediction setting: a model saved with another upsample keeps its fitted scale
    m = Localizer.load(trained).set_params(upsample=1.0)
    m.save(tmp_path / "one.npz")
    again = Localizer.load(tmp_path / "one.npz")
    assert again.upsample == 1.0 and again.upsample_ == pytest.approx(expected)
    np.testing.assert_array_equal(again.detect(image).boxes, one.boxes)


def test_a_model_file_from_before_auto_takes_its_number(trained, tmp_path):
    meta, arrays = load_model(trained)
    del meta["upsample"]
    meta["params"]["upsample"] = 1.5
    save_model(tmp_path / "old.npz", meta, arrays)
    assert Localizer.load(tmp_path / "old.npz").upsample_ == 1.5
    meta["params"]["upsample"] = "auto"  # "auto" but no fitted scale: a damaged file
    save_model(tmp_path / "bad.npz", meta, arrays)
    with pytest.raises(ModelFileError, match="upsample 'auto' is not a number"):
        Localizer.load(tmp_path / "bad.npz")


def test_a_given_window_decides_instead_of_the_area():
    # object part of 4 x 5 cells of 8 px (32 x 40 px) against boxes of 20 x 20: 40 / 20 = 2 along columns
    assert auto_upsample([_squares(*[20] * 10)], 48, 8, window=(4, 5)) == pytest.approx(2.0)
    assert auto_upsample([_squares(*[20] * 10)], 48, 8, window=(2, 2)) == 1.0
