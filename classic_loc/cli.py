"""The command line: ``python -m classic_loc`` / ``classic-loc``.

Thin: it parses arguments, calls the public API and prints for humans.

Exit status: 0 done; 2 a mistake in the user's input (one line ``error: ...``
naming the file, the item and the fix, never a traceback); 1 a failure that is
not the user's (a write that failed, an unexpected exception: one line, the
traceback with ``CLASSIC_LOC_DEBUG=1``); 130 after Ctrl-C (SIGINT), 143 after
SIGTERM, 129 after SIGHUP. No command writes over one of its inputs or its
other outputs, and every output location is checked for writing before any
work starts; an interrupted command leaves the previous output files as they
were and no temporary file beside them.
"""

import argparse
import json
import math
import os
import signal
import sys
import time
import warnings

from . import __version__
from .errors import DataError, require_training

__all__ = ["main", "build_parser"]


class _UsageError(Exception):
    """A command line that argparse cannot parse; main() prints it as one line (exit 2)."""


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line naming the command and pointing to its --help."""

    def error(self, message):
        raise _UsageError(f"{self.prog}: {message}; see `{self.prog} --help`")


def _unit_number(what, lo_open, example):
    """An argparse type for a finite number in [0, 1], or (0, 1] with ``lo_open``; ``what`` names it."""
    interval = "(0, 1]" if lo_open else "[0, 1]"

    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number; give {what} in {interval}, "
                                             f"e.g. {example}") from None
        if not (math.isfinite(value) and (0 < value if lo_open else 0 <= value) and value <= 1):
            raise argparse.ArgumentTypeError(f"{text} is not in {interval}; give {what} in {interval}, e.g. {example}")
        return value

    return parse


_iou = _unit_number("an IoU", lo_open=True, example=0.5)  # a match needs IoU >= it: 0 would match anything
_score = _unit_number("a score", lo_open=False, example=0.3)  # scores are calibrated probabilities


def _path(text):
    """An argparse type for a path option: any path but the empty one (which names no file)."""
    if not text:
        raise argparse.ArgumentTypeError("'' is an empty path; give a file or folder path")
    return text


def _n_jobs(text):
    """A number of processes or threads for argparse: a positive integer, or -1 for all cores."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer; give a positive integer or -1 (all cores)") \
            from None
    if value < 1 and value != -1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive integer or -1 (all cores)")
    return value


def _add_data_options(p, split_default):
    p.add_argument("--format", default="auto", choices=["auto", "voc", "coco", "yolo", "csv"],
                   help="dataset format (default: detected from the path)")
    p.add_argument("--split", default=split_default,
                   help=f"split to read: ImageSets/Main/<split>.txt, images/<split>/, <split>.csv or "
                        f"instances_<split>.json (default: {split_default})")
    p.add_argument("--images", metavar="DIR", type=_path,
                   help="COCO: the folder the file_name entries are relative to, for an instances JSON kept apart "
                        "from its images (default: found next to the JSON)")
    p.add_argument("--skip-bad", action="store_true",
                   help="skip bad boxes and images with a warning that counts them, instead of stopping")


def build_parser():
    parser = _Parser(
        prog="classic-loc",
        description="The classical HOG + linear SVM + ridge object localization baseline, "
                    "and the evaluator it shares with CNN models.")
    parser.add_argument("--version", action="version", version=f"classic_loc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    ev = sub.add_parser(
        "evaluate", help="score predictions (COCO results JSON) against ground truth",
        description="Score detections against ground truth with the shared definitions: accuracy, mean_iou, "
                    "loc_accuracy, corloc, presence accuracy/precision/recall, COCO mAP, mAP50, mAP75, per class "
                    "and a confusion matrix. Predictions are a COCO results JSON list "
                    '[{"image_id", "category_id", "bbox": [x, y, w, h], "score"}] as CNN detection code writes '
                    "it; category_id is the COCO id or the class name. image_id: an integer is the image's COCO id "
                    "when the ground truth is COCO; otherwise the first that matches of the path relative to the "
                    "data set, the file name, the stem, the integer of a numeric stem (123 for 000123.jpg), then the "
                    "last part of a path; an id matching two images or none is an error.")
    ev.add_argument("--gt", required=True, metavar="PATH", type=_path,
                    help="ground truth: a COCO JSON file or a VOC/COCO/YOLO/CSV dataset path")
    ev.add_argument("--pred", required=True, metavar="PREDS_JSON", type=_path, help="predictions as a COCO results JSON file")
    _add_data_options(ev, "test")
    ev.add_argument("--iou", type=_iou, default=0.5,
                    help="IoU a top prediction needs for loc_accuracy and corloc (IoU >= this), in (0, 1]; "
                         "default 0.5")
    ev.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    ev.add_argument("--out", metavar="REPORT_JSON", type=_path,
                    help="also write the JSON result to this file (atomically; never one of the input files)")

    fit = sub.add_parser(
        "fit", help="train a localizer on the train split, evaluate it on the test split, save model and report",
        description="Train the HOG + linear SVM localizer (hard-negative mining, calibration, ridge box "
                    "refinement) on the train split, evaluate it on the test split with the shared evaluator, "
                    "and write the model, a JSON report, the settings and the test predictions into a new run folder "
                    "(runs/fit, runs/fit2, ...); it ends with a summary of what was trained, the test metrics in "
                    "plain words, time, memory, the files and the next commands to try. Without --data it uses the "
                    "embedded demo data set (generated on first use, no download).")
    fit.add_argument("--data", metavar="PATH", type=_path, help="dataset (VOC folder, COCO json, YOLO folder, CSV); default: demo data")
    fit.add_argument("--format", default="auto", choices=["auto", "voc", "coco", "yolo", "csv"],
                     help="dataset format (default: detected from the path)")
    fit.add_argument("--images", metavar="DIR", type=_path,
                     help="COCO: the folder the file_name entries of --data are relative to, for an instances JSON "
                          "kept apart from its images (default: found next to the JSON)")
    fit.add_argument("--train-split", default="train", help="split to train on (default: train)")
    fit.add_argument("--test-split", default="test", help="split to evaluate on (default: test)")
    fit.add_argument("--test-data", metavar="PATH", type=_path,
                     help="a separate test set (file or folder); default: the test split of --data, or a seeded "
                          "30%% hold-out of the training data when there is none")
    fit.add_argument("--features", default="fhog", choices=["fhog", "hog", "haar", "fhog+haar", "hog+haar"],
                     help="feature backend: fhog (Felzenszwalb's HOG, as dlib uses), hog (Dalal-Triggs, equal "
                          "to skimage's hog), haar (Viola-Jones Haar-like features, a subset selected per class), "
                          "or a HOG and Haar concatenated per window; default: fhog")
    fit.add_argument("--project", metavar="DIR", default="runs", type=_path,
                     help="folder of the run folders (default: runs, in the current folder; created with a "
                          ".gitignore, so runs inside a git checkout are not shown as new files)")
    fit.add_argument("--name", metavar="NAME", default="fit",
                     help="name of this run's folder under --project (default: fit). Each run gets a new folder: "
                          "runs/fit, then runs/fit2, runs/fit3...; it holds model.npz, report.json (every metric, "
                          "the training log, timings), settings.json (what was asked) and predictions.json (the test "
                          "images' detections, which `evaluate --pred` reads). A previous run is never replaced")
    fit.add_argument("--exist-ok", action="store_true",
                     help="write into --project/--name even if it exists, replacing that run's files, instead of "
                          "numbering a new folder")
    fit.add_argument("--out", metavar="MODEL", type=_path,
                     help="write the model to this file instead of a run folder (an explicit --out replaces a "
                          "previous file of that name; the report goes beside it as MODEL.report.json, no settings or "
                          "predictions files). Checked before training: it must be writable "
                          "and must not be a file of the training or test data; if the final write fails (a full "
                          "disk), the model is kept in a temporary folder (else a new folder in the current folder, "
                          "else in the home folder) and the error says where. A character device or FIFO "
                          "(/dev/null, a named pipe, /dev/stdout) is written through, never replaced")
    fit.add_argument("--report", metavar="REPORT_JSON", type=_path,
                     help="JSON report to write (default: report.json in the run folder, or the --out path with "
                          ".report.json; none when --out is a character device or FIFO); same checks as --out")
    fit.add_argument("--seed", type=int, default=0, help="random seed of training and of the hold-out (default: 0)")
    fit.add_argument("--n-jobs", type=_n_jobs, default=-1,
                     help="processes for training, and threads for reading the images (default: -1, every core this "
                          "process may use; 1: no worker processes, the least memory); they end with this command, "
                          "however it ends. Results do not depend on it")
    fit.add_argument("--set", metavar="NAME=VALUE", action="append", default=[],
                     help="any other Localizer parameter, VALUE as JSON (e.g. --set window_area=96 --set "
                          "context=2 --set upsample=2); repeatable; see help(classic_loc.Localizer)")
    fit.add_argument("--skip-bad", action="store_true",
                     help="skip bad boxes, and training or test images that do not decode (every image is decoded "
                          "once before training), with a warning that counts them; without it the first one stops "
                          "the command with an error naming the file")
    fit.add_argument("--quiet", action="store_true", help="no progress bars or training log")

    pr = sub.add_parser(
        "predict", help="detect objects in images with a saved model; write COCO results JSON",
        description="Run a saved model on images (files and/or folders, streamed one at a time), or on the frames "
                    "of a video, a camera or a stream (JSON Lines, see --out), and write every "
                    "detection as COCO results JSON (category_id = class name, bbox = x, y, w, h), which `evaluate` "
                    "reads. image_id is the image's path relative to the deepest folder common to the inputs, with "
                    "'/': for `predict a/ b/`, 'a/img.jpg' and 'b/img.jpg'; for one folder, the paths inside it "
                    "('img.jpg', 'sub/x.png'); for one file, its name. Folders are searched with their subfolders "
                    "for regular image files (by extension; hidden names skipped). Needs only numpy and OpenCV.")
    pr.add_argument("--model", required=True, metavar="MODEL", type=_path,
                    help="model file written by `fit`, or the name of a model shipped with classic_loc: face "
                         "(frontal faces), person (pedestrians); a file of that name in the current folder wins")
    pr.add_argument("inputs", nargs="*", metavar="INPUT", type=_path,
                    help="image files and/or folders of images; or one video file (.mp4, .avi, .mov, .mkv, ...) or "
                         "stream URL (rtsp://, http://, ...), whose frames are predicted one by one")
    pr.add_argument("--camera", type=_camera, metavar="N",
                    help="predict the frames of camera N (0 is the first) until Ctrl-C, instead of INPUT")
    pr.add_argument("--every", type=_every, default=1, metavar="N",
                    help="video, camera or stream: predict every N-th frame only (default 1: every frame)")
    pr.add_argument("--out", metavar="PREDS_JSON", type=_path,
                    help="write the results here, atomically (default: print them): COCO results JSON for images; "
                         "for a video, camera or stream JSON Lines, one line per frame as it is done (frame, time in "
                         "seconds, boxes x1 y1 x2 y2, scores, labels), the file renamed into place at the end; never "
                         "the model or an input; a character device or FIFO (/dev/null, a named pipe) is written "
                         "through")
    pr.add_argument("--draw", metavar="DIR", type=_path,
                    help="also write each image with its boxes, labels and scores drawn, at its image_id path under "
                         "DIR (folders created, same format as the input); refused if it would overwrite an input. "
                         "When DIR lies inside an input folder, its files are not read as inputs, so the same "
                         "command can run again. For a video, camera or stream: a video file (.mp4 or .avi) of the "
                         "frames with their detections drawn")
    pr.add_argument("--format", dest="out_format", choices=["coco", "yvector"], default="coco",
                    help="images: coco (default), every detection as COCO results JSON; or yvector, the seed notes' "
                         "target vector per image, {\"format\": \"yvector\", \"classes\": [...], \"predictions\": "
                         "{image_id: [p_c, bx, by, bh, bw, c1..cK]}} (the main detection: p_c its score, its box's "
                         "centre and size relative to the image, one-hot c), which `evaluate` reads back")
    pr.add_argument("--threshold", type=_score,
                    help="report detections with at least this calibrated score (default: every detection the model "
                         "reports, as Localizer.detect and fit's evaluation do)")
    pr.add_argument("--conf", type=_score,
                    help="--draw draws the reported detections with at least this score (default: the model's "
                         "presence threshold, the score at which it says an object is there)")
    pr.add_argument("--n-jobs", type=_n_jobs, default=-1,
                    help="images processed in parallel threads (default: -1, one per core this process may use; "
                         "1 for one image at a time); results do not depend on it")
    pr.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help=f"change a prediction setting of the model for this run (repeatable): "
                         f"{', '.join(PREDICT_SETTINGS)}; e.g. --set scale_step=1.2 (fewer pyramid levels: faster) "
                         f"or --set cascade=true (Haar models: a cheap first stage rejects most windows)")
    pr.add_argument("--skip-bad", action="store_true",
                    help="skip images that cannot be read, with a warning that counts them (default: stop with an "
                         "error naming the file)")
    pr.add_argument("--quiet", action="store_true", help="no progress bar")

    demo = sub.add_parser(
        "demo", help="write the embedded demo data set (Pascal VOC layout) to a folder",
        description="Generate the deterministic demo data set that `fit` uses when no --data is given, "
                    "and print its folder.")
    demo.add_argument("--out", metavar="DIR", type=_path,
                      help="folder to write: a new or empty folder, never one with files in it (default: the cache "
                           "folder used by fit: $CLASSIC_LOC_DATA/demo-vN or ~/.cache/classic_loc/demo-vN, N the "
                           "data version)")
    return parser


_PYTHON_BOOLS = "use True or False"


def _checked(action):
    """``action()``, a ValueError or TypeError from the Localizer's parameters turned into one DataError line.

    A bad boolean's fix is said the way --set reads it: JSON ``true or false``.
    """
    try:
        return action()
    except DataError as err:
        if err.kind == "bad parameter" and err.fix.startswith(_PYTHON_BOOLS):
            fix = (f"use true or false (--set values are JSON: --set {err.item}=true)" + err.fix[len(_PYTHON_BOOLS):])
            raise DataError(err.file, err.item, err.problem, fix, kind=err.kind) from None
        raise
    except (ValueError, TypeError) as exc:
        raise DataError("--set", "", str(exc).replace("\n", " "),
                        "see help(classic_loc.Localizer) for the parameters and their values",
                        kind="bad parameter") from None


def _check_params(model):
    _checked(model.check_params)


def _cmd_evaluate(args):
    from .datasets import load_dataset
    from .evaluation import evaluate, format_report, save_json
    from .workflow import check_outputs, check_writable

    inputs = [("predictions file", args.pred), ("ground truth", args.gt)]
    folders = [("ground truth", args.gt)] if os.path.isdir(args.gt) else []
    outputs = [("--out", args.out)] if args.out else []
    for what, path in outputs:
        check_writable(what, path)
    check_outputs(outputs, inputs, folders)
    gt = load_dataset(args.gt, split=args.split, format=args.format, skip_bad=args.skip_bad, require_images=False,
                      image_root=args.images)
    check_outputs(outputs, [("ground-truth image", r.path) for r in gt if r.path])
    result = evaluate(gt, args.pred, iou_threshold=args.iou)
    if args.out:
        save_json(result, args.out)
    print(json.dumps(result) if args.json else format_report(result))
    return 0


# settings.PREDICTION_SETTINGS, written here because importing settings loads numpy, which must wait until
# _single_threaded_blas has run (a test checks that the two are equal)
PREDICT_SETTINGS = ("scale_step", "upsample", "pyramid", "cascade", "min_score", "nms_iou", "max_detections", "refine")
_PYTHON_WORDS = {"True": "true", "False": "false", "None": "null"}


def _parse_set(items, defaults=None):
    """``--set NAME=VALUE`` items as a dict; VALUE is JSON, or a bare string (such as L2-Hys) where that makes sense.

    ``defaults`` (name -> default value) refuses a bare string for a parameter whose default is a number or a bool.
    """
    params = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise DataError("--set", item, "expected NAME=VALUE", "write e.g. --set window_area=96", kind="usage")
        try:
            params[name] = json.loads(value)
        except RecursionError:
            raise DataError("--set", item, "the value is nested too deeply",
                            "give a number, true/false, null, a string or a short list", kind="bad parameter") from None
        except json.JSONDecodeError:
            word = value.strip()
            if word in _PYTHON_WORDS:
                raise DataError("--set", item, f"{word} is Python, not JSON (VALUE is read as JSON)",
                                f"write --set {name}={_PYTHON_WORDS[word]}", kind="bad parameter") from None
            default = (defaults or {}).get(name)
            if isinstance(default, bool):
                raise DataError("--set", item, f"{value!r} is not a JSON boolean",
                                f"write --set {name}=true or --set {name}=false", kind="bad parameter") from None
            if isinstance(default, (int, float)):
                raise DataError("--set", item, f"{value!r} is not a JSON number",
                                f"write a number, e.g. --set {name}={json.dumps(default)}", kind="bad parameter") from None
            params[name] = value  # a bare string such as L2-Hys
    return params


def _localizer_defaults():
    import inspect

    from .localizer import Localizer

    return {name: p.default for name, p in inspect.signature(Localizer.__init__).parameters.items()
            if name != "self" and p.default is not inspect.Parameter.empty}


def _load_split(path, fmt, split, skip_bad, image_root=None):
    from .datasets import load_dataset

    try:
        return load_dataset(path, split=split, format=fmt, skip_bad=skip_bad, image_root=image_root)
    except DataError as err:
        if err.kind == "missing split":
            return None
        raise


def _cmd_fit(args):
    require_training("fit")  # before any check or output: the base install cannot train
    from .localizer import Localizer
    from .workflow import new_run_folder

    started = time.perf_counter()

    # everything that can be checked is checked before any work: parameters, outputs, then the data
    defaults = _localizer_defaults()
    changes = _parse_set(args.set, defaults)
    unknown = sorted(set(changes) - set(defaults))
    if unknown:
        raise DataError("--set", unknown[0], "is not a Localizer parameter",
                        "see help(classic_loc.Localizer) for the parameter names", kind="usage")
    params = dict(features=args.features, random_state=args.seed, n_jobs=args.n_jobs, verbose=not args.quiet)
    params.update(changes)
    model = _checked(lambda: Localizer(**params))
    _check_params(model)
    if changes.get("cascade") is True and "haar" not in args.features:
        warnings.warn(f"--set cascade=true has no effect with --features {args.features} (no Haar features); "
                      f"use --features haar, fhog+haar or hog+haar for a cascade")
    run_dir, created = (None, False) if args.out else new_run_folder(args.project, args.name, args.exist_ok)
    try:
        return _fit_run(args, model, run_dir, started)
    except BaseException:
        if created:  # a run that wrote nothing leaves no empty folder behind
            try:
                os.rmdir(run_dir)
            except OSError:
                pass
        raise


def _fit_run(args, model, run_dir, started):
    """The rest of ``fit``: checks of outputs and data, then training, evaluation, the files and the summary."""
    from ._fileio import atomic_write_text, output_kind
    from .parallel import resolve_n_jobs
    from .workflow import check_images, check_outputs, check_writable, fit_and_evaluate

    model_path = args.out or os.path.join(run_dir, "model.npz")
    if args.report:
        report_path = args.report
    elif run_dir:
        report_path = os.path.join(run_dir, "report.json")
    elif output_kind(args.out) == "stream":  # /dev/null, a pipe: no report file beside a device (in /dev)
        report_path = None
    else:
        report_path = os.path.splitext(args.out)[0] + ".report.json"
    settings_path = os.path.join(run_dir, "settings.json") if run_dir else None
    predictions_path = os.path.join(run_dir, "predictions.json") if run_dir else None
    outputs = [("--out" if args.out else "model file", model_path)] + \
        ([("--report", report_path)] if report_path else []) + \
        ([("settings file", settings_path), ("predictions file", predictions_path)] if run_dir else [])
    for what, path in outputs:
        check_writable(what, path)
    data = args.data
    if data is None:
        from ._demo import demo_path

        if not args.quiet:
            print("using the embedded demo data set (generated on first use)", file=sys.stderr)
        data = demo_path()
    is_demo = args.data is None
    sources = [("training data", data)] + ([("test data (--test-data)", args.test_data)] if args.test_data else [])
    sources += [("images (--images)", args.images)] if args.images else []
    check_outputs(outputs, sources, [(what, p) for what, p in sources if os.path.isdir(p)])
    from .datasets import detect_format

    fmt = detect_format(data) if args.format == "auto" else args.format
    single_file = os.path.isfile(data)
    train = _load_split(data, fmt, None if single_file else args.train_split, args.skip_bad, args.images)
    if train is None:
        raise DataError(data, f"split {args.train_split!r}", "no such training split",
                        "pass --train-split with an existing split", kind="missing split")
    if args.test_data:
        test = _load_split(args.test_data, "auto", args.test_split, args.skip_bad)
        if test is None and os.path.isdir(args.test_data):
            raise DataError(args.test_data, f"split {args.test_split!r}", "no such test split",
                            "pass --test-split with an existing split", kind="missing split")
    else:
        test = None if single_file else _load_split(data, fmt, args.test_split, args.skip_bad, args.images)
    images = [("training image", r.path) for r in train if r.path]
    images += [("test image", r.path) for r in test if r.path] if test is not None else []
    check_outputs(outputs, images)
    n_threads = resolve_n_jobs(args.n_jobs)
    train = check_images(train, args.skip_bad, n_threads, verbose=not args.quiet)
    if test is not None:
        test = check_images(test, args.skip_bad, n_threads, verbose=not args.quiet)
    holdout = test is None
    if holdout:
        warnings.warn(f"{data}: no test split {args.test_split!r}; evaluating on a seeded 30% hold-out of the "
                      f"training data (seed {args.seed})")
        train, test = train.holdout_split(0.3, seed=args.seed)
    for name, ds in (("training", train), ("test", test)):
        if len(ds) == 0:
            raise DataError(ds.root or data, "", f"no {name} images left", f"give a {name} set with readable images",
                            kind="empty dataset")
    if tuple(test.classes) != tuple(train.classes):
        raise DataError(args.test_data or data, "classes", f"the test classes {list(test.classes)} differ from the "
                        f"training classes {list(train.classes)}", "use the same class list for both", kind="classes")
    if not args.quiet:
        print(f"training on {len(train)} images ({train.root}), testing on {len(test)}", file=sys.stderr)
    report = fit_and_evaluate(model, train, test, model_path, report_path, verbose=not args.quiet,
                              predictions_path=predictions_path)
    if settings_path:
        settings = {"command": "fit", "data": os.path.abspath(data), "format": fmt, "train_split": args.train_split,
                    "test_split": args.test_split,
                    "test_data": os.path.abspath(args.test_data) if args.test_data else None,
                    "skip_bad": args.skip_bad, "params": model.get_params()}
        atomic_write_text(settings_path, json.dumps(settings, indent=2, default=str) + "\n")
    streamed = output_kind(model_path) == "stream"
    files = [(model_path, "the model, written through (a device or pipe)" if streamed else
              "the model (predict --model, Localizer.load)")]
    if report_path:
        files.append((report_path, "all metrics per class, training log, timings, memory"))
    else:
        files.append(("no report", "--out is a stream; give --report PATH for one"))
    if run_dir:
        files += [(settings_path, "the data and settings of this run"),
                  (predictions_path, "the test detections (COCO results JSON)")]
    print(fit_summary(report, files, data=data, test_split=None if args.test_data or holdout else args.test_split,
                      test_data=args.test_data, demo=is_demo, seconds=time.perf_counter() - started,
                      n_jobs=n_threads, first_test_image=test[0].path if len(test) and not streamed else None))
    return 0


# what each number of the summary means, in plain words (the definitions are classic_loc.evaluation's)
_METRIC_WORDS = (
    ("accuracy", "accuracy", "main (largest) object of each image: right class from the top detection"),
    ("loc_accuracy", "loc_accuracy", "... and the top box overlaps it with IoU >= {iou}"),
    ("mean_iou", "mean IoU", "mean overlap of the top box with the main object (1 = exact)"),
    ("map50", "mAP50", "every object found and boxed (IoU >= {iou}): average precision, mean of classes"),
    ("map", "mAP", "COCO's main number: the same averaged over IoU 0.50 to 0.95"),
    ("presence_accuracy", "presence", "images rightly said to hold an object, or none"),
)


def _shell_word(text):
    import shlex

    return shlex.quote(str(text))


def _unreachable(report, train):
    n = report["unreachable_boxes"]["count"]
    return (f"; {n} of {sum(train['per_class'].values())} training boxes unreachable by them (listed in the report)"
            if n else "")


def fit_summary(report, files, data, test_split, test_data, demo, seconds, n_jobs, first_test_image=None):
    """The block ``fit`` ends with: what was trained, the test metrics in plain words, time, memory, files, next.

    ``files`` are (path, what it is) pairs, the model first; ``test_split`` (with ``data``) or ``test_data``
    names the test images for the ``evaluate`` command suggested (neither: none is suggested).
    """
    metrics, training, train = report["metrics"], report["training"], report["train"]
    classes = training["classes"]
    iou = metrics["iou_threshold"]
    peak = training.get("peak_memory_mb")
    lines = [f"classic_loc fit: done in {seconds:.0f} s on {n_jobs} process{'es' if n_jobs > 1 else ''}"
             + (f", peak memory {peak:.0f} MB (all processes)" if peak else ""), ""]
    sizes = [f"{cols}x{rows}" for rows, cols in training["window_pixels"]]  # (rows, cols) shown as width x height
    windows = (f"{sizes[0]} px for every class" if len(set(sizes)) == 1 else
               ", ".join(f"{c} {size}" for c, size in zip(classes, sizes)) + " px")
    lines += [f"  trained   {len(classes)} class{'es' if len(classes) != 1 else ''} ({', '.join(classes)}), "
              f"{report['params']['features']} features, {train['images']} images with "
              f"{sum(train['per_class'].values())} boxes",
              f"  windows   {windows} (object plus context)" + _unreachable(report, train),
              f"  tested    {report['test']['images']} images, {metrics['n_with_object']} with an object"
              + (": the demo data, cluttered on purpose" if demo else "")]
    if demo:
        lines.append("            (look-alike shapes, occlusion, small objects), so scores are far from 1")
    lines += ["", f"  {'metric':<13} {'value':>5}  what it measures"]
    for key, name, words in _METRIC_WORDS:
        lines.append(f"  {name:<13} {metrics[key]:5.3f}  {words.format(iou=iou)}")
    size = report.get("model_bytes")
    lines.append(f"  {'speed':<13} {report['predict_ms_per_image']:5.1f}  ms per image (median, one thread)"
                 + (f"; model {size / 1024:.0f} KiB" if size else ""))
    lines.append("")
    width = max(len(path) for path, _ in files)
    for i, (path, words) in enumerate(files):
        lines.append(f"  {'files' if i == 0 else '':<9} {path:<{width}}  {words}")
    model_path = _shell_word(files[0][0])
    folder = os.path.dirname(files[0][0])
    nxt = []
    if first_test_image:
        nxt.append(f"python -m classic_loc predict --model {model_path} {_shell_word(first_test_image)} "
                   f"--draw {_shell_word(os.path.join(folder, 'drawn'))}")
    predictions = next((p for p, _ in files if os.path.basename(p) == "predictions.json"), None)
    if predictions and (test_data or test_split):
        gt = _shell_word(test_data) if test_data else f"{_shell_word(data)} --split {_shell_word(test_split)}"
        nxt.append(f"python -m classic_loc evaluate --gt {gt} --pred {_shell_word(predictions)}")
    for i, command in enumerate(nxt):
        lines += [""] * (i == 0) + [f"  {'' if i else 'next':<9} {command}"]
    return "\n".join(lines)


def _model_file(model):
    """``--model``: a file, or else the name of a shipped model (:mod:`classic_loc.pretrained`)."""
    from .pretrained import NAMES, pretrained_path

    if not os.path.exists(model) and model in NAMES:
        return pretrained_path(model)
    return model


def _whole_number(least, what):
    """An argparse type: an int of at least ``least``, else the error naming ``what`` it should be."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = least - 1
        if value < least:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
        return value
    return parse


_camera = _whole_number(0, "a camera number (0, 1, ...)")
_every = _whole_number(1, "a whole number of frames (1, 2, ...)")


def _video_source(args):
    """The camera, video or stream ``predict`` reads, or None for images (DataError for a mix)."""
    from .sources import is_video_source

    videos = [i for i in args.inputs if is_video_source(i)]
    if args.camera is not None:
        if args.inputs:
            raise DataError("--camera", str(args.camera), "cannot be combined with inputs",
                            "give either --camera N or the images/video to predict", kind="usage")
        return args.camera
    if not args.inputs:
        raise DataError("predict", "", "nothing to predict", "give image files or folders, a video, or --camera N",
                        kind="usage")
    if videos and len(args.inputs) > 1:
        raise DataError(videos[0], "", "a video is predicted on its own", "run predict once per video, and "
                        "once for the images", kind="usage")
    if not videos and args.every != 1:
        raise DataError("--every", str(args.every), "applies to a video, camera or stream",
                        "leave it out for images", kind="usage")
    return videos[0] if videos else None


def _predict_video(args, model, source):
    from .workflow import check_outputs, write_video_predictions

    if args.draw:
        ext = os.path.splitext(args.draw)[1].lower()
        if ext not in (".mp4", ".avi"):
            raise DataError("--draw", args.draw, "for a video, camera or stream --draw is a video file",
                            "give it a .mp4 or .avi name", kind="usage")
    inputs = [("model file", args.model)] + ([] if isinstance(source, int) or "://" in source
                                             else [("input video", source)])
    check_outputs([(k, p) for k, p in (("--out", args.out), ("--draw", args.draw)) if p], inputs)
    n, seconds = write_video_predictions(model, source, args.out, args.draw, args.every, args.threshold, args.conf,
                                         verbose=not args.quiet)
    if not args.quiet:
        where = " -> " + ", ".join(p for p in (args.out, args.draw) if p) if (args.out or args.draw) else ""
        print(f"{n} frames{f' (every {args.every})' if args.every > 1 else ''} in {seconds:.1f} s, "
              f"{n / max(seconds, 1e-9):.1f} frames per second{where}", file=sys.stderr)
    return 0


def _cmd_predict(args):
    from .localizer import Localizer
    from .workflow import (_inside, check_outputs, check_writable, collect_images, drawn_path, iter_predictions,
                           write_predictions)

    changes = _parse_set(args.set, _localizer_defaults())
    bad = sorted(set(changes) - set(PREDICT_SETTINGS))
    if bad:
        raise DataError("--set", bad[0], "is not a prediction setting",
                        f"use one of {', '.join(PREDICT_SETTINGS)} (the others are fixed when the model is trained)",
                        kind="usage")
    source = _video_source(args)
    if args.out:
        check_writable("--out", args.out)
    if args.draw:
        check_writable("--draw", args.draw, folder=source is None)
    args.model = _model_file(args.model)
    model = Localizer.load(args.model)
    _checked(lambda: model.set_params(**changes))
    _check_params(model)
    if changes.get("cascade") is True and all(getattr(t, "haar", None) is None for t in model.templates_):
        warnings.warn(f"{args.model}: --set cascade=true has no effect: the model has no Haar features (train "
                      f"with --features haar, fhog+haar or hog+haar for a cascade)")
    if source is not None:
        if args.out_format != "coco":
            raise DataError("--format", args.out_format, "applies to images", "leave it out for a video, camera or "
                            "stream (JSON Lines)", kind="usage")
        return _predict_video(args, model, source)
    if args.out_format == "yvector" and args.draw:
        raise DataError("--format", "yvector", "cannot be combined with --draw",
                        "draw with the default --format coco", kind="usage")
    from .parallel import resolve_n_jobs

    n_jobs = resolve_n_jobs(args.n_jobs)
    items = collect_images(args.inputs, skip_bad=args.skip_bad, exclude=[args.draw] if args.draw else ())
    if not items:
        raise DataError(" ".join(args.inputs), "", "no image files found", "give image files or folders of images",
                        kind="missing image")
    paths = [p for p, _ in items]
    ids = [i for _, i in items]
    outputs = ([("--out", args.out)] if args.out else []) + \
              ([("--draw", drawn_path(args.draw, i)) for i in ids] if args.draw else [])
    check_outputs(outputs, [("model file", args.model)] + [("input image", p) for p in paths])
    # a --draw folder inside an input folder: list what is drawn, so that a second run does not read it as input
    record = bool(args.draw) and any(os.path.isdir(i) and _inside(args.draw, i)
                                     and os.path.realpath(i) != os.path.realpath(args.draw) for i in args.inputs)
    if args.out_format == "yvector":
        from .workflow import write_yvectors

        n = write_yvectors(args.out, model, paths, ids, verbose=not args.quiet, skip_bad=args.skip_bad)
        if not args.quiet and args.out:
            print(f"{n} y-vectors -> {args.out}", file=sys.stderr)
        return 0
    if args.out:
        n = write_predictions(args.out, model, paths, args.threshold, args.draw, n_jobs, verbose=not args.quiet,
                              image_ids=ids, skip_bad=args.skip_bad, record_drawn=record, conf=args.conf)
        if not args.quiet:
            print(f"{n} detections in {len(paths)} images -> {args.out}", file=sys.stderr)
    else:
        results = [e for part in iter_predictions(model, paths, args.threshold, args.draw, n_jobs,
                                                  verbose=not args.quiet, image_ids=ids, skip_bad=args.skip_bad,
                                                  record_drawn=record, conf=args.conf)
                   for e in part]
        print(json.dumps(results))
    return 0


def _cmd_demo(args):
    require_training("demo")  # the demo photos come from scikit-image
    from ._demo import demo_path, generate

    if not args.out:
        print(demo_path())
        return 0
    import shutil

    from .workflow import check_writable

    out = os.path.abspath(args.out)
    check_writable("--out", out, folder=True)
    if os.path.isdir(out) and os.listdir(out):
        raise DataError(args.out, "--out", "is a folder with files in it (the demo data set would replace files of "
                        "the same names)", "give a new or empty folder", kind="output overwrites input")
    parent, name = os.path.split(out)
    os.makedirs(parent, exist_ok=True)
    from ._fileio import remove_stale_temporaries, temporary_name

    remove_stale_temporaries(parent)  # a staging folder a killed run left
    work = temporary_name(out)  # named like every temporary: swept after a SIGKILL
    os.mkdir(work)
    try:  # written beside, moved into place when complete: an interrupted run leaves no half data set
        staged = generate(os.path.join(work, name))
        if os.path.isdir(out):
            os.rmdir(out)  # empty (checked above)
        os.replace(staged, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(args.out)
    return 0


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"warning: {message}", file=sys.stderr)


def _single_threaded_blas():
    """BLAS on one thread, unless the user chose otherwise (only effective before numpy loads).

    The scan's matrix products are small: with several BLAS threads they slow
    down up to 100x whenever another process holds a core. Parallelism comes
    from --n-jobs instead.
    """
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")


class Interrupted(KeyboardInterrupt):
    """SIGINT, SIGTERM or SIGHUP, raised in the main thread so that the command unwinds as after Ctrl-C.

    Every ``finally`` runs: temporary files are removed, the previous output
    files stay as they were, and joblib stops its worker processes.
    """

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


def _on_signal(signum, frame):
    for sig in _SIGNALS:  # a second signal must not interrupt the clean-up of the first
        signal.signal(sig, signal.SIG_IGN)
    raise Interrupted(signum)


def _install_signal_handlers():
    import threading

    if threading.current_thread() is not threading.main_thread():
        return {}
    previous = {}
    for sig in _SIGNALS:
        try:
            previous[sig] = signal.signal(sig, _on_signal)
        except (OSError, ValueError):
            pass
    return previous


def _restore_signal_handlers(previous):
    for sig, handler in previous.items():
        try:
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        except (OSError, ValueError, TypeError):
            pass


def _is_stdout(path):
    try:
        a, b = os.stat(path), os.fstat(sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _one_line(text):
    return " ".join(str(text).split())


def main(argv=None):
    """Run the command line; returns the exit status (see the module's docstring)."""
    _single_threaded_blas()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except _UsageError as err:
        print(f"error: {_one_line(err)}", file=sys.stderr)
        return 2
    if args.command is None:
        parser.print_help()
        return 2
    show_warning = warnings.showwarning
    warnings.showwarning = _show_warning
    previous = _install_signal_handlers()
    try:
        return {"fit": _cmd_fit, "predict": _cmd_predict, "evaluate": _cmd_evaluate,
                "demo": _cmd_demo}[args.command](args)
    except DataError as err:
        print(f"error: {_one_line(err)}", file=sys.stderr)
        return 2
    except Interrupted as exc:
        print(f"interrupted ({signal.Signals(exc.signum).name})", file=sys.stderr)
        return 128 + exc.signum
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError as exc:
        if exc.filename and not _is_stdout(exc.filename):  # the reader of a named pipe (--out) left
            print(f"error: {_one_line(exc.filename)}: {exc.strerror} (the reader of the pipe went away)",
                  file=sys.stderr)
            return 1
        # the reader of our standard output went away (`... | head`): not an error to report
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 1
    except OSError as exc:
        if os.environ.get("CLASSIC_LOC_DEBUG"):
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {_one_line(where + (exc.strerror or str(exc)))}", file=sys.stderr)
        return 1
    except Exception as exc:
        if os.environ.get("CLASSIC_LOC_DEBUG"):
            raise
        print(f"error: internal error: {type(exc).__name__}: {_one_line(exc)}; please report it "
              f"(set CLASSIC_LOC_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1
    finally:
        _restore_signal_handlers(previous)
        warnings.showwarning = show_warning
