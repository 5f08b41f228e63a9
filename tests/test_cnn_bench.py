"""The CNN benchmark (benchmarks/cnn.py): its outputs are what classic_loc's evaluator scores.

A tiny model is trained for 2 epochs on a few images of the demo data set; the
checks are on the contract with the evaluator (image and category ids, COCO
boxes in original image pixels, one detection per image, the CLI and the Python
API agreeing), on the geometry (letterbox and back, augmentation moving boxes
with the pixels) and on the model (head shapes, size, seeding, weights-only loading).
"""

import importlib.util
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the CNN benchmark needs PyTorch (pip install torch)")

import classic_loc._demo as demo  # noqa: E402
from classic_loc import evaluate, load_dataset  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
METRICS = ("accuracy", "loc_accuracy", "mean_iou", "corloc", "map50", "map", "map75")


def _load_bench():
    spec = importlib.util.spec_from_file_location("cnn_bench", REPO / "benchmarks" / "cnn.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cnn = _load_bench()


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory):
    """Demo data (24 images), tiny model trained 2 epochs; the figures, the test split and the out folder."""
    data = tmp_path_factory.mktemp("data")
    demo.generate(data / "demo", n_images=24, seed=2)
    out = tmp_path_factory.mktemp("out")
    figures = cnn.run("demo", "tiny", data, out, seed=0, epochs=2, verbose=False, threads=1)
    return figures, load_dataset(data / "demo", split="test"), out


# ------------------------------------------------------------------------------- outputs
def test_writes_the_three_files_and_figures(bench_run):
    figures, test, out = bench_run
    paths = cnn.output_paths(out, "demo", "tiny")
    assert sorted(os.listdir(out)) == sorted(os.path.basename(p) for p in paths.values())  # no temp files left
    assert figures == json.loads(Path(paths["figures"]).read_text())
    assert figures["model_bytes"] == os.path.getsize(paths["weights"])
    assert figures["epochs"] == 2 and len(figures["training_log"]) == 2
    assert figures["input_size"] == 128 and figures["torch_version"] == torch.__version__
    assert figures["n_parameters"] == cnn.n_parameters(cnn.build_model("tiny", len(test.classes)))
    assert figures["predict_ms_per_image"] > 0 and figures["fit_seconds"] > 0
    assert 50 < figures["peak_rss_mb"] < 4000  # measured in a fresh process: torch alone is tens of MB
    for key in ("accuracy", "loc_accuracy", "mean_iou", "map50", "map"):
        assert figures[key] == figures["evaluation"][key]


def test_one_detection_per_test_image_in_image_pixels(bench_run):
    _, test, out = bench_run
    results = json.loads(Path(cnn.output_paths(out, "demo", "tiny")["detections"]).read_text())
    assert [r["image_id"] for r in results] == [rec.image_id for rec in test]
    by_id = {rec.image_id: rec for rec in test}
    for r in results:
        rec = by_id[r["image_id"]]
        x, y, w, h = r["bbox"]
        assert r["category_id"] in test.classes
        assert w >= 1 and h >= 1
        assert 0 <= x and x + w <= rec.width + 1e-9 and 0 <= y and y + h <= rec.height + 1e-9
        assert 0 <= r["score"] <= 1


def test_the_evaluator_accepts_the_json_and_cli_equals_api(bench_run):
    figures, test, out = bench_run
    path = cnn.output_paths(out, "demo", "tiny")["detections"]
    done = subprocess.run([sys.executable, "-m", "classic_loc", "evaluate", "--gt", test.root, "--split", "test",
                           "--pred", path, "--json"], capture_output=True, text=True, check=True, cwd=REPO)
    cli = json.loads(done.stdout)
    api = evaluate(test, json.loads(Path(path).read_text()))
    assert cli["n_predictions"] == api["n_predictions"] == len(test)
    assert cli["n_images"] == len(test)
    for key in METRICS:
        assert cli[key] == pytest.approx(api[key], abs=1e-12)
        assert figures["evaluation"][key] == pytest.approx(api[key], abs=1e-12)


def test_saved_weights_reload_and_reproduce_the_detections(bench_run):
    _, test, out = bench_run
    paths = cnn.output_paths(out, "demo", "tiny")
    results = json.loads(Path(paths["detections"]).read_text())
    model = cnn.load_weights(paths["weights"], "tiny", len(test.classes))  # torch.load(weights_only=True)
    for i in range(min(3, len(test))):
        p = cnn.predict_image(model, test.image(i), 128)
        ref = cnn.coco_result(test[i].image_id, p["box"], test.classes[p["label"]], p["score"])
        assert ref["category_id"] == results[i]["category_id"]
        np.testing.assert_allclose(ref["bbox"], results[i]["bbox"], atol=1e-4)
        assert ref["score"] == pytest.approx(results[i]["score"], abs=1e-5)


# ------------------------------------------------------------------------------- model
@pytest.mark.parametrize("size", ["tiny", "small"])
def test_head_shapes_and_model_size(size):
    torch.manual_seed(0)
    model = cnn.build_model(size, 3).eval()
    s = cnn.SIZES[size]["input_size"]
    with torch.inference_mode():
        class_logits, boxes, presence = model(torch.zeros(2, 3, s, s))
    assert class_logits.shape == (2, 3) and boxes.shape == (2, 4) and presence.shape == (2,)
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    if size == "tiny":
        assert buf.tell() < 1_000_000


def test_training_is_seeded():
    rng = np.random.default_rng(0)
    cache = {"images": torch.from_numpy(rng.integers(0, 256, (10, 3, 128, 128), dtype=np.uint8)),
             "boxes": torch.tensor([[0.1, 0.2, 0.6, 0.7]] * 10), "labels": torch.arange(10) % 2,
             "present": torch.tensor([1.0] * 8 + [0.0] * 2)}
    states = []
    for _ in range(2):
        cnn.seed_everything(3)
        model = cnn.build_model("tiny", 2)
        cnn.train(model, cache, epochs=1, seed=3, verbose=False, batch_size=4)
        states.append(model.state_dict())
    for key in states[0]:
        assert torch.equal(states[0][key], states[1][key]), key


# ------------------------------------------------------------------------------- geometry
def test_letterbox_then_decode_returns_the_box():
    image = np.zeros((60, 150), dtype=np.uint8)  # grayscale, wide
    square, geometry = cnn.letterbox(image, 128)
    assert square.shape == (3, 128, 128) and square.dtype == np.uint8
    box = np.array([10.0, 5.0, 140.0, 55.0])
    sx, sy, ox, oy = geometry
    in_square = np.array([box[0] * sx + ox, box[1] * sy + oy, box[2] * sx + ox, box[3] * sy + oy]) / 128
    np.testing.assert_allclose(cnn.decode_boxes(in_square[None], geometry, 150, 60, 128)[0], box, atol=1e-9)
    # swapped corners are ordered; boxes outside the image are clipped to it with at least 1 pixel
    out = cnn.decode_boxes([[0.9, 0.9, -0.5, 0.1]], geometry, 150, 60, 128)[0]
    assert out[0] <= out[2] and out[1] <= out[3] and out[2] - out[0] >= 1 and out[3] - out[1] >= 1
    assert out.min() >= 0 and out[2] <= 150 and out[3] <= 60


def test_augmentation_moves_the_box_with_the_pixels():
    s = 128
    images = torch.zeros(16, 3, s, s)
    box = torch.tensor([30.0, 40.0, 70.0, 100.0])  # x1, y1, x2, y2 in the square
    images[:, :, 40:100, 30:70] = 1.0
    boxes = (box / s).expand(16, 4).clone()
    out, new_boxes, present = cnn.augment(images, boxes, torch.ones(16), torch.Generator().manual_seed(0))
    for k in range(16):
        ys, xs = np.nonzero(out[k, 0].numpy() > 0.5)
        found = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=float)
        np.testing.assert_allclose(found, new_boxes[k].numpy() * s, atol=1.5)
    assert present.tolist() == [1.0] * 16
    flipped = new_boxes[:, 0] * s > 45  # flipped: x1 in [47, 81]; not flipped: x1 in [16, 44]
    assert 0 < int(flipped.sum()) < 16


def test_main_object_is_the_evaluators():
    from classic_loc.datasets import ImageRecord

    rec = ImageRecord("a", None, 100, 100, [[0, 0, 10, 10], [0, 0, 20, 20], [50, 50, 70, 70]], [0, 1, 2])
    label, box = cnn.main_object(rec)
    assert label == 1 and box.tolist() == [0, 0, 20, 20]  # largest, the first on ties
    assert cnn.main_object(ImageRecord("b", None, 100, 100)) is None
