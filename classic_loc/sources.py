"""Videos, cameras and streams as one iterator of frames (OpenCV's VideoCapture).

A *video source* is a video file (by extension, :data:`VIDEO_EXTENSIONS`), a URL OpenCV can open
(``rtsp://``, ``http://``, ...) or a camera index. :func:`frames` yields ``(index, seconds, image)``
with ``image`` RGB uint8 (rows, cols, 3), as :func:`classic_loc.images.read_image` gives images.
numpy and OpenCV only (the prediction path).
"""

import contextlib
import os
import re

import cv2
import numpy as np

from .errors import DataError

__all__ = ["VIDEO_EXTENSIONS", "is_video_source", "is_live", "frames", "source_fps", "VideoSink"]

#: Extensions read as videos (case-insensitive).
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts")

_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def is_video_source(source):
    """Whether ``source`` (a path, a URL, or a camera index as an int) is read as a video."""
    if isinstance(source, int):
        return True
    source = os.fspath(source)
    return bool(_URL.match(source)) or os.path.splitext(source)[1].lower() in VIDEO_EXTENSIONS


def is_live(source):
    """Whether ``source`` is a camera or a stream (a URL): it has no end, Ctrl-C is how it stops."""
    return isinstance(source, int) or bool(_URL.match(os.fspath(source)))


@contextlib.contextmanager
def _quiet_opencv():
    """OpenCV's own warnings (a camera that is not there, a codec it lacks) off: the DataError says it once."""
    logging = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging is None:
        yield
        return
    old = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_ERROR)
    try:
        yield
    finally:
        logging.setLogLevel(old)


def _open(source):
    what = f"camera {source}" if isinstance(source, int) else os.fspath(source)
    if not isinstance(source, int) and not _URL.match(what) and not os.path.isfile(what):
        raise DataError(what, "", "no such video file", "check the path (or give a camera with --camera N)",
                        kind="missing image")
    with _quiet_opencv():
        capture = cv2.VideoCapture(source)
    if not capture.isOpened():
        fix = ("check that the camera is connected and free (another program may hold it)" if isinstance(source, int)
               else "check the URL and that the stream is up" if _URL.match(what)
               else "check that it is a video OpenCV can decode (MP4/H.264, AVI/MJPG, ...)")
        raise DataError(what, "", "cannot be opened as a video", fix, kind="bad image")
    return what, capture


def frames(source, every=1):
    """Yield ``(index, seconds, image)`` for every ``every``-th frame of ``source``.

    Parameters
    ----------
    source : str, path-like or int
        A video file, a URL OpenCV opens, or a camera index.
    every : int
        Keep frames 0, every, 2 * every, ... (the others are read and dropped).

    Yields
    ------
    index : int
        The frame's number in the source, from 0.
    seconds : float
        Its time: the stream's own position when it has one, else ``index / fps`` (0 without fps).
    image : (rows, cols, 3) ndarray of uint8, RGB
    """
    every = int(every)
    if every < 1:
        raise ValueError(f"every must be at least 1, got {every}")
    what, capture = _open(source)
    fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
    try:
        index = 0
        while True:
            if index % every:
                if not capture.grab():
                    break
                index += 1
                continue
            ok, frame = capture.read()
            if not ok or frame is None:
                break
            msec = capture.get(cv2.CAP_PROP_POS_MSEC)
            seconds = index / fps if fps > 0 else (msec / 1000.0 if msec and msec > 0 else 0.0)
            if frame.ndim == 2:
                frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
            else:
                frame = cv2.cvtColor(frame[:, :, :3], cv2.COLOR_BGR2RGB)
            yield index, float(seconds), np.ascontiguousarray(frame)
            index += 1
    finally:
        capture.release()


def source_fps(source):
    """The frame rate a video file or stream declares (0.0 when it declares none)."""
    _, capture = _open(source)
    try:
        return float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
    finally:
        capture.release()


class VideoSink:
    """Frames written to a video file (``cv2.VideoWriter``): MJPG for ``.avi``, ``mp4v`` for the rest.

    Opened on the first frame (its size decides the video's); ``path`` is a temporary file the
    caller renames (see :func:`classic_loc._fileio.atomic_path`).
    """

    def __init__(self, path, fps, final_name=None):
        self.path, self.fps = os.fspath(path), float(fps) if fps and fps > 0 else 10.0
        self.final_name = os.fspath(final_name or path)
        self.writer = None
        self.n = 0

    def write(self, rgb):
        if self.writer is None:
            ext = os.path.splitext(self.final_name)[1].lower()
            fourcc = cv2.VideoWriter_fourcc(*("MJPG" if ext == ".avi" else "mp4v"))
            with _quiet_opencv():
                self.writer = cv2.VideoWriter(self.path, fourcc, self.fps, (rgb.shape[1], rgb.shape[0]))
            if not self.writer.isOpened():
                raise DataError(self.final_name, "", "OpenCV cannot write a video of this kind",
                                "give --draw a .mp4 or .avi name", kind="usage")
        self.writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        self.n += 1

    def close(self):
        if self.writer is not None:
            self.writer.release()
            self.writer = None
