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
import re
import shutil
import stat
import tempfile
import time
import warnings
from contextlib import ExitStack, contextmanager

import numpy as np

from ._fileio import (atomic_path, atomic_write_bytes, atomic_write_text, describe_file_type, fsync_file,
                      output_kind, temporary_suffix)
from ._progress import progress
from .errors import DataError, DataWarning
from .evaluation import evaluate
from .images import read_image

__all__ = ["fit_and_evaluate", "evaluate_model", "iter_predictions", "predict_files", "write_predictions",
           "single_thread", "image_files", "collect_images", "relative_ids", "drawn_path", "check_outputs",
           "check_writable", "check_images", "printable_path", "rescue_locations", "drawn_files", "drawn_manifest",
           "DRAWN_MANIFEST"]

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
    settings = model._prediction_settings()
    with single_thread():
        for i in progress(range(len(dataset)), "evaluating", verbose):
            rec = dataset[i]
            image = dataset.image(i)
            t0 = time.perf_counter()
            det, windows = model._detect_one(image, settings=settings)
            times.append(time.perf_counter() - t0)
            refined[rec.image_id] = det
            unrefined[rec.image_id] = {"boxes": windows, "labels": det.labels, "scores": det.scores}
            results.extend(det.to_coco(rec.image_id))
    return {"metrics": evaluate(dataset, refined, iou_threshold),
            "metrics_unrefined": evaluate(dataset, unrefined, iou_threshold),
            "predict_ms_per_image": float(np.median(times) * 1000) if times else 0.0,
            "predictions": results}


RESCUE_PREFIX = "classic-loc-rescue-"


def rescue_locations():
    """Where a failed final write is kept, in order: the system temporary folder, the current folder, the home folder."""
    out, seen = [], set()
    for get in (tempfile.gettempdir, os.getcwd, lambda: os.path.expanduser("~")):
        try:
            folder = get()
        except OSError:  # a current folder that was removed
            continue
        key = os.path.normcase(os.path.realpath(folder))
        if folder and key not in seen:
            seen.add(key)
            out.append(folder)
    return out


def _reason(exc):
    return exc.strerror or str(exc) or type(exc).__name__


def _rescue_write(what, path, write):
    """``write(path)``; when it fails with an OSError, ``write`` into a fresh folder of a rescue location instead.

    The locations (:func:`rescue_locations`) are tried in order; a rescue folder
    that could not be filled is removed. Returns ``(result, None)``, or
    ``(None, (error, kept_path, tried))`` after a failure, ``kept_path`` None when
    every rescue failed too and ``tried`` the ``(folder, error)`` of each failed rescue.
    """
    try:
        return write(path), None
    except OSError as exc:
        first = exc
    name = os.path.basename(os.fspath(path)) or what
    tried = []
    for location in rescue_locations():
        try:
            rescue = tempfile.mkdtemp(prefix=RESCUE_PREFIX, dir=location)
        except OSError as exc:
            tried.append((location, exc))
            continue
        kept = os.path.join(rescue, name)
        try:
            write(kept)
        except OSError as exc:
            tried.append((location, exc))
            shutil.rmtree(rescue, ignore_errors=True)
            continue
        except BaseException:  # an interrupt: no empty rescue folder is left behind
            shutil.rmtree(rescue, ignore_errors=True)
            raise
        return None, (first, kept, tried)
    return None, (first, None, tried)


def _failed_write(what, path, exc, kept, tried):
    if kept is not None:
        return OSError(exc.errno, f"cannot write the {what} ({_reason(exc)}); it is kept in {kept}: copy it from "
                       "there, or free space and run again", os.fspath(path))
    where = "; ".join(f"in {folder}: {_reason(err)}" for folder, err in tried) or "no rescue location"
    option = "--out" if what == "model" else "--report"
    return OSError(exc.errno, f"cannot write the {what} ({_reason(exc)}), and keeping a copy failed too ({where}): "
                   f"the {what} is lost; free space there or write it elsewhere (fit {option} PATH), and run again",
                   os.fspath(path))


# ------------------------------------------------------------------ run folders
RUNS_IGNORE = "# written by classic_loc: the runs of `fit` are outputs, not sources\n*\n"


def new_run_folder(project="runs", name="fit", exist_ok=False):
    """Create and return the folder of a new run: ``project/name``, or ``name2``, ``name3``... if taken.

    The number is the lowest free one above the highest used (as Ultralytics numbers its
    ``runs/detect/train``, ``train2``...), taken by an atomic ``mkdir``, so two runs started at once
    never share a folder. With ``exist_ok``, ``project/name`` itself is used, whether or not it
    exists (its files are then replaced). A ``project`` folder this creates gets a ``.gitignore``
    of ``*``, so runs made inside a git checkout leave ``git status`` clean.

    Returns
    -------
    (folder, created) : (str, bool)
        ``created`` is False only when ``exist_ok`` reused an existing folder.
    """
    if not name or name in (".", "..") or os.sep in name or (os.altsep and os.altsep in name):
        raise DataError("--name", name, "is not a folder name", "give a plain name such as fit or faces",
                        kind="usage")
    if os.path.exists(project) and not os.path.isdir(project):
        raise DataError(project, "--project", "is a file, not a folder", "give a folder for the runs",
                        kind="usage")
    if not os.path.isdir(project):
        os.makedirs(project)
        atomic_write_text(os.path.join(project, ".gitignore"), RUNS_IGNORE)
    if exist_ok:
        folder = os.path.join(project, name)
        created = not os.path.isdir(folder)
        os.makedirs(folder, exist_ok=True)
        return folder, created
    pattern = re.compile(re.escape(name) + r"(\d*)")
    used = [int(m.group(1) or 1) for m in map(pattern.fullmatch, os.listdir(project)) if m]
    number = max(used, default=0) + 1
    while True:
        folder = os.path.join(project, name if number == 1 else f"{name}{number}")
        try:
            os.mkdir(folder)
            return folder, True
        except FileExistsError:  # another run took it first
            number += 1


def fit_and_evaluate(model, train, test, model_path=None, report_path=None, verbose=False, extra=None,
                     predictions_path=None):
    """Fit ``model`` on ``train``, evaluate on ``test``, save the model and a JSON report.

    With ``predictions_path``, the test images' detections are also written there as a COCO
    results JSON list (what ``evaluate --pred`` reads), with the test set's image ids.

    Worker processes (``n_jobs`` > 1) end with this process, however it ends
    (see :func:`classic_loc.parallel.workers_die_with_parent`). When the model or the report cannot be
    written (a full disk, say), it is written into a new folder of the first
    rescue location that takes it (:func:`rescue_locations`) instead, and an
    ``OSError`` naming the output path and saying where it is kept (or that
    every rescue failed too) is raised after both writes.

    Returns the report (a dict with at least :data:`REPORT_KEYS`).
    """
    t0 = time.perf_counter()
    model.fit(train)
    fit_seconds = time.perf_counter() - t0
    ev = evaluate_model(model, test, verbose=verbose)
    model_bytes, model_failure = _rescue_write("model", model_path, model.save) if model_path else (None, None)
    model_kept = model_failure[1] if model_failure else None
    if model_kept:
        model_bytes = os.path.getsize(model_kept)
    training = model.fit_report_
    report = {
        "metrics": ev["metrics"],
        "fit_seconds": round(fit_seconds, 2),
        "predict_ms_per_image": round(ev["predict_ms_per_image"], 2),
        "model_bytes": model_bytes,
        "mean_iou_before_refinement": ev["metrics_unrefined"]["mean_iou"],
        "mean_iou_after_refinement": ev["metrics"]["mean_iou"],
        "unreachable_boxes": training["unreachable_boxes"],
        "train": {"root": train.root, "images": len(train), **train.counts()},
        "test": {"root": test.root, "images": len(test), **test.counts()},
        "model": (None if model_failure and not model_kept else os.path.abspath(model_kept or model_path))
        if model_path else None,
        "params": {k: v for k, v in model.get_params().items()},
        "training": {k: v for k, v in training.items() if k != "unreachable_boxes"},
        **(extra or {}),
    }
    report_failure = None
    if report_path:
        text = json.dumps(report, indent=2, default=str)
        _, report_failure = _rescue_write("report", report_path, lambda p: atomic_write_text(p, text))
    if predictions_path and not (model_failure or report_failure):  # after the two that matter most
        atomic_write_text(predictions_path, json.dumps(ev["predictions"]))
    if model_failure:
        error = _failed_write("model", model_path, *model_failure)
        if report_failure:  # both: one line that says where each is
            also = _failed_write("report", report_path, *report_failure)
            error = OSError(error.errno, f"{error.strerror}; and {also.filename}: {also.strerror}", error.filename)
        raise error
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

    Two outputs may both be the same character device or FIFO (``/dev/null``):
    they are written through, one after the other, and nothing is replaced.

    Raises
    ------
    DataError
        One line naming the output, the option and the input it would overwrite.
    """
    from .datasets._common import IMAGE_EXTENSIONS

    seen, files, existing = {}, {}, {}
    for what, path in outputs:
        fkey = _file_key(path)
        if output_kind(path) != "stream":
            key = _norm(path)
            if key in seen or (fkey is not None and fkey in files):
                other = seen.get(key) or files[fkey][0]
                raise DataError(path, what, f"is also the {other} output", "give each output its own path",
                                kind="output overwrites input")
            seen[key] = what
            if fkey is not None:
                files[fkey] = (what, path)
        if fkey is not None:
            existing.setdefault(fkey, (what, path))
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


def check_writable(what, path, folder=False):
    """Refuse (DataError), before any work, an output path that cannot be written.

    The nearest existing folder of ``path`` (``path`` itself when ``folder``) must
    be a folder where a 64 KiB probe file can be written, flushed and removed: an
    unwritable, read-only or full location fails here, not after a long fit. A
    symbolic link is checked where it leads. An existing character device or FIFO
    (written through, see :func:`classic_loc._fileio.output_kind`) must only be
    writable (``os.access``): no probe file is made beside it. Any other existing
    path that is not a regular file (a folder, a block device, a socket) is refused.
    """
    path = os.fspath(path)
    if not path:
        raise DataError("''", what, "is an empty path", "give a path", kind="usage")
    if folder:
        if os.path.exists(path) and not os.path.isdir(path):
            raise DataError(path, what, "exists and is not a folder", "give a folder path", kind="unwritable output")
        target = os.path.abspath(path)
    else:
        kind = output_kind(path)
        if kind == "stream":
            if not os.access(path, os.W_OK):
                raise DataError(path, what, "cannot be written (permission denied)",
                                "choose a path you may write", kind="unwritable output")
            return
        if os.path.isdir(path):
            raise DataError(path, what, "is a folder", "give a file path", kind="unwritable output")
        if kind == "other":
            raise DataError(path, what, f"is {describe_file_type(os.stat(path).st_mode)}, not a regular file",
                            "give a file path (or a character device or FIFO, written through)",
                            kind="unwritable output")
        target = os.path.dirname(os.path.realpath(path))
    probe_dir = target
    while not os.path.exists(probe_dir) and os.path.dirname(probe_dir) != probe_dir:
        probe_dir = os.path.dirname(probe_dir)
    if not os.path.isdir(probe_dir):
        raise DataError(path, what, f"{probe_dir} is a file, not a folder", "choose an output path inside a folder",
                        kind="unwritable output")
    # named as atomic_path names its temporaries, so that a probe left by a SIGKILL is swept like them
    probe = os.path.join(probe_dir, f".classic-loc-probe{temporary_suffix()}")
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


def printable_path(path):
    """``path`` as one printable line: bytes that are not UTF-8 shown as ``\\xff`` escapes."""
    try:
        raw = os.fsencode(path)
    except (UnicodeError, TypeError):
        return repr(path)
    return raw.decode("utf-8", "backslashreplace")


def collect_images(inputs, skip_bad=False, exclude=()):
    """``(path, image_id)`` of every image in ``inputs`` (image files and folders), in order.

    A folder gives its regular image files (by extension), sorted, its subfolders
    included; hidden files and folders (names starting with ".") are skipped, and
    so are the files an earlier ``--draw`` wrote, unchanged since, into a folder of
    ``exclude`` that lies inside it (see :func:`drawn_files`; any other file there
    is an input, and an image given explicitly is never left out).
    A file given explicitly must be a regular file (a
    FIFO or device is refused: reading it could block). The same file given twice
    is listed once. ``image_id`` is the path relative to the deepest folder
    common to the inputs, with "/" (see :func:`relative_ids`); an image whose
    ``image_id`` is not valid UTF-8 (a file name in another encoding: JSON cannot
    hold it) is refused with a DataError naming it, or with ``skip_bad`` left out
    and counted in one warning.
    """
    from .datasets._common import IMAGE_EXTENSIONS

    paths, anchors, seen = [], [], set()
    excluded = [(folder, drawn_files(folder)) for folder in exclude if folder and os.path.isdir(folder)]

    def add(path):
        key = os.path.normcase(os.path.abspath(path))
        if key not in seen:
            seen.add(key)
            paths.append(path)

    for item in inputs:
        item = os.fspath(item)
        if os.path.isdir(item):
            anchors.append(os.path.abspath(item))
            # earlier drawings in a --draw folder inside this folder are not inputs (while unchanged)
            skip = set().union(*(files for folder, files in excluded
                                 if _inside(folder, item) and _norm(folder) != _norm(item)))
            for dirpath, dirnames, filenames in os.walk(item):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for name in sorted(filenames):
                    full = os.path.join(dirpath, name)
                    if not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS) and _is_regular(full) \
                            and not (skip and _norm(full) in skip):
                        add(full)
        elif not os.path.lexists(item):
            raise DataError(item, "", "no such image file or folder", "check the path", kind="missing image")
        elif not _is_regular(item):
            raise DataError(item, "", "is not a regular file (a FIFO, device, socket or broken link)",
                            "give image files or folders of images", kind="not a file")
        else:
            anchors.append(os.path.dirname(os.path.abspath(item)))
            add(item)
    items, bad = [], []
    for path, image_id in zip(paths, relative_ids(paths, anchors)):
        try:
            image_id.encode("utf-8")
        except UnicodeEncodeError:
            err = DataError(printable_path(path), "", "the file name is not valid UTF-8, so its image_id cannot be "
                            "written in JSON", "rename the file to a UTF-8 name (or pass --skip-bad to skip it)",
                            kind="bad file name")
            if not skip_bad:
                raise err from None
            bad.append(err)
            continue
        items.append((path, image_id))
    if bad:
        warnings.warn(f"skipped {len(bad)} image{'s' if len(bad) > 1 else ''} whose file name is not UTF-8 "
                      f"(first: {bad[0]})", DataWarning, stacklevel=2)
    return items


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


#: The hidden file beside a ``--draw`` folder ``d`` that lists the files drawn into it: ``.d`` + this suffix.
DRAWN_MANIFEST = ".classic-loc-drawn.json"


def drawn_manifest(draw_dir):
    """The file beside ``draw_dir`` that lists the files drawn into it (relative path -> [size, mtime_ns, inode])."""
    folder, name = os.path.split(os.path.abspath(draw_dir))
    return os.path.join(folder, f".{name}{DRAWN_MANIFEST}")


def _signature(path):
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ino] if stat.S_ISREG(st.st_mode) else None


def _read_manifest(draw_dir):
    try:
        with open(drawn_manifest(draw_dir), encoding="utf-8") as fh:
            files = json.load(fh).get("files")
    except (OSError, ValueError, AttributeError, RecursionError):  # none, or not ours: nothing is known drawn
        return {}
    return {k: v for k, v in files.items() if isinstance(k, str) and isinstance(v, list)} \
        if isinstance(files, dict) else {}


def drawn_files(draw_dir):
    """The files (normalized real paths) that ``--draw`` wrote in ``draw_dir`` and that are unchanged since."""
    out = set()
    for rel, sig in _read_manifest(draw_dir).items():
        full = os.path.join(draw_dir, *rel.split("/"))
        if sig == _signature(full):
            out.add(_norm(full))
    return out


def _record_drawn(draw_dir, targets):
    """Add ``targets`` to ``draw_dir``'s manifest (entries whose file changed or went are dropped); never raises."""
    try:
        files = {rel: sig for rel, sig in _read_manifest(draw_dir).items()
                 if sig == _signature(os.path.join(draw_dir, *rel.split("/")))}
        for target in targets:
            sig = _signature(target)
            if sig is not None:
                files[os.path.relpath(target, draw_dir).replace(os.sep, "/")] = sig
        atomic_write_text(drawn_manifest(draw_dir),
                          json.dumps({"format": "classic_loc drawn files", "files": files}, indent=0, sort_keys=True))
    except (OSError, ValueError):  # the drawings are written; only the next run's convenience is lost
        pass


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


def _reported(model, image, threshold):
    """The detections ``predict`` reports for ``image``: all the model's, or those scoring at least ``threshold``."""
    det = model.detect(image)
    return det if threshold is None else det[det.scores >= threshold]


def _drawn(model, image, det, conf):
    """``image`` with the detections of ``det`` scoring at least ``conf`` drawn (None: the presence threshold)."""
    from .draw import draw_detections

    shown = det[det.scores >= (model.presence_threshold_ if conf is None else conf)]
    return draw_detections(image, shown.boxes, shown.labels, shown.scores, model.classes_)


def _predict_one(model, path, image_id, threshold, draw_dir, skip_bad, drawn=None, conf=None):
    try:
        image = read_image(path)
    except DataError as err:
        if skip_bad:
            return [], err
        raise
    det = _reported(model, image, threshold)
    if draw_dir:
        target = drawn_path(draw_dir, image_id)
        atomic_write_bytes(target, _encode(_drawn(model, image, det, conf), target))
        if drawn is not None:
            drawn.append(target)
    return det.to_coco(image_id), None


def iter_predictions(model, paths, threshold=None, draw_dir=None, n_jobs=1, verbose=False, image_ids=None,
                     skip_bad=False, record_drawn=False, conf=None):
    """Yield each image's COCO results (a list), in order, streaming.

    ``threshold``: report the detections scoring at least this; None (the default): every detection
    :meth:`~classic_loc.Localizer.detect` reports, so the results are the model's own (its
    ``min_score`` floors the per-class scores, before the size calibration). The drawn images
    show the reported detections scoring at least ``conf``, by default the model's
    ``presence_threshold_`` (the score at which :meth:`~classic_loc.Localizer.predict` says an
    object is there), not the long tail down to ``min_score`` that AP needs.
    ``image_id`` of the results is ``image_ids[i]`` (default :func:`relative_ids`
    of the paths: for the images of one folder, their file names). With
    ``draw_dir``, each image is also written there with its detections drawn,
    at the same relative path (folders created, each file written atomically).
    With ``skip_bad``, an image that cannot be read gives no results and is
    counted in one warning at the end; else its DataError (naming it) is raised.

    At most ``2 * n_jobs`` images are read or predicted at once, so memory stays
    constant however many paths there are. With ``n_jobs`` > 1 images are spread
    over threads sharing the one model (OpenCV and numpy release the GIL in the heavy parts).

    With ``record_drawn``, the drawn files are listed (size, time, inode) in a
    hidden file beside ``draw_dir`` (:func:`drawn_manifest`), even when the run
    stops early: :func:`collect_images` then leaves them out of the inputs as long
    as they are unchanged (``predict a/ --draw a/drawn`` can run again).
    """
    paths = list(paths)
    ids = list(image_ids) if image_ids is not None else relative_ids(paths)
    if draw_dir:
        os.makedirs(draw_dir, exist_ok=True)
    drawn = []
    try:
        yield from _iter_predictions(model, paths, ids, threshold, draw_dir, n_jobs, verbose, skip_bad, drawn, conf)
    finally:
        if drawn and record_drawn:
            _record_drawn(draw_dir, drawn)


def _iter_predictions(model, paths, ids, threshold, draw_dir, n_jobs, verbose, skip_bad, drawn, conf):
    skipped = []

    def result(out):
        entries, err = out
        if err is not None:
            skipped.append(err)
        return entries

    if n_jobs == 1:
        for path, image_id in progress(list(zip(paths, ids)), "predicting", verbose):
            yield result(_predict_one(model, path, image_id, threshold, draw_dir, skip_bad, drawn, conf))
    else:
        from collections import deque
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(max_workers=n_jobs)
        pending = deque()
        try:
            bar = progress(range(len(paths)), "predicting", verbose)
            done = iter(bar)
            for path, image_id in zip(paths, ids):
                pending.append(pool.submit(_predict_one, model, path, image_id, threshold, draw_dir, skip_bad,
                                           drawn, conf))
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
                  skip_bad=False, conf=None):
    """COCO results for every image path, as one list (see :func:`iter_predictions`)."""
    return [entry for part in iter_predictions(model, paths, threshold, draw_dir, n_jobs, verbose, image_ids,
                                               skip_bad, conf=conf) for entry in part]


def write_predictions(path, model, paths, threshold=None, draw_dir=None, n_jobs=1, verbose=False, image_ids=None,
                      skip_bad=False, record_drawn=False, conf=None):
    """Stream COCO results for ``paths`` into the JSON file ``path`` (atomically); returns the detection count.

    Each image's detections are written as soon as they are ready, so a folder
    of any size is predicted in constant memory. An interrupted or failed run
    leaves the previous file at ``path`` as it was.
    """
    n = 0
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write("[")
            for part in iter_predictions(model, paths, threshold, draw_dir, n_jobs, verbose, image_ids, skip_bad,
                                         record_drawn, conf):
                for entry in part:
                    fh.write(("," if n else "") + "\n" + json.dumps(entry))
                    n += 1
            fh.write("\n]\n")
            fh.flush()
            fsync_file(fh)
    return n


# ---------------------------------------------------------------- videos, cameras, streams
def video_record(det, index, seconds):
    """One frame's detections as a JSON Lines record: frame, time (s), boxes (xyxy px), scores, labels (names)."""
    return {"frame": int(index), "time": round(float(seconds), 3),
            "boxes": [[round(float(v), 2) for v in b] for b in det.boxes],
            "scores": [round(float(s), 9) for s in det.scores],
            "labels": [det.classes[int(k)] for k in det.labels]}


def iter_video_predictions(model, source, every=1, threshold=None, draw=None, conf=None):
    """Yield ``(record, drawn_image_or_None)`` per kept frame of a video, camera or stream (see :mod:`.sources`).

    ``threshold`` keeps the detections scoring at least it (None: all the model reports); with
    ``draw``, each frame also comes back with the detections of at least ``conf`` (default the
    model's presence threshold) drawn.
    """
    from .sources import frames

    for index, seconds, image in frames(source, every):
        det = _reported(model, image, threshold)
        yield video_record(det, index, seconds), _drawn(model, image, det, conf) if draw else None


def write_video_predictions(model, source, out=None, draw=None, every=1, threshold=None, conf=None, verbose=False,
                            stdout=None):
    """Predict every ``every``-th frame of ``source``; JSON Lines to ``out`` (or ``stdout``), the drawn video to ``draw``.

    Each record is written (and flushed) as its frame is done; ``out`` and ``draw`` are
    temporary files renamed when the stream ends, so an earlier file of that name is replaced
    only by a complete one. Ctrl-C ends a camera or a stream (a URL) normally: what was done is
    kept; it leaves a video file's outputs as they were, as any error does. Returns
    ``(frames, seconds)``.
    """
    import sys

    from .sources import VideoSink, is_live, source_fps

    stdout = sys.stdout if stdout is None else stdout
    started = time.perf_counter()
    fps = source_fps(source)  # opens the source once first: a DataError here, before any output or progress
    n = 0
    with ExitStack() as stack:
        fh = stdout
        if out:
            fh = stack.enter_context(open(stack.enter_context(atomic_path(out)), "w", encoding="utf-8"))
        sink = None
        if draw:
            tmp = stack.enter_context(atomic_path(draw))
            video_tmp = tmp + os.path.splitext(os.fspath(draw))[1]  # OpenCV picks the container by the extension
            stack.callback(lambda: os.path.exists(video_tmp) and os.unlink(video_tmp))
            sink = VideoSink(video_tmp, fps / max(int(every), 1), final_name=draw)
            stack.callback(sink.close)
        bar = progress(iter(()), "predicting frames", verbose) if verbose else None
        try:
            for record, drawn in iter_video_predictions(model, source, every, threshold, draw, conf):
                fh.write(json.dumps(record) + "\n")
                fh.flush()
                if sink is not None:
                    sink.write(drawn)
                n += 1
                if bar is not None:
                    bar.update(1)
        except KeyboardInterrupt:
            if not is_live(source):
                raise  # a file: interrupted means unfinished
        finally:
            if bar is not None:
                bar.close()
        if n == 0:
            what = f"camera {source}" if isinstance(source, int) else os.fspath(source)
            raise DataError(what, "", "no frame could be read", "check that the video is not empty or damaged",
                            kind="bad image")
        if sink is not None:
            sink.close()
            os.replace(video_tmp, tmp)
        if out:
            fsync_file(fh)
    return n, time.perf_counter() - started


# ---------------------------------------------------------------- the seed notes' y-vectors
def yvector(det, width, height):
    """An image's main prediction as the notes' y-vector ``[p_c, bx, by, bh, bw, c1 .. cK]``.

    ``p_c`` is the top detection's score (0 without one), the box its centre and size relative
    to the image, ``c`` one-hot of its class (zeros without one). :func:`classic_loc.evaluate`
    reads these back (see :func:`~classic_loc.evaluation.read_predictions`).
    """
    k = len(det.classes)
    if not len(det):
        return [0.0] * (5 + k)
    x1, y1, x2, y2 = (float(v) for v in det.boxes[0])
    c = [0.0] * k
    c[int(det.labels[0])] = 1.0
    return [round(float(det.scores[0]), 9), round((x1 + x2) / 2 / width, 6), round((y1 + y2) / 2 / height, 6),
            round((y2 - y1) / height, 6), round((x2 - x1) / width, 6)] + c


def write_yvectors(path, model, paths, image_ids, verbose=False, skip_bad=False, stdout=None):
    """The y-vector of every image (see :func:`yvector`) as one JSON object, to ``path`` (atomically) or ``stdout``.

    ``{"format": "yvector", "classes": [...], "predictions": {image_id: [p_c, bx, by, bh, bw, c1 .. cK]}}``.
    Returns the number of images written.
    """
    import sys

    vectors, skipped = {}, []
    for p, image_id in progress(list(zip(paths, image_ids)), "predicting", verbose):
        try:
            image = read_image(p)
        except DataError as err:
            if not skip_bad:
                raise
            skipped.append(err)
            continue
        vectors[image_id] = yvector(model.detect(image), image.shape[1], image.shape[0])
    if skipped:
        warnings.warn(f"skipped {len(skipped)} image{'s' if len(skipped) > 1 else ''} that cannot be read "
                      f"(first: {skipped[0]})", DataWarning, stacklevel=2)
    text = json.dumps({"format": "yvector", "classes": list(model.classes_), "predictions": vectors})
    if path:
        atomic_write_text(path, text + "\n")
    else:
        print(text, file=sys.stdout if stdout is None else stdout)
    return len(vectors)
