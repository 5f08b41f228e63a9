"""The command line: ``python -m classic_loc`` / ``classic-loc``.

Thin: it parses arguments, calls the public API and prints for humans. A
mistake in the user's input ends with a one-line ``error: ...`` on stderr and
exit status 2, never a traceback.
"""

import argparse
import json
import sys
import warnings

from . import __version__
from .errors import DataError

__all__ = ["main", "build_parser"]


def _add_data_options(p, split_default):
    p.add_argument("--format", default="auto", choices=["auto", "voc", "coco", "yolo", "csv"],
                   help="dataset format (default: detected from the path)")
    p.add_argument("--split", default=split_default,
                   help=f"split to read: ImageSets/Main/<split>.txt, images/<split>/, <split>.csv or "
                        f"instances_<split>.json (default: {split_default})")
    p.add_argument("--skip-bad", action="store_true",
                   help="skip bad boxes and images with a warning that counts them, instead of stopping")


def build_parser():
    parser = argparse.ArgumentParser(
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
                    "it; image_id is the COCO id or the image's file stem, category_id the COCO id or the class "
                    "name.")
    ev.add_argument("--gt", required=True, metavar="PATH",
                    help="ground truth: a COCO JSON file or a VOC/COCO/YOLO/CSV dataset path")
    ev.add_argument("--pred", required=True, metavar="PREDS_JSON", help="predictions as a COCO results JSON file")
    _add_data_options(ev, "test")
    ev.add_argument("--iou", type=float, default=0.5,
                    help="IoU a top prediction needs for loc_accuracy and corloc (IoU >= this; default 0.5)")
    ev.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    ev.add_argument("--out", metavar="REPORT_JSON", help="also write the JSON result to this file")

    fit = sub.add_parser(
        "fit", help="train a localizer on the train split, evaluate it on the test split, save model and report",
        description="Train the HOG + linear SVM localizer (hard-negative mining, calibration, ridge box "
                    "refinement) on the train split, evaluate it on the test split with the shared evaluator, "
                    "print the metrics and timings, and write the model and a JSON report. Without --data it "
                    "uses the embedded demo data set (generated on first use, no download).")
    fit.add_argument("--data", metavar="PATH", help="dataset (VOC folder, COCO json, YOLO folder, CSV); default: demo data")
    fit.add_argument("--format", default="auto", choices=["auto", "voc", "coco", "yolo", "csv"],
                     help="dataset format (default: detected from the path)")
    fit.add_argument("--train-split", default="train", help="split to train on (default: train)")
    fit.add_argument("--test-split", default="test", help="split to evaluate on (default: test)")
    fit.add_argument("--test-data", metavar="PATH",
                     help="a separate test set (file or folder); default: the test split of --data, or a seeded "
                          "30%% hold-out of the training data when there is none")
    fit.add_argument("--features", default="fhog", choices=["fhog", "hog", "haar", "fhog+haar", "hog+haar"],
                     help="feature backend: fhog (Felzenszwalb's HOG, as dlib uses), hog (Dalal-Triggs, equal "
                          "to skimage's hog), haar (Viola-Jones Haar-like features, a subset selected per class), "
                          "or a HOG and Haar concatenated per window; default: fhog")
    fit.add_argument("--out", metavar="MODEL", default="model.npz", help="model file to write (default: model.npz)")
    fit.add_argument("--report", metavar="REPORT_JSON",
                     help="JSON report to write (default: the model path with .report.json)")
    fit.add_argument("--seed", type=int, default=0, help="random seed of training and of the hold-out (default: 0)")
    fit.add_argument("--n-jobs", type=int, default=1, help="processes for training (-1: all cores; default: 1)")
    fit.add_argument("--set", metavar="NAME=VALUE", action="append", default=[],
                     help="any other Localizer parameter, VALUE as JSON (e.g. --set window_area=96 --set "
                          "context=2 --set upsample=2); repeatable; see help(classic_loc.Localizer)")
    fit.add_argument("--skip-bad", action="store_true", help="skip bad boxes and images with a counted warning")
    fit.add_argument("--quiet", action="store_true", help="no progress bars or training log")

    pr = sub.add_parser(
        "predict", help="detect objects in images with a saved model; write COCO results JSON",
        description="Run a saved model on images (files and/or folders, streamed one at a time) and write every "
                    "detection as COCO results JSON (image_id = file stem, category_id = class name, bbox = x, y, "
                    "w, h), which `evaluate` reads. Needs only numpy and OpenCV.")
    pr.add_argument("--model", required=True, metavar="MODEL", help="model file written by `fit`")
    pr.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR", help="image files and/or folders of images")
    pr.add_argument("--out", metavar="PREDS_JSON", help="write the results here (default: print them)")
    pr.add_argument("--draw", metavar="DIR", help="also write each image with its boxes, labels and scores drawn")
    pr.add_argument("--threshold", type=float,
                    help="report detections with at least this calibrated score (default: the model's min_score)")
    pr.add_argument("--n-jobs", type=int, default=1, help="images processed in parallel threads (default: 1)")
    pr.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help=f"change a prediction setting of the model for this run (repeatable): "
                         f"{', '.join(PREDICT_SETTINGS)}; e.g. --set scale_step=1.2 (fewer pyramid levels: faster) "
                         f"or --set cascade=true (Haar models: a cheap first stage rejects most windows)")
    pr.add_argument("--quiet", action="store_true", help="no progress bar")

    demo = sub.add_parser(
        "demo", help="write the embedded demo data set (Pascal VOC layout) to a folder",
        description="Generate the deterministic demo data set that `fit` uses when no --data is given, "
                    "and print its folder.")
    demo.add_argument("--out", metavar="DIR",
                      help="folder to write (default: the cache folder used by fit: $CLASSIC_LOC_DATA/demo-vN "
                           "or ~/.cache/classic_loc/demo-vN, N the data version)")
    return parser


def _cmd_evaluate(args):
    from .datasets import load_dataset
    from .evaluation import evaluate, format_report, save_json

    gt = load_dataset(args.gt, split=args.split, format=args.format, skip_bad=args.skip_bad, require_images=False)
    result = evaluate(gt, args.pred, iou_threshold=args.iou)
    if args.out:
        save_json(result, args.out)
    print(json.dumps(result) if args.json else format_report(result))
    return 0


PREDICT_SETTINGS = ("scale_step", "upsample", "cascade", "min_score", "nms_iou", "max_detections", "refine")


def _parse_set(items):
    params = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise DataError("--set", item, "expected NAME=VALUE", "write e.g. --set window_area=96", kind="usage")
        try:
            params[name.strip()] = json.loads(value)
        except json.JSONDecodeError:
            params[name.strip()] = value  # a bare string such as L2-Hys
    return params


def _load_split(path, fmt, split, skip_bad):
    from .datasets import load_dataset

    try:
        return load_dataset(path, split=split, format=fmt, skip_bad=skip_bad)
    except DataError as err:
        if err.kind == "missing split":
            return None
        raise


def _cmd_fit(args):
    import os

    from .localizer import Localizer
    from .workflow import fit_and_evaluate

    data = args.data
    if data is None:
        from ._demo import demo_path

        if not args.quiet:
            print("using the embedded demo data set (generated on first use)", file=sys.stderr)
        data = demo_path()
    from .datasets import detect_format

    fmt = detect_format(data) if args.format == "auto" else args.format
    single_file = os.path.isfile(data)
    train = _load_split(data, fmt, None if single_file else args.train_split, args.skip_bad)
    if train is None:
        raise DataError(data, f"split {args.train_split!r}", "no such training split",
                        "pass --train-split with an existing split", kind="missing split")
    if args.test_data:
        test = _load_split(args.test_data, "auto", args.test_split, args.skip_bad)
        if test is None and os.path.isdir(args.test_data):
            raise DataError(args.test_data, f"split {args.test_split!r}", "no such test split",
                            "pass --test-split with an existing split", kind="missing split")
    else:
        test = None if single_file else _load_split(data, fmt, args.test_split, args.skip_bad)
    if test is None:
        warnings.warn(f"{data}: no test split {args.test_split!r}; evaluating on a seeded 30% hold-out of the "
                      f"training data (seed {args.seed})")
        train, test = train.holdout_split(0.3, seed=args.seed)
    if tuple(test.classes) != tuple(train.classes):
        raise DataError(args.test_data or data, "classes", f"the test classes {list(test.classes)} differ from the "
                        f"training classes {list(train.classes)}", "use the same class list for both", kind="classes")
    params = dict(features=args.features, random_state=args.seed, n_jobs=args.n_jobs, verbose=not args.quiet)
    params.update(_parse_set(args.set))
    try:
        model = Localizer(**params)
    except TypeError as exc:
        raise DataError("--set", "", str(exc), "see help(classic_loc.Localizer) for the parameter names",
                        kind="usage") from None
    report_path = args.report or os.path.splitext(args.out)[0] + ".report.json"
    if not args.quiet:
        print(f"training on {len(train)} images ({train.root}), testing on {len(test)}", file=sys.stderr)
    report = fit_and_evaluate(model, train, test, args.out, report_path, verbose=not args.quiet)
    from .evaluation import format_report

    print(format_report(report["metrics"]))
    unreachable = report["unreachable_boxes"]["count"]
    print(f"\n  fit {report['fit_seconds']:.1f} s   predict {report['predict_ms_per_image']:.1f} ms/image "
          f"(median, one thread)   model {report['model_bytes'] / 1024:.0f} KiB")
    print(f"  mean IoU before refinement {report['mean_iou_before_refinement']:.3f}, after "
          f"{report['mean_iou_after_refinement']:.3f}   unreachable training boxes {unreachable}")
    print(f"  model: {args.out}   report: {report_path}")
    return 0


def _cmd_predict(args):
    from .localizer import Localizer
    from .workflow import image_files, iter_predictions, write_predictions

    model = Localizer.load(args.model)
    changes = _parse_set(args.set)
    bad = sorted(set(changes) - set(PREDICT_SETTINGS))
    if bad:
        raise DataError("--set", bad[0], "is not a prediction setting",
                        f"use one of {', '.join(PREDICT_SETTINGS)} (the others are fixed when the model is trained)",
                        kind="usage")
    model.set_params(**changes)
    model._check_params()
    paths = image_files(args.inputs)
    if not paths:
        raise DataError(" ".join(args.inputs), "", "no image files found", "give image files or folders of images",
                        kind="missing image")
    if args.out:
        n = write_predictions(args.out, model, paths, args.threshold, args.draw, args.n_jobs, verbose=not args.quiet)
        if not args.quiet:
            print(f"{n} detections in {len(paths)} images -> {args.out}", file=sys.stderr)
    else:
        results = [e for part in iter_predictions(model, paths, args.threshold, args.draw, args.n_jobs,
                                                  verbose=not args.quiet) for e in part]
        print(json.dumps(results))
    return 0


def _cmd_demo(args):
    from ._demo import demo_path, generate

    print(generate(args.out) if args.out else demo_path())
    return 0


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"warning: {message}", file=sys.stderr)


def _single_threaded_blas():
    """BLAS on one thread, unless the user chose otherwise (only effective before numpy loads).

    The scan's matrix products are small: with several BLAS threads they slow
    down up to 100x whenever another process holds a core. Parallelism comes
    from --n-jobs instead.
    """
    import os

    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")


def main(argv=None):
    _single_threaded_blas()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    warnings.showwarning = _show_warning
    try:
        return {"fit": _cmd_fit, "predict": _cmd_predict, "evaluate": _cmd_evaluate,
                "demo": _cmd_demo}[args.command](args)
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
