"""The lighting correction (Localizer's ``preprocess``): what it does to an image, fixed at fit, kept in the file."""

import json

import cv2
import numpy as np
import pytest

from classic_loc import Localizer, load_dataset
from classic_loc.errors import DataError
from classic_loc.model_io import checksum
from classic_loc.scan import CLAHE_CLIP, CLAHE_TILES, FeatureParams, preprocess_image


def _photo():
    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur(rng.integers(0, 256, (90, 120, 3), dtype=np.uint8), (0, 0), 3)
    ramp = np.linspace(0.3, 1.0, 120)[None, :, None]  # lighting that falls off to the left
    return (base * ramp).astype(np.uint8)


def test_corrections_are_opencvs():
    rgb = _photo()
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    assert preprocess_image(gray, "none") is gray
    np.testing.assert_array_equal(preprocess_image(gray, "equalize"), cv2.equalizeHist(gray))
    clahe = cv2.createCLAHE(clipLimit=CLAHE_CLIP, tileGridSize=CLAHE_TILES)
    np.testing.assert_array_equal(preprocess_image(gray, "clahe"), clahe.apply(gray))
    # colour: the luma is corrected, the image stays RGB uint8
    out = preprocess_image(rgb, "equalize")
    assert out.shape == rgb.shape and out.dtype == np.uint8
    y = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)[:, :, 0]
    diff = np.abs(cv2.cvtColor(out, cv2.COLOR_RGB2YCrCb)[:, :, 0].astype(int) - cv2.equalizeHist(y))
    assert (diff <= 3).mean() > 0.99 and diff.max() <= 8  # the RGB round trip clips a few saturated pixels
    # floats in [0, 1] are scaled to 0-255 first
    np.testing.assert_array_equal(preprocess_image(gray / 255.0, "equalize"),
                                  cv2.equalizeHist((gray / 255.0 * 255.0).astype(np.uint8)))
    with pytest.raises(ValueError, match="preprocess must be one of"):
        preprocess_image(gray, "gamma")


def test_the_scan_sees_the_corrected_image():
    rgb = _photo()
    fp = FeatureParams(variant="felzenszwalb", preprocess="clahe")
    clahe = cv2.createCLAHE(clipLimit=CLAHE_CLIP, tileGridSize=CLAHE_TILES)
    np.testing.assert_array_equal(fp.prepare(rgb), clahe.apply(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)))


def test_fitted_state_survives_save_and_load_and_older_files_mean_none(voc, tmp_path):
    train = load_dataset(voc, split="train")
    model = Localizer(preprocess="clahe", mining_rounds=0, n_random_negatives=200).fit(train)
    model.save(tmp_path / "m.npz")
    loaded = Localizer.load(tmp_path / "m.npz")
    assert loaded.preprocess == "clahe" and loaded.feature_params_.preprocess == "clahe"
    image = load_dataset(voc, split="test").image(0)
    a, b = model.detect(image), loaded.detect(image)
    np.testing.assert_array_equal(a.boxes, b.boxes)
    np.testing.assert_array_equal(a.scores, b.scores)
    plain = Localizer(mining_rounds=0, n_random_negatives=200).fit(train)
    assert not np.array_equal(plain.templates_[0].weights, model.templates_[0].weights)  # it learned otherwise
    # a file written before the setting existed: no correction
    plain.save(tmp_path / "p.npz")
    with np.load(tmp_path / "p.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(arrays.pop("__meta__").tobytes())
    del meta["checksum"], meta["features"]["preprocess"], meta["params"]["preprocess"]
    meta["checksum"] = checksum(meta, arrays)
    with open(tmp_path / "old.npz", "wb") as fh:
        np.savez(fh, **arrays, __meta__=np.frombuffer(json.dumps(meta).encode(), np.uint8))
    old = Localizer.load(tmp_path / "old.npz")
    assert old.preprocess == "none" and old.feature_params_.preprocess == "none"
    # it is fitted state: changing it unfits the model
    with pytest.raises(DataError, match="preprocess was 'clahe' when the model was trained"):
        loaded.set_params(preprocess="none").detect(image)
    with pytest.raises(DataError, match=r"preprocess: 'gamma' .*one of 'none', 'equalize', 'clahe'"):
        Localizer(preprocess="gamma").fit(train)
