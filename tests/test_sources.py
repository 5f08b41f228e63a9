"""Videos, cameras and streams (classic_loc.sources) and predict on them (JSON Lines, a drawn video)."""

import json

import cv2
import numpy as np
import pytest

import classic_loc.sources as sources
from classic_loc import Localizer
from classic_loc.cli import main
from classic_loc.errors import DataError
from classic_loc.sources import frames, is_video_source
from classic_loc.workflow import write_video_predictions


def _video(path, n=7, fps=10, size=(96, 64)):
    """A test video whose frame i is a flat colour: RGB (20 i, 100, 200 - 20 i); MJPG in .avi (lossy)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    assert writer.isOpened()
    for i in range(n):
        rgb = np.empty((size[1], size[0], 3), np.uint8)
        rgb[:] = (20 * i, 100, 200 - 20 * i)
        writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def _count_frames(path):
    capture = cv2.VideoCapture(str(path))
    n = 0
    while capture.read()[0]:
        n += 1
    capture.release()
    return n


def test_frames_are_rgb_numbered_and_timed(tmp_path):
    video = _video(tmp_path / "v.avi")
    got = list(frames(video))
    assert [i for i, _, _ in got] == list(range(7))
    assert [t for _, t, _ in got] == pytest.approx([i / 10 for i in range(7)])
    for i, _, image in got:
        assert image.shape == (64, 96, 3) and image.dtype == np.uint8
        np.testing.assert_allclose(image.reshape(-1, 3).mean(0), (20 * i, 100, 200 - 20 * i), atol=6)
    assert [i for i, _, _ in frames(video, every=3)] == [0, 3, 6]
    with pytest.raises(ValueError, match="every must be at least 1"):
        next(frames(video, every=0))


def test_what_is_a_video_source():
    assert is_video_source("a/b.MP4") and is_video_source("x.avi") and is_video_source(0)
    assert is_video_source("rtsp://camera.local/stream") and is_video_source("http://host/live.m3u8")
    assert not is_video_source("photo.jpg") and not is_video_source("folder")


def test_sources_that_cannot_be_read_are_one_line_errors(tmp_path):
    with pytest.raises(DataError, match=r"missing\.mp4: no such video file; check the path"):
        next(frames(tmp_path / "missing.mp4"))
    fake = tmp_path / "fake.mp4"
    fake.write_text("not a video")
    with pytest.raises(DataError, match=r"fake\.mp4: cannot be opened as a video; check that it is a video OpenCV"):
        next(frames(fake))


def test_predict_a_video_writes_json_lines_and_a_drawn_video(trained, tmp_path, capsys):
    video = _video(tmp_path / "v.avi", n=9, size=(160, 120))
    out, drawn = tmp_path / "p.jsonl", tmp_path / "drawn.avi"
    assert main(["predict", "--model", str(trained), str(video), "--every", "2", "--out", str(out),
                 "--draw", str(drawn)]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["frame"] for r in records] == [0, 2, 4, 6, 8]
    assert [r["time"] for r in records] == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8])
    for r in records:
        assert set(r) == {"frame", "time", "boxes", "scores", "labels"}
        assert len(r["boxes"]) == len(r["scores"]) == len(r["labels"])
        assert all(len(b) == 4 and b[0] <= b[2] and b[1] <= b[3] for b in r["boxes"])
    assert _count_frames(drawn) == 5
    assert "5 frames (every 2)" in capsys.readouterr().err
    # the same frames, one by one, through the Python API: the same detections
    model = Localizer.load(trained)
    det = model.detect(next(frames(video))[2])
    np.testing.assert_allclose(records[0]["boxes"], np.round(det.boxes, 2), atol=0.006)
    # no --out: the lines are printed
    assert main(["predict", "--model", str(trained), str(video), "--quiet"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 9


def test_a_video_run_that_fails_leaves_earlier_outputs(trained, tmp_path, monkeypatch):
    """An error, or Ctrl-C on a video file, keeps the earlier --out and --draw; Ctrl-C on a camera or stream
    ends it normally and keeps what was done."""
    video = _video(tmp_path / "v.avi", n=6, size=(160, 120))
    out, drawn = tmp_path / "p.jsonl", tmp_path / "d.avi"
    out.write_text("earlier\n")
    drawn.write_bytes(b"earlier video")
    model = Localizer.load(trained)
    calls = []
    real = model.detect

    def stop_at_third(image):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(image)

    monkeypatch.setattr(model, "detect", stop_at_third)
    with pytest.raises(KeyboardInterrupt):
        write_video_predictions(model, str(video), str(out), str(drawn))
    assert out.read_text() == "earlier\n" and drawn.read_bytes() == b"earlier video"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left
    # a live source (here a fake stream): Ctrl-C is its normal end
    monkeypatch.setattr(sources, "source_fps", lambda source: 10.0)
    monkeypatch.setattr(sources, "frames", lambda source, every=1: ((i, i / 10, f) for i, _, f in frames(video)))
    calls.clear()
    n, _ = write_video_predictions(model, "rtsp://camera.local/stream", str(out), str(drawn))
    assert n == 2 and len(out.read_text().splitlines()) == 2 and _count_frames(drawn) == 2


def test_video_usage_errors(trained, tmp_path, capsys):
    video = _video(tmp_path / "v.avi")
    cases = [
        (["--camera", "0", str(video)], "--camera: 0: cannot be combined with inputs"),
        ([str(video), str(video)], "a video is predicted on its own"),
        ([str(video), "--draw", str(tmp_path / "x.png")], "for a video, camera or stream --draw is a video file"),
        ([str(video), "--out", str(video)], "would overwrite the input video"),
        ([str(tmp_path), "--every", "2"], "--every: 2: applies to a video, camera or stream"),  # images
        ([], "nothing to predict"),
        ([str(video), "--every", "0"], "argument --every: '0' is not a whole number of frames (1, 2, ...)"),
        (["--camera", "-1"], "argument --camera: '-1' is not a camera number (0, 1, ...)"),
        (["--camera", "front"], "argument --camera: 'front' is not a camera number (0, 1, ...)"),
    ]
    for extra, message in cases:
        assert main(["predict", "--model", str(trained), *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
