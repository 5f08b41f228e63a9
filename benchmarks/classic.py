"""classic_loc itself as one method of the comparison benchmark (``benchmarks/run.py``).

    python benchmarks/classic.py --set pennfudan [--features fhog] [--data ../shared/data]
                                 [--out benchmarks/out/run] [--seed 0] [--n-jobs 2] [--quiet]

The same contract as the other runners (``peers.py``, ``cnn.py``): fit on the set's ``train``
split, predict its ``test`` split, score with the shared evaluator, and write to ``--out``
(atomically):

- ``<set>_classic-<features>.npz``: the model (``Localizer.save``; its size is ``model_bytes``);
- ``<set>_classic-<features>_detections.json``: COCO results for the test split, as
  ``Detections.to_coco`` writes them (``image_id`` = the image's file stem, ``category_id`` =
  the class name, ``bbox`` = ``[x, y, w, h]``; both ids are what ``classic_loc.evaluation`` reads);
- ``<set>_classic-<features>_figures.json``: ``fit_seconds`` (``Localizer.fit`` on the train
  split with ``n_jobs`` processes), ``predict_ms_per_image`` (median over the test images of
  ``Localizer.detect`` on one thread, image decoding excluded, after one warm-up call),
  ``peak_rss_mb`` (VmHWM of a fresh process that only loads the model file and predicts the test
  images; the timings come from that process too), ``model_bytes``, ``metrics`` (the shared
  evaluator on the detections file), the Localizer's parameters and its training report.

The model is ``classic_loc.Localizer(features=features, random_state=seed, n_jobs=n_jobs)`` with
every other parameter at its default: no per-set tuning.
"""

import argparse
import json
import os
import statistics
import sys
import time

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # the scan's small matrix products are fastest on one BLAS thread

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)  # the shared helpers, _bench.py
from _bench import load_average, machine, peak_rss_mb, run_worker  # noqa: E402
REPO = os.path.dirname(HERE)
DEFAULT_DATA = os.environ.get("CLASSIC_LOC_SHARED_DATA", os.path.join(REPO, "..", "shared", "data"))
DEFAULT_OUT = os.path.join(HERE, "out", "run")
FEATURES = ("fhog", "haar", "hog", "fhog+haar", "hog+haar")
METRIC_KEYS = ("accuracy", "loc_accuracy", "mean_iou", "corloc", "map50", "map", "map75", "presence_accuracy")


def log(msg, verbose=True):
    if verbose:
        print(f"[classic] {msg}", file=sys.stderr, flush=True)


def method_name(features):
    """The method's name in file names and tables: ``classic-<features>``."""
    return f"classic-{features}"


def output_paths(out_dir, set_name, features):
    """Paths of the model, detections and figures files of one run."""
    stem = os.path.join(os.fspath(out_dir), f"{set_name}_{method_name(features)}")
    return {"model": stem + ".npz", "detections": stem + "_detections.json", "figures": stem + "_figures.json"}





# ---------------------------------------------------------------- the fresh prediction process
def predict_worker(job):
    """Body of the fresh prediction process: load the model file, predict every image, time, measure RSS.

    ``job``: ``{"model": path, "images": [[image_id, path], ...], "warmup": int}``.
    Returns ``{"results": COCO results list, "ms": [per image], "peak_rss_mb"}``. Only numpy,
    OpenCV and classic_loc's prediction path are imported (no scikit-learn, no evaluator).
    """
    from classic_loc.images import read_image
    from classic_loc.localizer import Localizer
    from classic_loc.workflow import single_thread

    model = Localizer.load(job["model"])
    results, times = [], []
    with single_thread():
        images = job["images"]
        for _, path in images[:max(0, int(job.get("warmup", 1)))]:
            model.detect(read_image(path))  # warm-up: first-call allocations, OpenCV initialisation
        for image_id, path in images:
            image = read_image(path)  # decoding is not timed
            t0 = time.perf_counter()
            det = model.detect(image)
            times.append((time.perf_counter() - t0) * 1000.0)
            results.extend(det.to_coco(image_id))
    return {"results": results, "ms": times, "peak_rss_mb": peak_rss_mb()}



# ---------------------------------------------------------------- the run
def metrics_summary(m):
    """The headline metrics and per-class AP of an evaluator result (as peers.py reports them)."""
    out = {k: m[k] for k in METRIC_KEYS}
    out["per_class"] = {c: {"ap50": v["ap50"], "ap": v["ap"], "accuracy": v["accuracy"]}
                        for c, v in m["per_class"].items()}
    out["n_predictions"] = m["n_predictions"]
    return out


def run(set_name, features, data_dir=DEFAULT_DATA, out_dir=DEFAULT_OUT, seed=0, n_jobs=2, verbose=True,
        params=None):
    """Fit classic_loc on a set's train split, predict its test split, score; write the files.

    Parameters
    ----------
    set_name : str
        Folder of the data set under ``data_dir`` with ``train`` and ``test`` splits.
    features : {"fhog", "haar", "hog", "fhog+haar", "hog+haar"}
        The Localizer's feature backend.
    data_dir, out_dir : str or path-like
        The folder holding the data sets, and where to write (see the module docstring).
    seed : int
        ``random_state`` of the Localizer.
    n_jobs : int
        Processes for training (prediction is always one thread).
    verbose : bool
        Progress on stderr.
    params : dict, optional
        Other Localizer parameters (default: none, the Localizer defaults; tests use it for speed).

    Returns
    -------
    dict
        The figures written to ``<set>_classic-<features>_figures.json``.
    """
    from classic_loc import Localizer, load_dataset
    from classic_loc._fileio import atomic_write_text
    from classic_loc.evaluation import evaluate
    from classic_loc.workflow import fit_and_evaluate

    if features not in FEATURES:
        raise ValueError(f"unknown features {features!r}; use one of {FEATURES}")
    root = os.path.join(os.fspath(data_dir), set_name)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"no data set {set_name!r} at {root}: pass the folder holding the data sets")
    train, test = load_dataset(root, split="train"), load_dataset(root, split="test")
    paths = output_paths(out_dir, set_name, features)
    os.makedirs(os.fspath(out_dir), exist_ok=True)
    settings = {"features": features, "random_state": seed, "n_jobs": n_jobs, **(params or {})}
    model = Localizer(verbose=verbose, **settings)
    log(f"{set_name} {method_name(features)}: fitting on {len(train)} images ({n_jobs} processes), "
        f"{', '.join(f'{k}={v}' for k, v in settings.items())}", verbose)
    # fit, an in-process evaluation (metrics before/after the ridge refinement) and the model file
    report = fit_and_evaluate(model, train, test, model_path=paths["model"], verbose=verbose)
    log(f"{set_name} {method_name(features)}: fitted in {report['fit_seconds']:.1f} s; predicting "
        f"{len(test)} test images in a fresh process (1 thread)", verbose)
    res = run_worker(__file__, {"model": os.path.abspath(paths["model"]),
                                "images": [[r.image_id, os.path.abspath(r.path)] for r in test], "warmup": 1},
                     "classic_loc")
    atomic_write_text(paths["detections"], json.dumps(res["results"]))
    metrics = evaluate(test, paths["detections"])  # the file, read as every other method's is
    # the saved model must predict what the fitted one did. Not to the last digit: Detections.to_coco rounds
    # boxes to 0.01 px and scores to 1e-5 (near-equal scores can tie, which moves AP by about 0.002)
    diff = max(abs(metrics[k] - report["metrics"][k]) for k in METRIC_KEYS)
    same = metrics["n_predictions"] == report["metrics"]["n_predictions"] and diff <= 0.005
    if not same:
        log(f"{set_name} {method_name(features)}: WARNING: the loaded model's metrics differ from the fitted "
            f"model's ({metrics_summary(metrics)} vs {metrics_summary(report['metrics'])})", verbose)
    import cv2
    import sklearn

    import classic_loc

    figures = {
        "set": set_name, "method": method_name(features), "features": features, "seed": seed,
        "train_images": len(train), "test_images": len(test),
        "fit_seconds": report["fit_seconds"],
        "predict_ms_per_image": round(statistics.median(res["ms"]), 3),
        "predict_ms_per_image_mean": round(statistics.fmean(res["ms"]), 3),
        "predict_ms_per_image_in_fit_process": report["predict_ms_per_image"],
        "peak_rss_mb": round(res["peak_rss_mb"], 1) if res["peak_rss_mb"] else None,
        "model_bytes": report["model_bytes"],
        "settings": settings,
        "params": report["params"],
        "n_jobs": n_jobs,
        "mean_iou_before_refinement": report["mean_iou_before_refinement"],
        "unreachable_boxes": report["unreachable_boxes"]["count"] if isinstance(report["unreachable_boxes"], dict)
        else report["unreachable_boxes"],
        "loaded_model_matches_fitted": same,
        "loaded_model_max_metric_difference": round(diff, 6),
        "training": {k: v for k, v in report["training"].items()
                     if k in ("mining_rounds", "n_positives", "n_negatives", "presence_threshold", "nms_cover",
                              "haar_features", "heldout_images", "train_seconds")},
        "versions": {"classic_loc": classic_loc.__version__, "numpy": np.__version__, "opencv": cv2.__version__,
                     "scikit-learn": sklearn.__version__},
        "machine": machine(), "load_average_at_end": load_average(),
        "metrics": metrics_summary(metrics),
        "files": {k: os.path.basename(v) for k, v in paths.items()},
    }
    atomic_write_text(paths["figures"], json.dumps(figures, indent=2, default=str))
    m = figures["metrics"]
    log(f"{set_name} {method_name(features)}: acc {m['accuracy']:.3f} loc {m['loc_accuracy']:.3f} "
        f"IoU {m['mean_iou']:.3f} AP50 {m['map50']:.3f} mAP {m['map']:.3f}; fit {figures['fit_seconds']:.0f} s, "
        f"predict {figures['predict_ms_per_image']:.1f} ms/image, peak RSS {figures['peak_rss_mb']} MB, "
        f"model {figures['model_bytes']} bytes", verbose)
    return figures


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] + "\n\n" + __doc__.split("\n\n")[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", dest="set_name", help="data set folder name under --data, e.g. pennfudan")
    ap.add_argument("--features", default="fhog", choices=FEATURES, help="feature backend (default: fhog)")
    ap.add_argument("--data", default=DEFAULT_DATA,
                    help="folder holding the data sets (default: $CLASSIC_LOC_SHARED_DATA or ../shared/data)")
    ap.add_argument("--out", default=DEFAULT_OUT, help="folder for model, detections and figures "
                                                        "(default: benchmarks/out/run)")
    ap.add_argument("--seed", type=int, default=0, help="random_state of the Localizer (default: 0)")
    ap.add_argument("--n-jobs", type=int, default=2, help="processes for training (default: 2)")
    ap.add_argument("--quiet", action="store_true", help="no progress on stderr")
    ap.add_argument("--worker-job", help=argparse.SUPPRESS)
    ap.add_argument("--worker-out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker_job:  # internal: the fresh prediction process
        from classic_loc._fileio import atomic_write_text

        with open(args.worker_job) as fh:
            job = json.load(fh)
        atomic_write_text(args.worker_out, json.dumps(predict_worker(job)))
        return 0
    if not args.set_name:
        ap.error("--set is required")
    f = run(args.set_name, args.features, args.data, args.out, seed=args.seed, n_jobs=args.n_jobs,
            verbose=not args.quiet)
    print(json.dumps({k: f[k] for k in ("set", "method", "fit_seconds", "predict_ms_per_image", "peak_rss_mb",
                                        "model_bytes", "metrics")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
