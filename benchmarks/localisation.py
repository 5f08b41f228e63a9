"""Why a model's localisation figures are what they are: IoU against box size and aspect, and the top detection.

    python benchmarks/localisation.py MODEL.npz [--data ../shared/data] [--set pennfudan] [--out benchmarks/results]

On the test split of ``--set``, with the shared evaluator's definitions (the main object of an image
is its largest ground-truth box; loc_accuracy and mean_iou read the top-scoring detection):

- per ground-truth box, the best IoU any detection reaches and the IoU of the detection the
  evaluator would match (score order), against the box's height and aspect ratio (scatter plots,
  ``plots/<set>_iou_vs_size.png``), and binned in a table;
- per image, where the top detection goes: onto the main object (IoU >= 0.5), onto another object,
  or onto none; for the second case, how large that object is next to the main one;
- how much of mean_iou is lost to the choice of object rather than to loose boxes: the mean IoU
  with the main object of the top detection, against that of the best detection on the main object.

Writes ``localisation_<set>.json`` and ``.md`` to ``--out``.
"""

import argparse
import json
import os
import statistics
import sys

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from _bench import git_state, load_average  # noqa: E402

from classic_loc import Localizer, load_dataset  # noqa: E402
from classic_loc._fileio import atomic_write_text  # noqa: E402
from classic_loc.boxes import box_area, box_iou  # noqa: E402


def analyse(model, test):
    boxes, images = [], []
    for i in range(len(test)):
        rec = test[i]
        if rec.n_objects == 0:
            continue
        det = model.detect(test.image(i))
        gt = rec.boxes
        iou = box_iou(det.boxes, gt) if len(det) else np.zeros((0, len(gt)))
        best = iou.max(axis=0) if len(det) else np.zeros(len(gt))
        for g, b in zip(gt, best):
            boxes.append({"height": float(g[3] - g[1]), "aspect": float((g[2] - g[0]) / (g[3] - g[1])),
                          "best_iou": float(b)})
        main = int(np.argmax(box_area(gt)))
        row = {"image": rec.image_id, "objects": len(gt), "top_main_iou": float(iou[0, main]) if len(det) else 0.0,
               "best_main_iou": float(best[main])}
        if len(det):
            other = int(np.argmax(iou[0]))
            row["top_object"] = "main" if iou[0, main] >= 0.5 else ("other" if iou[0, other] >= 0.5 else "none")
            row["other_area_ratio"] = float(box_area(gt[other:other + 1])[0] / box_area(gt[main:main + 1])[0]) \
                if row["top_object"] == "other" else None
        else:
            row["top_object"] = "none"
        images.append(row)
    return boxes, images


def table_by(boxes, key, edges):
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = [b["best_iou"] for b in boxes if lo <= b[key] < hi]
        if sel:
            rows.append({"range": f"{lo:g}-{hi:g}", "boxes": len(sel), "mean_best_iou": statistics.mean(sel),
                         "found_share": sum(v >= 0.5 for v in sel) / len(sel)})
    return rows


def plot(boxes, set_name, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, label in ((axes[0], "height", "box height (px)"), (axes[1], "aspect", "box aspect (w / h)")):
        ax.scatter([b[key] for b in boxes], [b["best_iou"] for b in boxes], s=8, alpha=0.6)
        ax.axhline(0.5, color="grey", lw=0.8)
        ax.set_xlabel(label)
        ax.set_ylabel("best IoU of any detection")
    fig.suptitle(f"{set_name}: best IoU per ground-truth box")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="a model file trained on the set's train split")
    ap.add_argument("--data", default=os.environ.get("CLASSIC_LOC_SHARED_DATA",
                                                     os.path.join(HERE, "..", "..", "shared", "data")),
                    help="folder holding the shared data sets (default: ../shared/data)")
    ap.add_argument("--set", default="pennfudan", help="data set (default: pennfudan)")
    ap.add_argument("--out", default=os.path.join(HERE, "results"), help="folder for the results")
    args = ap.parse_args(argv)
    model = Localizer.load(args.model)
    test = load_dataset(os.path.join(args.data, args.set), split="test")
    boxes, images = analyse(model, test)
    n = len(images)
    where = {k: sum(r["top_object"] == k for r in images) for k in ("main", "other", "none")}
    ratios = [r["other_area_ratio"] for r in images if r.get("other_area_ratio") is not None]
    out = {"model": os.path.abspath(args.model), "set": args.set, "git": git_state(), "load": load_average(),
           "images_with_objects": n, "top_detection": where,
           "other_area_ratio_median": statistics.median(ratios) if ratios else None,
           "mean_iou_top": statistics.mean(r["top_main_iou"] for r in images),
           "mean_iou_best_on_main": statistics.mean(r["best_main_iou"] for r in images),
           "by_height": table_by(boxes, "height", [0, 50, 100, 150, 200, 250, 300, 400, 1000]),
           "by_aspect": table_by(boxes, "aspect", [0, 0.25, 0.35, 0.45, 0.55, 0.7, 1.0, 10]),
           "boxes": boxes, "images": images}
    os.makedirs(os.path.join(args.out, "plots"), exist_ok=True)
    plot(boxes, args.set, os.path.join(args.out, "plots", f"{args.set}_iou_vs_size.png"))
    g = out["git"] or {}
    lines = [f"# Localisation on {args.set} (test split)", "",
             f"Model {os.path.basename(args.model)}; commit {g.get('head')}"
             f"{' (dirty tree)' if g.get('changed_files') else ''}; load {out['load']}.", "",
             f"Top detection of the {n} images with objects: on the main (largest) object {where['main']}, "
             f"on another object {where['other']} (its area / the main one's: median "
             f"{out['other_area_ratio_median'] if ratios else '-'}), on none {where['none']}.", "",
             f"mean IoU with the main object: top detection {out['mean_iou_top']:.3f}, best detection on it "
             f"{out['mean_iou_best_on_main']:.3f}.", "",
             "| box height px | boxes | mean best IoU | found (IoU >= 0.5) |", "|---|---|---|---|"]
    lines += [f"| {r['range']} | {r['boxes']} | {r['mean_best_iou']:.3f} | {r['found_share']:.2f} |"
              for r in out["by_height"]]
    lines += ["", "| box aspect w/h | boxes | mean best IoU | found (IoU >= 0.5) |", "|---|---|---|---|"]
    lines += [f"| {r['range']} | {r['boxes']} | {r['mean_best_iou']:.3f} | {r['found_share']:.2f} |"
              for r in out["by_aspect"]]
    text = "\n".join(lines) + "\n"
    atomic_write_text(os.path.join(args.out, f"localisation_{args.set}.json"), json.dumps(out, indent=1) + "\n")
    atomic_write_text(os.path.join(args.out, f"localisation_{args.set}.md"), text)
    print(text)


if __name__ == "__main__":
    main()
