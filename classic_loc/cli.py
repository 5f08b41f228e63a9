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
        description="The classical HOG/Haar + linear SVM + ridge object localization baseline, "
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

    demo = sub.add_parser(
        "demo", help="write the embedded demo data set (Pascal VOC layout) to a folder",
        description="Generate the deterministic demo data set that `fit` uses when no --data is given, "
                    "and print its folder.")
    demo.add_argument("--out", metavar="DIR",
                      help="folder to write (default: the cache folder used by fit: $CLASSIC_LOC_DATA/demo-v1 "
                           "or ~/.cache/classic_loc/demo-v1)")
    return parser


def _cmd_evaluate(args):
    from .datasets import load_dataset
    from .evaluate import evaluate, format_report, save_json

    gt = load_dataset(args.gt, split=args.split, format=args.format, skip_bad=args.skip_bad, require_images=False)
    result = evaluate(gt, args.pred, iou_threshold=args.iou)
    if args.out:
        save_json(result, args.out)
    print(json.dumps(result) if args.json else format_report(result))
    return 0


def _cmd_demo(args):
    from ._demo import demo_path, generate

    print(generate(args.out) if args.out else demo_path())
    return 0


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"warning: {message}", file=sys.stderr)


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    warnings.showwarning = _show_warning
    try:
        return {"evaluate": _cmd_evaluate, "demo": _cmd_demo}[args.command](args)
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
