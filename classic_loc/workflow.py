"""The runs the command line (and the benchmarks) make: fit, evaluate, report; predict over files.

:func:`fit_and_evaluate` trains on one split, scores the test split with the
shared evaluator, times prediction and writes the model and a JSON report
(keeping them in a temporary folder when they cannot be written).
:func:`predict_files` streams images through a model (constant memory), each
result keyed by the image's path relative to the inputs' common folder
(:func:`collect_images`, :func:`relative_ids`).

Checks a command makes before any work: :func:`check_outputs` (no output over
an input or over another output), :func:`check_writable` (every output
location can be written), :func:`check_images` (every training and test
image decodes).
"""

import json
import os
import stat
import tempfile
import time
import warnings
from contextlib import ExitStack, contextmanager

import numpy as np

from ._fileio import TMP_MARKER, atomic_path, atomic_write_bytes, atomic_write_text
from ._progress import progress
from .errors import DataError, DataWarning
from .evaluation import evaluate
from .images import read_image

__all__ = ["fit_and_evaluate", "evaluate_model", "iter_predictions", "predict_files", "write_predictions",
           "single_thread", "image_files", "collect_images", "relative_ids", "drawn_path", "check_outputs",
           "check_writable", "check_images"]

REPORT_KEYS = ("metrics", "fit_seconds", "predict_ms_per_image", "model_bytes", "mean_iou_before_refinement",
               "mean_iou_after_refinement", "unreachable_boxes")


@contextmanager
def single_thread():
    """OpenCV, and BLAS where threadpoolctl is installed, limited to one thread inside the block."""
    import cv2

    before = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        with ExitStack() as stack:
            try:
                from threadpoolctl import threadpool_limits

                stack.enter_context(threadpool_limits(1))
            except ImportError:
                pass
            yield
    finally:
        cv2.setNumThreads(before)


def evaluate_model(model, dataset, iou_threshold=0.5, verbose=False):
    """Detect on every image of ``dataset`` (one thread, timed) and score with the shared evaluator.

    Returns
    -------
    dict with ``metrics`` (detections as reported), ``metrics_unrefined`` (the same
    detections' boxes before ridge refinement), ``predict_ms_per_image`` (median over
    images of detection time, image decoding excluded), ``predictions`` (COCO results list).
    """
    refined, unrefined, results, times = {}, {}, [], []
    with single_thread():
        for i in progress(range(len(dataset)), "evaluating", verbose):
            rec = dataset[i]
            image = dataset.image(i)
            t0 = time.perf_counter()
            det, windows = model._detect_one(image)
            times.append(time.perf_counter() - t0)
            refined[rec.image_id] = det
            unrefined[rec.image_id] = {"boxes": windows, "labels": det.labels, "scores": det.scores}
            results.extend(det.to_coco(rec.image_id))
    return {"metrics": evaluate(dataset, refined, iou_threshold),
            "metrics_unrefined": evaluate(dataset, unrefined, iou_threshold),
            "predict_ms_per_image": float(np.median(times) * 1000) if times else 0.0,
            "predictions": results}


def _rescue_write(what, path, write):
    """``write(path)``; when it fails with an OSError, ``write`` into a fresh temporary folder instead.

    Returns ``(result, None)``, or ``(None, (error, kept_path))`` after a rescue.
    """
    try:
        return write(path), None
    except OSError as exc:
        rescue = tempfile.mkdtemp(prefix="classic-loc-rescue-")
        kept = os.path.join(rescue, os.path.basename(os.fspath(path)) or what)
        try:
            write(kept)
        except OSError:
            raise exc from None
        return None, (exc, kept)


def _failed_write(what, path, exc, kept):
    return OSError(exc.errno, f"cannot write the {what} ({exc.strerror or exc}); it is kept in {kept}: copy it from "
                   "there, or free space and run again", os.fspath(path))


def fit_and_evaluate(model, train, test, model_path=None, report_path=None, verbose=False, extra=None):
    """Fit ``model`` on ``train``, evaluate on ``test``, save the model and a JSON report.

    Worker processes (``n_jobs`` > 1) end with this process, however it ends
    (see :func:`classic_loc.parallel.workers_die_with_parent`). When the model or the report cannot be
    written (a full disk, say), it is written into a new temporary folder instead
    and an ``OSError`` whose message says where is raised after both writes.

    Returns the report (a dict with at least :data:`REPORT_KEYS`).
    """
    t0 = time.perf_counter()
    model.fit(train)
    fit_seconds = time.perf_counter() - t0
    ev = evaluate_model(model, test, verbose=verbose)
    model_bytes, model_failure = _rescue_write("model", model_path, model.save) if model_path else (None, None)
    training = model.fit_report_
    report = {
        "metrics": ev["metrics"],
        "fit_seconds": round(fit_seconds, 2),
        "predict_ms_per_image": round(ev["predict_ms_per_image"], 2),
        "model_bytes": model_bytes if model_failure is None else os.path.getsize(model_failure[1]),
        "mean_iou_before_refinement": ev["metrics_unrefined"]["mean_iou"],
        "mean_iou_after_refinement": ev["metrics"]["mean_iou"],
        "unreachable_boxes": training["unreachable_boxes"],
        "train": {"root": train.root, "images": len(train), **train.counts()},
        "test": {"root": test.root, "images": len(test), **test.counts()},
        "model": (os.path.abspath(model_failure[1] if model_failure else model_path)) if model_path else None,
        "params": {k: v for k, v in model.get_params().items()},
        "training": {k: v for k, v in training.items() if k != "unreachable_boxes"},
        **(extra or {}),
    }
    report_failure = None
    if report_path:
        text = json.dumps(report, indent=2, default=str)
        _, report_failure = _rescue_write("report", report_path, lambda p: atomic_write_text(p, text))
    if model_failure:
        raise _failed_write("model", model_path, *model_failure)
    if report_failure:
        raise _failed_write("report", report_path, *report_failure)
    return report


# ------------------------------------------------------------------ checks before any work
DATA_EXTENSIONS = (".xml", ".txt", ".json", ".csv", ".yaml", ".yml", ".names")


def _file_key(path):
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


def _norm(path):
    return os.path.normcase(os.path.realpath(os.fspath(path)))


def _inside(path, folder):
    try:
        return os.path.commonpath([_norm(path), _norm(folder)]) == _norm(folder)
    except ValueError:  # different drives
        return False


def check_outputs(outputs, inputs=(), input_folders=()):
    """Refuse, before any work, an output that would overwrite an input or another output.

    Parameters
    ----------
    outputs : sequence of (what, path)
        The files a command will write, ``what`` naming each (``"--out"``).
    inputs : iterable of (what, path)
        Files it reads (compared by identity: the same file under any name or link).
    input_folders : sequence of (what, folder)
        Data folders it reads: an existing file inside one whose extension is an
        image's or an annotation's (.xml .txt .json .csv .yaml .yml .names) counts as an input.

    Raises
    ------
    DataError
        One line naming the output, the option and the input it would overwrite.
    """
    from .datasets._common import IMAGE_EXTENSIONS

    seen, existing = {}, {}
    for what, path in outputs:
        key = _norm(path)
        fkey = _file_key(path)
        if key in seen or (fkey is not None and fkey in existing):
            other = seen.get(key) or existing[fkey][0]
            raise DataError(path, what, f"is also the {other} output", "give each output its own path",
                            kind="output overwrites input")
        seen[key] = what
        if fkey is not None:
            existing[fkey] = (what, path)
    if not existing:
        return  # inputs exist: an output that does not exist yet cannot be one of them
    for folder_what, folder in input_folders:
        for what, path in existing.values():
            if _inside(path, folder) and os.path.splitext(path)[1].lower() in IMAGE_EXTENSIONS + DATA_EXTENSIONS:
                raise DataError(path, what, f"would overwrite a file of the {folder_what} folder {folder}",
                                "write outputs outside the data folder", kind="output overwrites input")
    for in_what, in_path in inputs:
        fkey = _file_key(in_path)
        if fkey in existing:
            what, path = existing[fkey]
            same = _norm(path) == _norm(in_path)
            raise DataError(path, what, f"would overwrite the {in_what}" + ("" if same else f" {in_path}"),
                            "choose an output path that is not one of the command's inputs",
                            kind="output overwrites input")


_probe_counter = iter(range(1 << 62))


def check_writable(what, path, folder=False):
    """Refuse (DataError), before any work, an output path that cannot be written.

    The nearest existing folder of ``path`` (``path`` itself when ``folder``) must
    be a folder where a 64 KiB probe file can be written, flushed and removed: an
    unwritable, read-only or full location fails here, not after a long fit.
    """
    path = os.fspath(path)
    if folder:
        if os.path.exists(path) and not os.path.isdir(path):
            raise DataError(path, what, "exists and is not a folder", "give a folder path", kind="unwritable output")
        target = os.path.abspath(path)
    else:
        if os.path.isdir(path):
            raise DataError(path, what, "is a folder", "give a file path", kind="unwritable output")
        target = os.path.dirname(os.path.abspath(path))
    probe_dir = target
    while not os.path.exists(probe_dir) and os.path.dirname(probe_dir) != probe_dir:
        probe_dir = os.path.dirname(probe_dir)
    if not os.path.isdir(probe_dir):
        raise DataError(path, what, f"{probe_dir} is a file, not a folder", "choose an output path inside a folder",
                        kind="unwritable output")
    # named as atomic_path names its temporaries, so that a probe left by a SIGKILL is swept like them
    probe = os.path.join(probe_dir, f".classic-loc-probe{TMP_MARKER}{os.getpid()}-{next(_probe_counter)}")
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, bytes(65536))
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        raise DataError(path, what, f"cannot write in {probe_dir} ({exc.strerror or exc})",
                        "choose a writable location with free space", kind="unwritable output") from None


def check_images(dataset, skip_bad=False, n_jobs=1, verbose=False):
    """Decode every image of ``dataset`` once, before training.

    Returns ``dataset`` when every image decodes; with ``skip_bad``, a dataset
    without the images that do not (and a warning that counts them); else
    raises the DataError of the first one, which names the file.
    """
    from concurrent.futures import ThreadPoolExecutor

    def one(index):
        rec = dataset[index]
        if rec.path is None:
            return None
        try:
            read_image(rec.path)
        except DataError as err:
            return err
        return None

    bad = {}
    pool = ThreadPoolExecutor(max_workers=max(1, n_jobs))
    try:
        for index, err in zip(range(len(dataset)), progress(pool.map(one, range(len(dataset))), "checking images",
                                                             verbose, total=len(dataset))):
            if err is not None:
                if not skip_bad:
                    raise err
                bad[index] = err
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    if not bad:
        return dataset
    first = next(iter(bad.values()))
    warnings.warn(f"{dataset.root}: skipped {len(bad)} image{'s' if len(bad) > 1 else ''} that cannot be read "
                  f"(first: {first})", DataWarning, stacklevel=2)
    return dataset.with_records([r for i, r in enumerate(dataset) if i not in bad])


# ------------------------------------------------------------------ prediction over files
def _is_regular(path):
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def collect_images(inputs):
    """``(path, image_id)`` of every image in ``inputs`` (image files and folders), in order.

    A folder gives its regular image files (by extension), sorted, its subfolders
    included; hidden files and folders (names starting with ".") are skipped.
    A file given explicitly must be a regular file (a
    FIFO or device is refused: reading it could block). The same file given twice
    is listed once. ``image_id`` is the path relative to the deepest folder
    common to the inputs, with "/" (see :func:`relative_ids`).
    """
    from .datasets._common import IMAGE_EXTENSIONS

    paths, anchors, seen = [], [], set()

    def add(path):
        key = os.path.normcase(os.path.abspath(path))
        if key not in seen:
            seen.add(key)
            paths.append(path)

    for item in inputs:
        item = os.fspath(item)
        if os.path.isdir(item):
            anchors.append(os.path.abspath(item))
            for dirpath, dirnames, filenames in os.walk(item):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for name in sorted(filenames):
                    full = os.path.join(dirpath, name)
                    if not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS) and _is_regular(full):
                        add(full)
        elif not os.path.lexists(item):
            raise DataError(item, "", "no such image file or folder", "check the path", kind="missing image")
        elif not _is_regular(item):
            raise DataError(item, "", "is not a regular file (a FIFO, device, socket or broken link)",
                            "give image files or folders of images", kind="not a file")
        else:
            anchors.append(os.path.dirname(os.path.abspath(item)))
            add(item)
    return list(zip(paths, relative_ids(paths, anchors)))


def image_files(inputs):
    """Image paths from a mix of files and folders (see :func:`collect_images`)."""
    return [path for path, _ in collect_images(inputs)]


def relative_ids(paths, anchors=None):
    """Each path relative to the deepest folder common to ``anchors`` (default: the paths' folders), with "/".

    For ``a/img.jpg`` and ``b/img.jpg``: ``a/img.jpg`` and ``b/img.jpg``; for
    the images of one folder, their paths inside it; for one file, its name.
    """
    paths = [os.path.abspath(os.fspath(p)) for p in paths]
    if not paths:
        return []
    anchors = [os.path.abspath(a) for a in anchors] if anchors else [os.path.dirname(p) for p in paths]
    try:
        base = os.path.commonpath(anchors)
    except ValueError:  # different drives: keep the drive in the id
        return [p.replace(os.sep, "/") for p in paths]
    return [os.path.relpath(p, base).replace(os.sep, "/") for p in paths]


def drawn_path(draw_dir, image_id):
    """Where ``--draw`` writes the image ``image_id``: the same relative path under ``draw_dir``."""
    return os.path.join(draw_dir, *image_id.split("/"))


def _encode(drawn, path):
    import cv2

    ext = os.path.splitext(path)[1].lower()
    if ext == ".pgm":
        ok, buf = cv2.imencode(ext, cv2.cvtColor(drawn, cv2.COLOR_RGB2GRAY))
    else:
        params = [cv2.IMWRITE_JPEG_QUALITY, 90] if ext in (".jpg", ".jpeg") else []
        ok, buf = cv2.imencode(ext or ".png", cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise OSError(0, f"OpenCV cannot encode a {ext} image", path)
    return buf.tobytes()


def _predict_one(model, path, image_id, threshold, draw_dir, skip_bad):
    try:
        image = read_image(path)
    except DataError as err:
        if skip_bad:
            return [], err
        raise
    det = model.detect(image)
    keep = det.scores >= threshold
    det.boxes, det.labels, det.scores = det.boxes[keep], det.labels[keep], det.scores[keep]
    if draw_dir:
        from .draw import draw_detections

        target = drawn_path(draw_dir, image_id)
        drawn = draw_detections(image, det.boxes, det.labels, det.scores, model.classes_)
        atomic_write_bytes(target, _encode(drawn, target))
    return det.to_coco(image_id), None


def iter_predictions(model, paths, threshold=None, draw_dir=None, n_jobs=1, verbose=False, image_ids=None,
                     skip_bad=False):
    """Yield each image's COCO results (a list), in order, streaming.

    ``image_id`` of the results is ``image_ids[i]`` (default :func:`relative_ids`
    of the paths: for the images of one folder, their file names). With
    ``draw_dir``, each image is also written there with its detections drawn,
    at the same relative path (folders created, each file written atomically).
    With ``skip_bad``, an image that cannot be read gives no results and is
    counted in one warning at the end; else its DataError (naming it) is raised.

    At most ``2 * n_jobs`` images are read or predicted at once, so memory stays
    constant however many paths there are. With ``n_jobs`` > 1 images are spread
    over threads sharing the one model (OpenCV and numpy release the GIL in the heavy parts).
    """
    threshold = model.min_score if threshold is None else threshold
    paths = list(paths)
    ids = list(image_ids) if image_ids is not None else relative_ids(paths)
    if draw_dir:
        os.makedirs(draw_dir, exist_ok=True)
    skipped = []

    def result(out):
        entries, err = out
        if err is not None:
            skipped.append(err)
        return entries

    if n_jobs == 1:
        for path, image_id in progress(list(zip(paths, ids)), "predicting", verbose):
            yield result(_predict_one(model, path, image_id, threshold, draw_dir, skip_bad))
    else:
        from collections import deque
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(max_workers=n_jobs)
        pending = deque()
        try:
            bar = progress(range(len(paths)), "predicting", verbose)
            done = iter(bar)
            for path, image_id in zip(paths, ids):
                pending.append(pool.submit(_predict_one, model, path, image_id, threshold, draw_dir, skip_bad))
                if len(pending) >= 2 * n_jobs:
                    next(done, None)
                    yield result(pending.popleft().result())
            while pending:
                next(done, None)
                yield result(pending.popleft().result())
            next(done, None)  # let the bar close
        finally:
            for future in pending:  # an error, an interrupt or a closed generator: start nothing more
                future.cancel()
            pool.shutdown(wait=True)
    if skipped:
        warnings.warn(f"skipped {len(skipped)} image{'s' if len(skipped) > 1 else ''} that cannot be read "
                      f"(first: {skipped[0]})", DataWarning, stacklevel=2)


def predict_files(model, paths, threshold=None, draw_dir=None, n_jobs=1, verbose=False, image_ids=None,
                  skip_bad=False):
    """COCO results for every image path, as one list (see :func:`iter_predictions`)."""
    return [entry for part in iter_predictions(model, paths, threshold, draw_dir, n_jobs, verbose, image_ids,
                                               skip_bad) for entry in part]


def write_predictions(path, model, paths, threshold=None, draw_dir=None, n_jobs=1, verbose=False, image_ids=None,
                      skip_bad=False):
    """Stream COCO results for ``paths`` into the JSON file ``path`` (atomically); returns the detection count.

    Each image's detections are written as soon as they are ready, so a folder
    of any size is predicted in constant memory. An interrupted or failed run
    leaves the previous file at ``path`` as it was.
    """
    n = 0
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write("[")
            for part in iter_predictions(model, paths, threshold, draw_dir, n_jobs, verbose, image_ids, skip_bad):
                for entry in part:
                    fh.write(("," if n else "") + "\n" + json.dumps(entry))
                    n += 1
            fh.write("\n]\n")
            fh.flush()
            os.fsync(fh.fileno())
    return n
