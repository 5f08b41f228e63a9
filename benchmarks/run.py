"""The comparison benchmark: classic_loc against CNN models and classical peers, same splits, same evaluator.

    python benchmarks/run.py [--sets caltech101_subset pennfudan cmu_mit_faces]
                             [--methods classic classic-haar cnn-tiny cnn-small dlib opencv dlib-mmod]
                             [--data ../shared/data] [--out benchmarks/results] [--work benchmarks/out/run]
                             [--md benchmarks/RESULTS.md] [--report-only] [--no-report] [--quiet]

Every method is trained on the ``train`` split of a shared set (OpenCV's pretrained detectors
and dlib's MMOD CNN are not trained), predicts its ``test`` split into a COCO results file, and that file is scored
here by one call of ``classic_loc.evaluation.evaluate(test, file, curves=True)``, so every number
and curve of the comparison comes from the same evaluator call.

Methods
-------
``classic``       classic_loc, ``Localizer(features="fhog")``, defaults otherwise (benchmarks/classic.py)
``classic-haar``  classic_loc, ``Localizer(features="haar")``, defaults otherwise
``cnn-tiny``      the course notes' CNN localizer, tiny size (benchmarks/cnn.py; needs torch)
``cnn-small``     the same, small size
``dlib``          dlib's HOG + structural SVM, trained per class (benchmarks/peers.py; needs dlib-bin)
``opencv``        OpenCV 4's pretrained HOG people / Haar face detectors (benchmarks/peers.py; only
                  pennfudan and cmu_mit_faces)
``dlib-mmod``     dlib's pretrained MMOD CNN face detector (benchmarks/peers.py; needs dlib-bin and
                  face-recognition-models; only cmu_mit_faces), at upsample 0 (the table's row) and 1;
                  the same run times the work folder's classic fhog model of the set on the same images
                  (run ``classic`` before it, or in the same command) for the ratio

A method that does not apply to a set, or whose dependency is missing, is skipped, with the reason
in the results; one that fails is reported as failed (exit status 1) and the run goes on.

Outputs
-------
``--work``  (default ``benchmarks/out/run``, not versioned): each runner's model files,
            ``<set>_<method>_detections.json`` and ``<set>_<method>_figures.json``, and this
            script's ``<set>_<method>_run.json`` (status, reason, wall time) and ``run_meta.json``.
``--out``   (default ``benchmarks/results``): ``benchmark.json`` (every figure, the evaluator's
            metrics and curves) and ``plots/<set>_{summary,pr,iou,examples}.png``.
``--md``    (default ``benchmarks/RESULTS.md``): the summary table, the machine, the command, the
            methods' settings and the plots.

and, when dlib-mmod has results, ``mmod.md`` and ``mmod.json`` (its AP50, mAP, loc_accuracy, mean
IoU, ms per image and peak memory at each upsample, and the ratio to classic fhog timed in its run).

``--report-only`` rebuilds the outputs from the files already in ``--work`` (rescoring the
detections with the evaluator) without running any method. ``--no-report`` runs the methods and
writes only the work folder (and mmod.md/json), leaving RESULTS.md, benchmark.json and the plots.

A run that covers fewer sets or methods than the one recorded in ``--work`` (``run_meta.json``)
updates it: the other results in the work folder stay, the report covers the union of both runs'
sets and methods, and the run is listed under ``later_runs`` (command, commit) in run_meta.json
and the report. So ``python benchmarks/run.py --sets cmu_mit_faces --methods dlib-mmod`` after a
full run adds the MMOD row to the full report without rerunning the rest.
"""

import argparse
import importlib.metadata
import io
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import time
import traceback

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # single-threaded prediction timings; a shared 2-core machine

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
if HERE not in sys.path:
    sys.path.insert(0, HERE)  # the runners: classic.py, cnn.py, peers.py
from _bench import cpu_model, git_state, load_average  # noqa: E402

from classic_loc._fileio import atomic_write_bytes, atomic_write_text  # noqa: E402

SETS = ("caltech101_subset", "pennfudan", "cmu_mit_faces")
METHODS = ("classic", "classic-haar", "cnn-tiny", "cnn-small", "dlib", "opencv", "dlib-mmod")
#: the name each runner gives its files (``<set>_<tag>_detections.json``, ``..._figures.json``)
FILE_TAG = {"classic": "classic-fhog", "classic-haar": "classic-haar", "cnn-tiny": "cnn-tiny",
            "cnn-small": "cnn-small", "dlib": "dlib", "opencv": "opencv", "dlib-mmod": "dlib-mmod"}
DESCRIPTION = {
    "classic": "classic_loc, fhog features (the default)",
    "classic-haar": "classic_loc, Haar-like features",
    "cnn-tiny": "CNN localizer (course notes), tiny",
    "cnn-small": "CNN localizer (course notes), small",
    "dlib": "dlib HOG + structural SVM",
    "opencv": "OpenCV 4 pretrained detector",
    "dlib-mmod": "dlib's pretrained MMOD CNN face detector (trained on dlib's face data, not ours)",
}
COLORS = {"classic": "#1f77b4", "classic-haar": "#17becf", "cnn-tiny": "#ff7f0e", "cnn-small": "#d62728",
          "dlib": "#2ca02c", "opencv": "#9467bd", "dlib-mmod": "#8c564b"}
DEFAULT_DATA = os.environ.get("CLASSIC_LOC_SHARED_DATA", os.path.join(REPO, "..", "shared", "data"))
DEFAULT_OUT = os.path.join(HERE, "results")
DEFAULT_WORK = os.path.join(HERE, "out", "run")
DEFAULT_MD = os.path.join(HERE, "RESULTS.md")
N_EXAMPLES = 3
HEADLINE = ("accuracy", "mean_iou", "loc_accuracy", "corloc", "map50", "map", "map75")


class Skip(Exception):
    """The method does not apply to the set, or a dependency is missing (the message says which)."""


def log(msg, verbose=True):
    if verbose:
        print(f"[run] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- files


def write_json(path, obj):
    atomic_write_text(path, json.dumps(obj, indent=1, default=_json_default) + "\n")


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _read_json(path):
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def work_paths(work_dir, set_name, method):
    stem = os.path.join(os.fspath(work_dir), f"{set_name}_{FILE_TAG[method]}")
    return {"detections": stem + "_detections.json", "figures": stem + "_figures.json", "run": stem + "_run.json"}


# ---------------------------------------------------------------- machine and versions
def _version(*dists):
    for name in dists:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def _cv4_version():
    """OpenCV's version in the OpenCV 4 venv of the peers (None when the venv is missing)."""
    try:
        import peers

        py = peers._cv4_python()
    except Exception:  # noqa: BLE001 - no peers module: no venv to ask
        return None
    if not os.path.exists(py):
        return None
    proc = subprocess.run([py, "-c", "import cv2; print(cv2.__version__)"], capture_output=True, text=True,
                          check=False)
    return (proc.stdout.strip() or None) if proc.returncode == 0 else None


def machine_info():
    """CPU model, cores, load average and library versions of this machine, as a dict."""
    import cv2

    import classic_loc

    return {"cpu": cpu_model(), "cores": os.cpu_count(), "load_average": load_average(), "os": platform.platform(),
            "python": platform.python_version(), "numpy": np.__version__, "opencv": cv2.__version__,
            "opencv_peers_venv": _cv4_version(), "scikit-learn": _version("scikit-learn"),
            "torch": _version("torch"), "dlib": _version("dlib-bin", "dlib"),
            "matplotlib": _version("matplotlib"), "classic_loc": classic_loc.__version__}


def machine_line(m, load=None):
    def v(x):
        return x or "not installed"

    la = load if load is not None else m.get("load_average")
    load_txt = " / ".join(f"{x:.2f}" for x in la) if la else "n/a"
    return (f"{m['cpu']}, {m['cores']} cores, load average (1/5/15 min) {load_txt}; Python {m['python']}, "
            f"numpy {m['numpy']}, OpenCV {m['opencv']} (OpenCV peers: {v(m['opencv_peers_venv'])} in "
            f"benchmarks/.venv-cv4), scikit-learn {v(m['scikit-learn'])}, torch {v(m['torch'])}, "
            f"dlib {v(m['dlib'])}, classic_loc {m['classic_loc']}")


# ---------------------------------------------------------------- running the methods
def run_method(set_name, method, data_dir, work_dir, verbose=True):
    """Run one method's runner on one set (it writes its files to ``work_dir``); its figures dict.

    Raises :class:`Skip` when the method does not apply or cannot run here.
    """
    if method in ("classic", "classic-haar"):
        import classic

        return classic.run(set_name, "fhog" if method == "classic" else "haar", data_dir, work_dir, seed=0,
                           n_jobs=2, verbose=verbose)
    if method in ("cnn-tiny", "cnn-small"):
        return run_cnn(set_name, method.split("-", 1)[1], data_dir, work_dir, verbose)
    import peers

    reason = not_applicable(set_name, method)
    if reason:
        raise Skip(reason)
    if method in ("dlib", "dlib-mmod"):
        try:
            import dlib  # noqa: F401
        except ImportError:
            raise Skip(peers.DLIB_MISSING) from None
    reference = None
    if method == "dlib-mmod":
        import importlib.util

        if importlib.util.find_spec("face_recognition_models") is None:
            raise Skip(peers.MMOD_MISSING)
        # the work folder's classic fhog model of this set (from this run or an earlier one), timed again
        # on the same images in the MMOD run for the ratio
        reference = os.path.join(os.fspath(work_dir), f"{set_name}_{FILE_TAG['classic']}.npz")
    figures = peers.run(set_name, method, data_dir, work_dir, verbose=verbose, reference_model=reference)
    if figures is None:
        raise Skip(f"no OpenCV pretrained detector for this set's classes (the OpenCV peers cover "
                   f"{', '.join(sorted(peers.OPENCV_SETTINGS))})" if method == "opencv"
                   else "does not apply to this set")
    return figures


def not_applicable(set_name, method):
    """Why a pretrained peer has nothing to run on ``set_name`` (a skip reason), else None."""
    import peers

    if method == "opencv" and set_name not in peers.OPENCV_SETTINGS:
        return (f"no OpenCV pretrained detector for this set's classes (the OpenCV peers cover "
                f"{', '.join(sorted(peers.OPENCV_SETTINGS))})")
    if method == "dlib-mmod" and set_name not in peers.MMOD_SETTINGS:
        return f"not applicable: a face detector (runs on {', '.join(sorted(peers.MMOD_SETTINGS))} only)"
    return None


def run_cnn(set_name, size, data_dir, work_dir, verbose=True):
    """``benchmarks/cnn.py``'s ``run`` in a process of its own (its command line calls it), seed 0.

    A process of its own keeps PyTorch and its threads out of this one, and the runner imports
    classic_loc in a fresh interpreter, as it does when run alone.
    """
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        raise Skip("PyTorch is not installed: pip install torch (or the project's [bench] extra)")
    script = os.path.join(HERE, "cnn.py")
    if not os.path.exists(script):
        raise Skip("benchmarks/cnn.py is missing")
    cmd = [sys.executable, script, "--set", set_name, "--size", size, "--data", os.fspath(data_dir),
           "--out", os.fspath(work_dir), "--seed", "0"] + ([] if verbose else ["--quiet"])
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=None if verbose else subprocess.PIPE,
                          text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or "").strip()[-1500:] or "see its output above"
        raise RuntimeError(f"benchmarks/cnn.py exited with status {proc.returncode}: {tail}")
    return _read_json(os.path.join(os.fspath(work_dir), f"{set_name}_cnn-{size}_figures.json"))


def run_all(sets, methods, data_dir, work_dir, command, verbose=True):
    """Run every method on every set, write a ``_run.json`` record each; return the failures."""
    failures = []
    t_start = time.perf_counter()
    for set_name in sets:
        for method in methods:
            paths = work_paths(work_dir, set_name, method)
            for key in ("figures", "detections", "run"):  # no stale result survives a failed or skipped run
                if os.path.exists(paths[key]):
                    os.unlink(paths[key])
            log(f"{set_name} {method}: start (elapsed {time.perf_counter() - t_start:.0f} s)", verbose)
            t0 = time.perf_counter()
            load0 = load_average()
            record = {"set": set_name, "method": method, "command": command,
                      "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "load_average_at_start": load0,
                      "git_at_start": git_state()}
            try:
                run_method(set_name, method, data_dir, work_dir, verbose)
                if not (os.path.exists(paths["figures"]) and os.path.exists(paths["detections"])):
                    raise RuntimeError(f"the runner did not write {paths['figures']} and {paths['detections']}")
                record.update(status="ok", reason=None)
            except Skip as exc:
                record.update(status="skipped", reason=str(exc))
            except (Exception, SystemExit) as exc:  # noqa: BLE001 - one failing method does not end the run
                record.update(status="failed", reason=f"{type(exc).__name__}: {str(exc).strip()[-1500:]}")
                failures.append((set_name, method))
                if verbose:
                    traceback.print_exc()
            record["wall_seconds"] = round(time.perf_counter() - t0, 1)
            record["load_average_at_end"] = load_average()
            write_json(paths["run"], record)
            status = record["status"] + (f" ({record['reason']})" if record["reason"] else "")
            log(f"{set_name} {method}: {status}, {record['wall_seconds']:.0f} s "
                f"(elapsed {time.perf_counter() - t_start:.0f} s)", verbose)
    return failures



# ---------------------------------------------------------------- collecting and scoring
def image_size_summary(test):
    w = np.array([r.width for r in test])
    h = np.array([r.height for r in test])
    return {"median": [int(np.median(w)), int(np.median(h))], "min": [int(w.min()), int(h.min())],
            "max": [int(w.max()), int(h.max())]}


def collect(sets, methods, data_dir, work_dir, verbose=True):
    """Read every set's test split and every method's files from ``work_dir``; score the detections.

    Returns ``{set: {"test": Dataset, "info": {...}, "methods": {method: entry}}}``; an entry has
    ``status`` (ok, skipped, failed, not run), ``reason``, and for ``ok`` the runner's ``figures``,
    the evaluator's ``metrics`` and ``curves`` and the normalised ``predictions``.
    """
    from classic_loc import load_dataset
    from classic_loc.evaluation import evaluate, read_predictions

    out = {}
    for set_name in sets:
        root = os.path.join(os.fspath(data_dir), set_name)
        test = load_dataset(root, split="test")
        info = {"test_images": len(test), "classes": list(test.classes), "image_size": image_size_summary(test),
                **{k: v for k, v in test.counts().items() if k in ("boxes", "difficult", "empty_images")}}
        entries = {}
        for method in methods:
            paths = work_paths(work_dir, set_name, method)
            record = _read_json(paths["run"]) if os.path.exists(paths["run"]) else {}
            status = record.get("status")
            if status in ("skipped", "failed"):
                entries[method] = {"status": status, "reason": record.get("reason"), "run": record}
                continue
            if not (os.path.exists(paths["figures"]) and os.path.exists(paths["detections"])):
                reason = not_applicable(set_name, method)
                entries[method] = ({"status": "skipped", "reason": reason, "run": record} if reason else
                                   {"status": "not run", "reason": "no results in the work folder", "run": record})
                continue
            figures = _read_json(paths["figures"])
            result = evaluate(test, paths["detections"], curves=True)
            curves = result.pop("curves")
            entries[method] = {"status": "ok", "reason": None, "run": record, "figures": figures,
                               "metrics": result, "curves": curves,
                               "predictions": read_predictions(paths["detections"], test)}
            if figures.get("variants"):  # dlib-mmod's other upsample values, scored by the same evaluator
                entries[method]["variant_metrics"] = [
                    evaluate(test, os.path.join(os.fspath(work_dir), v["detections"])) for v in figures["variants"]]
            _check_runner_metrics(set_name, method, figures, result, verbose)
        out[set_name] = {"test": test, "info": info, "methods": entries}
    return out


def _check_runner_metrics(set_name, method, figures, result, verbose):
    """Warn when the runner's own evaluation disagrees with this script's (both use the same evaluator)."""
    own = figures.get("metrics") or figures.get("evaluation") or figures
    for k in ("accuracy", "loc_accuracy", "map50"):
        if isinstance(own.get(k), (int, float)) and abs(own[k] - result[k]) > 1e-6:
            log(f"WARNING: {set_name} {method}: the runner reported {k} {own[k]:.4f}, the evaluator gives "
                f"{result[k]:.4f} on its detections file", verbose)


def mean_precision(curves):
    """Mean over classes (with ground truth) of the precision at IoU 0.5 at each recall point."""
    rows = [p for p in curves["precision50"].values() if p is not None and all(v is not None for v in p)]
    return np.mean(np.array(rows, float), axis=0).tolist() if rows else None


# ---------------------------------------------------------------- plots
def _mpl():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 8, "axes.titlesize": 9})
    return plt


def _save_png(fig, path, quantize=False):
    """Render ``fig`` to PNG (no version metadata, so reruns give the same bytes), write atomically."""
    plt = _mpl()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    plt.close(fig)
    data = buf.getvalue()
    if quantize:  # photographs: a 256-colour palette keeps the file small
        from PIL import Image

        img = Image.open(io.BytesIO(data)).convert("RGB")
        img = img.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        buf = io.BytesIO()
        img.save(buf, format="PNG", optimize=True)
        data = buf.getvalue()
    atomic_write_bytes(path, data)
    return path


def _ok(entries):
    return [m for m, e in entries.items() if e["status"] == "ok"]


def plot_summary(set_name, entries, path):
    """Grouped bars of AP50, loc_accuracy and mean IoU per method; predict ms/image on a log axis."""
    plt = _mpl()
    methods = _ok(entries)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.3), dpi=100, gridspec_kw={"width_ratios": [3, 2]})
    keys = (("map50", "AP50"), ("loc_accuracy", "loc_accuracy"), ("mean_iou", "mean IoU"))
    x = np.arange(len(methods))
    width = 0.8 / len(keys)
    for j, (key, label) in enumerate(keys):
        vals = [entries[m]["metrics"][key] or 0.0 for m in methods]
        bars = ax1.bar(x + (j - (len(keys) - 1) / 2) * width, vals, width, label=label,
                       color=("#4c72b0", "#dd8452", "#8c8c8c")[j])
        for b, v in zip(bars, vals):
            ax1.text(b.get_x() + b.get_width() / 2, v + 0.01, f"{v:.2f}", ha="center", va="bottom", fontsize=5.5)
    ax1.set_xticks(x, methods, rotation=20)
    ax1.set_ylim(0, 1.12)
    ax1.set_title(f"{set_name}: quality on the test split")
    ax1.legend(loc="upper center", ncol=3, fontsize=7, frameon=False, bbox_to_anchor=(0.5, -0.2))
    ms = [entries[m]["figures"]["predict_ms_per_image"] for m in methods]
    bars = ax2.barh(np.arange(len(methods)), ms, color=[COLORS[m] for m in methods])
    for b, v in zip(bars, ms):
        ax2.text(v * 1.05, b.get_y() + b.get_height() / 2, f"{v:.1f}", va="center", fontsize=7)
    ax2.set_yticks(np.arange(len(methods)), methods)
    ax2.invert_yaxis()
    ax2.set_xscale("log")
    if ms:
        ax2.set_xlim(min(ms) / 2, max(ms) * 4)
    ax2.set_xlabel("predict ms / image (1 thread, median, log scale)")
    ax2.set_title("speed")
    fig.tight_layout()
    return _save_png(fig, path)


def _trim(recall, precision):
    """The curve up to the highest recall it reaches (the evaluator pads the rest with precision 0)."""
    p = np.array(precision, float)
    nz = np.flatnonzero(p > 0)
    end = nz[-1] + 1 if len(nz) else 0
    return np.asarray(recall)[:end], p[:end]


def plot_pr(set_name, entries, classes, path):
    """Precision-recall at IoU 0.5, one line per method; one panel per class and a mean when several."""
    plt = _mpl()
    methods = _ok(entries)
    panels = list(classes) + (["mean over classes"] if len(classes) > 1 else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels) + 0.4, 3.3), dpi=100, squeeze=False)
    for ax, panel in zip(axes[0], panels):
        for m in methods:
            c = entries[m]["curves"]
            prec = mean_precision(c) if panel == "mean over classes" else c["precision50"].get(panel)
            if prec is None or any(v is None for v in prec):  # a class without ground truth in the test split
                continue
            r, p = _trim(c["recall"], prec)
            ap = (np.mean(prec) if panel == "mean over classes" else entries[m]["metrics"]["per_class"][panel]["ap50"])
            ax.plot(r, p, color=COLORS[m], lw=1.4, label=f"{m} (AP50 {ap:.3f})", drawstyle="steps-post")
        ax.set_xlim(0, 1.01)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.grid(alpha=0.3)
        ax.set_title(f"{set_name}: {panel}" if len(panels) > 1 else f"{set_name}: precision-recall, IoU 0.5")
        ax.legend(loc="lower left", fontsize=6.5)
    fig.tight_layout()
    return _save_png(fig, path)


def plot_iou(set_name, entries, path):
    """Histograms of the main object's IoU with the top prediction (0: none or a miss), per method."""
    plt = _mpl()
    methods = _ok(entries)
    n = max(1, len(methods))
    cols = min(3, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.1 * cols, 2.3 * rows), dpi=100, squeeze=False,
                             sharex=True, sharey=True)
    bins = np.linspace(0, 1, 21)
    for ax, m in zip(axes.flat, methods):
        ious = np.array(entries[m]["curves"]["main_iou"], float)
        ax.hist(ious, bins=bins, color=COLORS[m], edgecolor="white", linewidth=0.5)
        ax.axvline(0.5, color="k", lw=0.8, ls="--")
        ax.set_title(f"{m}: mean {ious.mean():.3f}, >= 0.5: {np.mean(ious >= 0.5):.0%}" if len(ious) else m)
        ax.grid(alpha=0.3, axis="y")
    for ax in list(axes.flat)[len(methods):]:
        ax.axis("off")
    for col in range(cols):  # the lowest panel of each column gets the axis labels
        last_row = max(r for r in range(rows) if r * cols + col < max(1, len(methods)))
        ax = axes[last_row, col]
        ax.xaxis.set_tick_params(labelbottom=True)
        ax.set_xlabel("IoU(top prediction, main object)")
    for ax in axes[:, 0]:
        ax.set_ylabel("test images")
    fig.suptitle(f"{set_name}: main-object IoU per test image", fontsize=9)
    fig.tight_layout()
    return _save_png(fig, path)


def example_indices(test, k=N_EXAMPLES):
    """A fixed choice of test images: the first image of each class (multi-class sets), else the
    first ``k`` images with an object, in the split's order."""
    with_obj = [i for i, r in enumerate(test) if r.n_objects]
    if len(test.classes) > 1:
        firsts = []
        for c in range(len(test.classes)):
            hit = next((i for i in with_obj if (test[i].labels == c).any()), None)
            if hit is not None and hit not in firsts:
                firsts.append(hit)
        rest = [i for i in with_obj if i not in firsts]
        return sorted((firsts + rest)[:k])
    return with_obj[:k]


def top_boxes(pred, n):
    """The ``n`` highest-scored predictions (file order on ties): boxes, labels, scores."""
    order = np.argsort(-pred.scores, kind="stable")[:n]
    return pred.boxes[order], pred.labels[order], pred.scores[order]


def plot_examples(set_name, test, entries, path, indices=None):
    """A few test images with the ground truth (dashed) and every method's top boxes.

    Each method draws its top-n boxes by score, n = the image's number of ground-truth objects
    (for one object: the evaluator's top prediction). On multi-class sets a box whose class is
    none of the image's is labelled with that class and a question mark.
    """
    plt = _mpl()
    from matplotlib.lines import Line2D
    from matplotlib.patches import Rectangle

    methods = _ok(entries)
    indices = example_indices(test) if indices is None else indices
    fig, axes = plt.subplots(1, len(indices), figsize=(3.6 * len(indices), 3.5), dpi=90, squeeze=False)
    multi = len(test.classes) > 1
    for ax, i in zip(axes[0], indices):
        rec = test[i]
        img = test.image(i)
        ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=255, interpolation="antialiased")
        for b in rec.boxes:
            for color, lw in (("black", 2.6), ("white", 1.4)):
                ax.add_patch(Rectangle((b[0], b[1]), b[2] - b[0], b[3] - b[1], fill=False, ec=color, lw=lw,
                                       ls="--"))
        n = max(1, rec.n_objects)
        for m in methods:
            boxes, labels, _ = top_boxes(entries[m]["predictions"][i], n)
            for b, lab in zip(boxes, labels):
                ax.add_patch(Rectangle((b[0], b[1]), b[2] - b[0], b[3] - b[1], fill=False, ec=COLORS[m], lw=1.5))
                if multi and int(lab) not in set(rec.labels.tolist()):  # a wrong class is named on its box
                    ax.text(b[0] + 2, b[1] + 2, f"{test.classes[int(lab)]}?", color="white", fontsize=6, va="top",
                            bbox={"facecolor": COLORS[m], "edgecolor": "none", "pad": 1, "alpha": 0.85})
        ax.set_xlim(0, rec.width)
        ax.set_ylim(rec.height, 0)
        ax.set_title(f"{rec.image_id} ({rec.n_objects} object{'s' if rec.n_objects != 1 else ''})", fontsize=8)
        ax.axis("off")
    handles = [Line2D([], [], color="black", lw=1.4, ls="--")] + [Line2D([], [], color=COLORS[m], lw=2)
                                                                   for m in methods]
    labels = ["ground truth"] + methods
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=7, frameon=False)
    fig.suptitle(f"{set_name}: each method's top box(es) per image (as many as the image has objects)",
                 fontsize=9)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return _save_png(fig, path, quantize=True)


# ---------------------------------------------------------------- the report
def _fmt(v, digits=3):
    return "-" if v is None else f"{v:.{digits}f}"


def _size(nbytes):
    if nbytes is None:
        return "-"
    if nbytes >= 1024 * 1024:
        return f"{nbytes / 1024 / 1024:.1f} MiB"
    return f"{nbytes / 1024:.0f} KiB"


def _fit(f, method):
    if method in ("opencv", "dlib-mmod"):
        return "0 (pretrained)"
    return f"{f['fit_seconds']:.0f}"


def summary_table(data, methods):
    head = ("| set | method | accuracy | mean_iou | loc_accuracy | AP50 | mAP | fit s | predict ms/img "
            "| peak RSS MB | model size |")
    lines = [head, "|" + "---|" * 2 + "---:|" * 9]
    for set_name, s in data.items():
        for method in methods:
            e = s["methods"][method]
            if e["status"] != "ok":
                lines.append(f"| {set_name} | {method} | {e['status']}: {e['reason']} |" + " |" * 8)
                continue
            m, f = e["metrics"], e["figures"]
            rss = f.get("peak_rss_mb")
            lines.append(f"| {set_name} | {method} | {_fmt(m['accuracy'])} | {_fmt(m['mean_iou'])} | "
                         f"{_fmt(m['loc_accuracy'])} | {_fmt(m['map50'])} | {_fmt(m['map'])} | {_fit(f, method)} | "
                         f"{f['predict_ms_per_image']:.1f} | {'-' if rss is None else f'{rss:.0f}'} | "
                         f"{_size(f.get('model_bytes'))} |")
    return "\n".join(lines)


def method_notes(set_name, method, e):
    """One line on the settings a method ran with on a set, from its figures."""
    f = e["figures"]
    if method in ("classic", "classic-haar"):
        s = f.get("settings", {})
        tr = f.get("training", {})
        extra = ""
        haar = tr.get("haar_features")
        if haar:
            counts = set(haar.values()) if isinstance(haar, dict) else {haar}
            extra = (f"; {counts.pop()} Haar features selected per class" if len(counts) == 1
                     else f"; Haar features selected per class: {haar}")
        return (f"`Localizer({', '.join(f'{k}={v!r}' for k, v in s.items())})`, every other parameter at its "
                f"default (no per-set tuning); fit with {f.get('n_jobs', 2)} processes; "
                f"training boxes unreachable by the windows: {f.get('unreachable_boxes', '?')}; "
                f"mean IoU before ridge refinement {_fmt(f.get('mean_iou_before_refinement'))}{extra}; "
                f"predicted on 1 thread in a fresh process that only loads the .npz")
    if method in ("cnn-tiny", "cnn-small"):
        return (f"{f.get('size', method[4:])}: {f.get('input_size')} px letterboxed input, "
                f"{f.get('n_parameters', 0) / 1e6:.2f} M parameters, {f.get('epochs')} epochs from scratch "
                f"(batch {f.get('batch_size')}, {f.get('train_threads')} torch threads, seed {f.get('seed')}), "
                f"fit includes decoding and caching the train images ({f.get('cache_seconds', 0):.0f} s); one box "
                f"per image (its main object); predicted on 1 thread, batch 1")
    if method == "dlib":
        s = f.get("settings", {})
        wins = ", ".join(f"{b['class']} {b['window'][0]}x{b['window'][1]}" for b in f.get("training_boxes", []))
        unreach = sum(b.get("ignored_unreachable", 0) for b in f.get("training_boxes", []))
        return (f"upsample {s.get('upsample')}x (bilinear, before training and prediction), C {s.get('C')}, "
                f"epsilon {s.get('epsilon')}, detection_window_size {s.get('detection_window_size')} px "
                f"(windows {wins}), flips {s.get('add_left_right_image_flips')}, negatives: "
                f"{s.get('negatives')}, {s.get('num_threads')} training threads, adjust_threshold "
                f"{s.get('adjust_threshold')}; unreachable training boxes passed as ignore boxes: {unreach}")
    if method == "opencv":
        s = f.get("settings", {})
        params = s.get("params")
        params = ", ".join(f"{k}={v}" for k, v in params.items()) if isinstance(params, dict) else params
        return (f"{s.get('detector')} ({s.get('model')}), {params}; score: {s.get('score')}; OpenCV "
                f"{f.get('versions', {}).get('opencv')} in benchmarks/.venv-cv4; no training")
    if method == "dlib-mmod":
        return mmod_note(f, e.get("variant_metrics"))
    return ""


def mmod_note(f, variant_metrics=None):
    """The dlib-mmod notes line: model, training data, upsample variants and the ratio to classic fhog.

    ``variant_metrics``: the evaluator's result on each variant's detections file, in ``f["variants"]`` order.
    """
    s = f.get("settings", {})
    v = f.get("versions", {})
    text = (f"`dlib.cnn_face_detection_model_v1` with {s.get('model')} (face-recognition-models "
            f"{v.get('face-recognition-models')}, dlib {v.get('dlib')}), pretrained on {s.get('training_data')}; "
            f"no training; upsample_num_times {s.get('upsample_num_times')} (the row); score: {s.get('score')}; "
            f"boxes: {s.get('box')}")
    variants = f.get("variants", [])
    for var, m in list(zip(variants, variant_metrics or [v.get("metrics") for v in variants]))[1:]:
        cal = " with boxes calibrated on the train split" if var.get("box_calibration") else ""
        text += (f"; at upsample {var['upsample']}{cal}: AP50 {_fmt(m['map50'])}, mAP {_fmt(m['map'])}, "
                 f"loc_accuracy {_fmt(m['loc_accuracy'])}, mean IoU {_fmt(m['mean_iou'])}, "
                 f"{var['predict_ms_per_image']:.0f} ms/image, peak RSS {var['peak_rss_mb']:.0f} MB")
    ref = f.get("reference")
    if ref:
        text += (f"; classic fhog ({ref['model']}) timed in the same run on the same images: "
                 f"{ref['predict_ms_per_image']:.1f} ms/image, MMOD/classic {f.get('ms_ratio_to_reference')}x")
    cpu = [var.get("cpu_over_wall") for var in f.get("variants", [])]
    if cpu and all(c is not None for c in cpu):
        text += (f"; CPU/wall time {', '.join(f'{c:.2f}' for c in cpu)} "
                 f"({'one thread' if max(cpu) < 1.1 else 'more than one thread'})")
    return text + "; details in `benchmarks/results/mmod.md`"


def box_fit(test, detections):
    """How each ground-truth box is matched by its best-overlapping prediction, whatever the score.

    Returns ``{"gt_boxes", "iou50_share", "iou30_share", "side_ratio_median"}``: the shares of
    ground-truth boxes with a prediction of IoU >= 0.5 / >= 0.3 in the same image, and, over the
    boxes with one of IoU >= 0.3, the median of sqrt(predicted area / ground-truth area) (below 1:
    the method's boxes are tighter than the annotation's).
    """
    from classic_loc.boxes import box_area, box_iou
    from classic_loc.evaluation import read_predictions

    preds = read_predictions(detections, test)
    best, ratios = [], []
    for rec, p in zip(test, preds):
        gt = np.asarray(rec.boxes, float).reshape(-1, 4)
        if not len(gt):
            continue
        if not len(p.boxes):
            best += [0.0] * len(gt)
            continue
        ious = box_iou(gt, np.asarray(p.boxes, float))
        j = ious.argmax(axis=1)
        for i, (k, v) in enumerate(zip(j, ious[np.arange(len(gt)), j])):
            best.append(float(v))
            if v >= 0.3:
                ratios.append(math.sqrt(float(box_area(p.boxes[k:k + 1])[0]) / float(box_area(gt[i:i + 1])[0])))
    best = np.array(best)
    return {"gt_boxes": len(best), "iou50_share": round(float(np.mean(best >= 0.5)), 3) if len(best) else None,
            "iou30_share": round(float(np.mean(best >= 0.3)), 3) if len(best) else None,
            "side_ratio_median": round(float(np.median(ratios)), 3) if ratios else None}


def write_mmod_results(sets, data_dir, work_dir, out_dir, verbose=True):
    """Write ``mmod.md`` and ``mmod.json`` to ``out_dir`` from dlib-mmod's files in ``work_dir``; their paths.

    Every variant's detections file is scored again by the evaluator; the classic fhog reference
    (timed in the MMOD run, on the same images) comes from the MMOD figures. Nothing is written when
    no set has dlib-mmod results.
    """
    from classic_loc import load_dataset
    from classic_loc.evaluation import evaluate

    keys = ("map50", "map", "loc_accuracy", "mean_iou", "accuracy", "corloc", "map75")
    out = {"generated_by": "benchmarks/run.py (write_mmod_results)", "sets": {}}
    for set_name in sets:
        paths = work_paths(work_dir, set_name, "dlib-mmod")
        if not os.path.exists(paths["figures"]):
            continue
        f = _read_json(paths["figures"])
        run = _read_json(paths["run"]) if os.path.exists(paths["run"]) else {}
        if run.get("status") not in (None, "ok"):
            continue
        test = load_dataset(os.path.join(os.fspath(data_dir), set_name), split="test")
        ref = f.get("reference")
        rows = []
        for var in f["variants"]:
            path = os.path.join(os.fspath(work_dir), var["detections"])
            m = evaluate(test, path)
            rows.append({"method": "dlib-mmod" + (", boxes calibrated on train" if var.get("box_calibration") else ""),
                         "upsample": var["upsample"], **{k: m[k] for k in keys},
                         "box_calibration": var.get("box_calibration"),
                         "box_fit": box_fit(test, path),
                         "ms_per_image": var["predict_ms_per_image"],
                         "ms_ratio_to_classic_fhog": (round(var["predict_ms_per_image"] / ref["predict_ms_per_image"], 2)
                                                      if ref else None),
                         "peak_rss_mb": var["peak_rss_mb"], "ru_maxrss_mb": var.get("ru_maxrss_mb"),
                         "cpu_over_wall": var.get("cpu_over_wall"),
                         "threads_in_process": var.get("threads_in_process"),
                         "n_detections": var.get("n_detections"), "smallest_detection_px": var.get("smallest_detection_px"),
                         "load_average_at_start": var.get("load_average_at_start"),
                         "load_average_at_end": var.get("load_average_at_end")})
        ref_dets = work_paths(work_dir, set_name, "classic")["detections"]
        if ref:
            rows.append({"method": "classic-fhog", "upsample": None, **{k: ref["metrics"][k] for k in keys},
                         # the classic run's detections file: the same model's predictions
                         "box_fit": box_fit(test, ref_dets) if os.path.exists(ref_dets) else None,
                         "ms_per_image": ref["predict_ms_per_image"], "ms_ratio_to_classic_fhog": 1.0,
                         "peak_rss_mb": ref["peak_rss_mb"], "cpu_over_wall": None, "threads_in_process": None,
                         "load_average_at_start": ref.get("load_average_at_start"),
                         "load_average_at_end": ref.get("load_average_at_end")})
        classic_run = work_paths(work_dir, set_name, "classic")["run"]
        git = f.get("git_at_start")
        out["sets"][set_name] = {
            "test_images": f["test_images"], "rows": rows, "git_at_start": git, "git_at_end": f.get("git_at_end"),
            "clean": bool(git) and not git["changed_files"] and f.get("git_at_end") == git,
            "versions": f.get("versions"), "machine": f.get("machine"), "settings": f.get("settings"),
            "model_bytes": f.get("model_bytes"), "reference_model": ref and {
                k: ref[k] for k in ("model", "model_bytes", "model_mtime")},
            "reference_fit_run": (_read_json(classic_run) if os.path.exists(classic_run) else None),
            "command": run.get("command"), "started": run.get("started")}
    if not out["sets"]:
        return []
    os.makedirs(out_dir, exist_ok=True)
    json_path, md_path = os.path.join(out_dir, "mmod.json"), os.path.join(out_dir, "mmod.md")
    write_json(json_path, out)
    atomic_write_text(md_path, mmod_markdown(out))
    log(f"wrote {md_path} and {json_path}", verbose)
    return [md_path, json_path]


def mmod_markdown(out):
    """The text of mmod.md from :func:`write_mmod_results`'s dict."""
    lines = ["# A pretrained CNN on faces: dlib's MMOD face detector against classic_loc", "",
             ("Generated by `benchmarks/run.py` from the work folder's dlib-mmod files (do not edit by hand). "
              "dlib's MMOD CNN (`dlib.cnn_face_detection_model_v1`, the weights of `face-recognition-models`) "
              "was trained by dlib's author on his own face data set, not on the shared set's train split; "
              "classic_loc's fhog model was trained on that split only. Same test images, same evaluator "
              "(`classic_loc.evaluation.evaluate`), same IoU rules as `benchmarks/RESULTS.md`. `ms/image`: "
              "median over the test images, one thread, image decoding excluded, after one untimed warm-up "
              "call, each configuration in a fresh process whose peak resident memory (VmHWM) is `peak MB`; "
              "the classic fhog model is timed in the same run on the same images (`x classic` is the ratio "
              "of medians)."), ""]
    for set_name, s in out["sets"].items():
        lines += [f"## {set_name} ({s['test_images']} test images)", "",
                  ("| method | upsample | AP50 | mAP | loc_accuracy | mean IoU | ms/image | x classic fhog | peak MB "
                   "| CPU/wall | load average (start) |"),
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        for r in s["rows"]:
            la = r.get("load_average_at_start")
            ratio, rss = r["ms_ratio_to_classic_fhog"], r["peak_rss_mb"]
            lines.append(f"| {r['method']} | {'-' if r['upsample'] is None else r['upsample']} | "
                         f"{_fmt(r['map50'])} | {_fmt(r['map'])} | {_fmt(r['loc_accuracy'])} | "
                         f"{_fmt(r['mean_iou'])} | {r['ms_per_image']:.1f} | {_fmt(ratio, 2)} | "
                         f"{'-' if rss is None else f'{rss:.0f}'} | {_fmt(r['cpu_over_wall'], 2)} | "
                         f"{' / '.join(f'{x:.2f}' for x in la) if la else '-'} |")
        git = s.get("git_at_start") or {}
        st = s.get("settings") or {}
        v = s.get("versions") or {}
        if s["clean"]:
            code = f"- Code: commit {git.get('head')}, clean tree."
        else:
            changed = ", ".join(git.get("changed_files") or []) or "none at the start"
            code = (f"- Code: commit {git.get('head', '?')}, NOT CLEAN (uncommitted changes: {changed}; or the "
                    f"commit changed during the run): these figures are not from a committed tree.")
        smallest = ", ".join(f"{r['smallest_detection_px']} px at upsample {r['upsample']}" for r in s["rows"]
                             if r["method"] == "dlib-mmod" and r.get("smallest_detection_px") is not None) or "-"
        cals = [r for r in s["rows"] if r.get("box_calibration")]
        cal_lines = [(f"- Boxes calibrated on train (upsample {r['upsample']}): each MMOD box of the test run is moved "
                      f"by ({r['box_calibration']['dx']:+.3f} w, {r['box_calibration']['dy']:+.3f} h) and scaled by "
                      f"{r['box_calibration']['width_scale']:.3f} in width and {r['box_calibration']['height_scale']:.3f} "
                      f"in height: the medians over {r['box_calibration']['pairs']} train faces matched at IoU >= "
                      f"{r['box_calibration']['min_iou']} ({r['box_calibration']['fitted_on']}, no test data). It "
                      f"separates finding the faces from drawing this set's box; its time is that of upsample "
                      f"{r['upsample']}.") for r in cals]
        ref = s.get("reference_model")
        if ref:
            ref_run = s.get("reference_fit_run") or {}
            ref_git = ref_run.get("git_at_start")
            fitted = ""
            if ref_git:
                fitted = (f", fitted by `{ref_run.get('command')}` at commit {ref_git['head']}"
                          + (" (clean)" if not ref_git["changed_files"] else
                             f" with uncommitted changes in {', '.join(ref_git['changed_files'])}"))
            classic = (f"- classic-fhog: the work folder's {ref['model']} ({_size(ref['model_bytes'])}, written "
                       f"{ref['model_mtime']}{fitted}); its metrics are the evaluator's on its predictions in this run.")
        else:
            classic = "- classic-fhog: no model in the work folder: run `classic` on this set first (or in the same command)."
        fits = [(r, r.get("box_fit")) for r in s["rows"] if r.get("box_fit")]
        if fits:
            lines += ["", ("Box fit, whatever the score: the share of ground-truth faces with a prediction of IoU "
                           ">= 0.5 and >= 0.3 in their image, and the median side ratio sqrt(predicted / "
                           "ground-truth area) over those of IoU >= 0.3 (below 1: tighter boxes than the "
                           "annotation's):"), "",
                      "| method | upsample | IoU >= 0.5 | IoU >= 0.3 | side ratio |", "|---|---:|---:|---:|---:|"]
            lines += [f"| {r['method']} | {'-' if r['upsample'] is None else r['upsample']} | "
                      f"{_fmt(b['iou50_share'])} | {_fmt(b['iou30_share'])} | {_fmt(b['side_ratio_median'], 2)} |"
                      for r, b in fits]
        lines += ["", code,
                  f"- Command: `{s.get('command')}`, started {s.get('started')}; machine {s.get('machine')}.",
                  (f"- Versions: dlib {v.get('dlib')}, face-recognition-models {v.get('face-recognition-models')}, "
                   f"numpy {v.get('numpy')}, classic_loc {v.get('classic_loc')}."),
                  (f"- MMOD: {st.get('model')} ({_size(s.get('model_bytes'))}), trained on "
                   f"{st.get('training_data')}; score: {st.get('score')}; boxes: {st.get('box')}, clipped to the "
                   f"image. The row of `benchmarks/RESULTS.md` is upsample {st.get('upsample_num_times')}; dlib's "
                   f"own examples use 1 (upsampling reaches smaller faces; the smallest box found here, sqrt(w h): "
                   f"{smallest})."),
                  ("- Threads: OMP/OpenBLAS/MKL_NUM_THREADS=1 in every worker; dlib's CNN has no thread setting. "
                   "CPU/wall is the process's CPU time over the wall time of the timed calls: about 1.0 means one "
                   "thread did the work."),
                  ("- Memory: `peak MB` is the worker's VmHWM. Its ru_maxrss (in mmod.json) is not used: Linux "
                   "carries the peak of the process that forked the worker (run.py, which may have fitted "
                   "classic_loc in-process) across exec."),
                  *cal_lines, classic, ""]
    lines += [("Regenerate: `flock /work/heavy.lock python benchmarks/run.py --sets cmu_mit_faces --methods classic "
               "dlib-mmod --no-report` (about 10 min on 2 cores; without `--no-report` it also writes RESULTS.md), or "
               "after a full run `python benchmarks/run.py --sets cmu_mit_faces --methods dlib-mmod` (it reuses the "
               "work folder's classic model and adds the row to the full RESULTS.md)."), ""]
    return "\n".join(lines)


def _code_line(start, end):
    """Which code ran: the commit, uncommitted changes, and whether it changed during the run."""
    if not start:
        return None
    text = f"Code: commit {start['head']}"
    if start["changed_files"]:
        text += f" with uncommitted changes in {', '.join(start['changed_files'])}"
    if end and end != start:
        text += (f"; at the end of the run: commit {end['head']}"
                 + (f" with uncommitted changes in {', '.join(end['changed_files'])}" if end["changed_files"] else "")
                 + " (the code changed while the benchmark ran)")
    return text + "."


def _rel(path, start):
    return os.path.relpath(path, start).replace(os.sep, "/")


def build_outputs(data, methods, out_dir, md_path, meta, verbose=True, t0=None):
    """Write the plots, ``benchmark.json`` and RESULTS.md from collected data; return the md text.

    With ``t0`` (a ``time.perf_counter()`` value), ``meta["wall_seconds"]`` is set to the time since it,
    once the plots are drawn (so the run's wall time includes everything but writing the report).
    """
    plots_dir = os.path.join(out_dir, "plots")
    md_dir = os.path.dirname(os.path.abspath(md_path))
    plots = {}
    try:
        import matplotlib  # noqa: F401
        plot_note = None
    except ImportError:
        plot_note = "No plots: matplotlib is not installed (pip install matplotlib, or the project's [bench] extra)."
        log(plot_note, verbose)
    for set_name, s in data.items():
        e = s["methods"]
        if not _ok(e) or plot_note:
            plots[set_name] = {}
            continue
        log(f"{set_name}: plots", verbose)
        plots[set_name] = {
            "summary": plot_summary(set_name, e, os.path.join(plots_dir, f"{set_name}_summary.png")),
            "pr": plot_pr(set_name, e, s["test"].classes, os.path.join(plots_dir, f"{set_name}_pr.png")),
            "iou": plot_iou(set_name, e, os.path.join(plots_dir, f"{set_name}_iou.png")),
            "examples": plot_examples(set_name, s["test"], e, os.path.join(plots_dir, f"{set_name}_examples.png")),
        }
    if t0 is not None:
        meta["wall_seconds"] = round(time.perf_counter() - t0, 1)

    bench = {"command": meta.get("command"), "wall_seconds": meta.get("wall_seconds"),
             "machine": meta.get("machine"), "load_average_at_start": meta.get("load_average_at_start"),
             "load_average_at_end": meta.get("load_average_at_end"), "git_at_start": meta.get("git_at_start"),
             "git_at_end": meta.get("git_at_end"), "methods": {m: DESCRIPTION[m] for m in methods},
             "sets": {}}
    for set_name, s in data.items():
        ms = {}
        for method in methods:
            e = s["methods"][method]
            item = {"status": e["status"], "reason": e["reason"], "run": e.get("run") or None}
            if e["status"] == "ok":
                f = {k: v for k, v in e["figures"].items() if k not in ("metrics", "evaluation")}
                item.update(figures=f, metrics=e["metrics"],
                            curves={**e["curves"], "precision50_mean": mean_precision(e["curves"])})
            ms[method] = item
        bench["sets"][set_name] = {**s["info"], "example_images": [s["test"][i].image_id
                                                                   for i in example_indices(s["test"])],
                                   "plots": {k: _rel(v, out_dir) for k, v in plots[set_name].items()},
                                   "methods": ms}
    write_json(os.path.join(out_dir, "benchmark.json"), bench)

    m = meta.get("machine") or {}
    lines = ["# Benchmark: classic_loc against CNN models and classical peers", "",
             ("Generated by `benchmarks/run.py` (do not edit by hand). Every method is trained on the `train` split "
             "of a shared set and predicts its `test` split; each method's COCO results file is scored by the same "
             "call, `classic_loc.evaluation.evaluate(test, detections, curves=True)` (definitions in the README). "
             "`predict ms/img` is the median over the test images, one thread, image decoding excluded, at the "
             "set's own image sizes (below); `peak RSS MB` is the peak resident memory (VmHWM) of a fresh process "
             "that only loads the model and predicts the test images; `model size` is the model's files on disk; "
             "`fit s` is the training wall time on the 2 cores (see the notes for each method's threads)."), "",
             "## Summary", "", summary_table(data, methods), "",
             f"Machine: {machine_line(m, meta.get('load_average_at_start')) if m else 'n/a'}"
             + (f"; load average at the end of the run {' / '.join(f'{x:.2f}' for x in meta['load_average_at_end'])}"
                if meta.get("load_average_at_end") else "") + ".", "",
             (f"Command: `{meta['command']}`" if meta.get("command") else
              "Command: n/a (no run_meta.json in the work folder)")
             + (f" (report rebuilt with `{meta['report_command']}`)" if meta.get("report_command") else ""), "",
             f"Total wall time: {meta['wall_seconds'] / 60:.1f} min ({meta['wall_seconds']:.0f} s)"
             if meta.get("wall_seconds") is not None else "Total wall time: n/a", ""]
    code = _code_line(meta.get("git_at_start"), meta.get("git_at_end"))
    if code:
        lines[-1:-1] = ["", code]
    for later in meta.get("later_runs") or []:
        code = _code_line(later.get("git_at_start"), later.get("git_at_end"))
        la = later.get("load_average_at_start")
        lines[-1:-1] = ["", f"Updated by `{later.get('command')}` ({', '.join(later.get('sets', []))} x "
                            f"{', '.join(later.get('methods', []))}; started {later.get('started')}"
                            + (f", load average {' / '.join(f'{x:.2f}' for x in la)}" if la else "") + ")"
                            + (f": {code[0].lower()}{code[1:]}" if code else ".")]
    lines += ["## Sets", ""]
    for set_name, s in data.items():
        info = s["info"]
        sz = info["image_size"]
        lines.append(f"- **{set_name}**: {info['test_images']} test images, {info.get('boxes')} boxes "
                     f"({info.get('difficult', 0)} difficult), {info.get('empty_images', 0)} without objects; classes "
                     f"{', '.join(info['classes'])}; image size median {sz['median'][0]}x{sz['median'][1]} px "
                     f"(from {sz['min'][0]}x{sz['min'][1]} to {sz['max'][0]}x{sz['max'][1]}).")
    lines += ["", "## Methods and their settings", ""]
    for method in methods:
        lines.append(f"- **{method}**: {DESCRIPTION[method]}.")
        for set_name, s in data.items():
            e = s["methods"][method]
            note = method_notes(set_name, method, e) if e["status"] == "ok" else f"{e['status']}: {e['reason']}"
            lines.append(f"  - {set_name}: {note}")
    lines += ["", "## Plots", "",
              ("Per set: (1) AP50, loc_accuracy and mean IoU per method, and prediction time on a log axis; "
              "(2) precision-recall at IoU 0.5 (per class, and their mean on caltech101_subset); (3) the "
              "histogram of each test image's main-object IoU with the top prediction (0 where it has no "
              "prediction); (4) the first test image of each class (caltech101_subset) or the first three test "
              "images with objects, with the ground truth dashed and each method's top-scored boxes."), ""]
    if plot_note:
        lines += [plot_note, ""]
    for set_name, p in plots.items():
        if not p:
            continue
        lines += [f"### {set_name}", ""]
        for key, title in (("summary", "summary"), ("pr", "precision-recall at IoU 0.5"),
                           ("iou", "main-object IoU"), ("examples", "examples")):
            lines.append(f"![{set_name} {title}]({_rel(p[key], md_dir)})")
            lines.append("")
    lines += [(f"All figures, per-class metrics and curves: `{_rel(os.path.join(out_dir, 'benchmark.json'), md_dir)}`."
               f" Models and detections: `{meta.get('work_dir_display', 'benchmarks/out/run')}` (not versioned)."), ""]
    text = "\n".join(lines)
    atomic_write_text(md_path, text)
    return text


# ---------------------------------------------------------------- CLI
def _display(path):
    """A path relative to the repository when inside it (for the report), else absolute."""
    path = os.path.abspath(path)
    rel = os.path.relpath(path, REPO)
    return path if rel.startswith("..") else rel


def build_parser():
    ap = argparse.ArgumentParser(prog="python benchmarks/run.py",
                                 description=__doc__.split("\n\n")[0] + "\n\n" + __doc__.split("\n\n")[2],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", nargs="+", default=list(SETS), metavar="SET",
                    help=f"data sets (folders under --data with train and test splits) to run; default: "
                         f"{' '.join(SETS)}")
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS, metavar="METHOD",
                    help="methods to run: classic (classic_loc, fhog features), classic-haar (classic_loc, Haar "
                         "features), cnn-tiny and cnn-small (the CNN localizer, needs torch), dlib (HOG + "
                         "structural SVM, needs dlib-bin), opencv (OpenCV 4 pretrained detectors, pennfudan and "
                         "cmu_mit_faces only, in benchmarks/.venv-cv4), dlib-mmod (dlib's pretrained MMOD CNN face "
                         "detector, cmu_mit_faces only, needs face-recognition-models); default: all")
    ap.add_argument("--data", default=DEFAULT_DATA,
                    help="folder holding the shared data sets (default: $CLASSIC_LOC_SHARED_DATA, else "
                         "../shared/data beside the repository)")
    ap.add_argument("--out", default=DEFAULT_OUT,
                    help="folder for benchmark.json and plots/ (default: benchmarks/results)")
    ap.add_argument("--work", default=DEFAULT_WORK,
                    help="folder for the runners' models, detections and figures (default: benchmarks/out/run, "
                         "not versioned)")
    ap.add_argument("--md", default=DEFAULT_MD, help="the Markdown report to write (default: benchmarks/RESULTS.md)")
    ap.add_argument("--report-only", action="store_true",
                    help="run nothing: rebuild RESULTS.md, benchmark.json and the plots from the files already in "
                         "--work (the detections are scored again by the evaluator)")
    ap.add_argument("--no-report", action="store_true",
                    help="run the methods and update --work only (and mmod.md/json in --out): leave RESULTS.md, "
                         "benchmark.json and the plots as they are (rebuild them later with --report-only)")
    ap.add_argument("--quiet", action="store_true", help="no progress on stderr (the runners' included)")
    return ap


def main(argv=None):
    ap = build_parser()
    args = ap.parse_args(argv)
    verbose = not args.quiet
    if not os.path.isdir(args.data):
        ap.error(f"no shared data at {args.data}: pass --data or set CLASSIC_LOC_SHARED_DATA")
    for s in args.sets:
        if not os.path.isdir(os.path.join(args.data, s)):
            ap.error(f"no data set {s!r} in {args.data}")
    methods = [m for m in METHODS if m in args.methods]  # the table's order, whatever the command's
    command = "python " + " ".join(shlex.quote(a) for a in
                                   [_display(sys.argv[0]) if sys.argv and sys.argv[0].endswith("run.py")
                                    else "benchmarks/run.py", *(sys.argv[1:] if argv is None else argv)])
    os.makedirs(args.work, exist_ok=True)
    meta_path = os.path.join(args.work, "run_meta.json")
    t0 = time.perf_counter()
    failures = []
    previous = _read_json(meta_path) if os.path.exists(meta_path) else None
    report_sets, report_methods, update = list(args.sets), methods, False
    if args.report_only:
        meta = {**(previous or {}), "report_command": command}
        if not meta.get("machine"):
            meta["machine"] = machine_info()
    else:
        machine = machine_info()
        this = {"command": command, "machine": machine, "load_average_at_start": machine["load_average"],
                "git_at_start": git_state(), "sets": list(args.sets), "methods": methods,
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        update = is_update(previous, args.sets, methods)
        if update:  # fewer sets or methods than the recorded run: add to it, keep its other results
            meta = previous
            report_sets = merge_order(previous.get("sets") or [], args.sets)
            report_methods = [m for m in METHODS if m in set(previous.get("methods") or []) | set(methods)]
            meta.update(sets=report_sets, methods=report_methods)
            log(f"updating the run recorded in {meta_path} ({previous.get('command')}): the report covers "
                f"{len(report_sets)} set(s) x {len(report_methods)} method(s)", verbose)
        else:
            meta = this
        log(f"{len(args.sets)} set(s) x {len(methods)} method(s); work folder {args.work}", verbose)
        failures = run_all(args.sets, methods, args.data, args.work, command, verbose)
        this.update(load_average_at_end=load_average(), git_at_end=git_state(),
                    wall_seconds=round(time.perf_counter() - t0, 1))
        if update:
            meta.setdefault("later_runs", []).append({k: v for k, v in this.items() if k != "machine"})
    if not args.report_only and not update:
        meta["load_average_at_end"] = load_average()
        meta["git_at_end"] = git_state()
        if args.no_report:  # else build_outputs sets it, once the plots are drawn
            meta["wall_seconds"] = this["wall_seconds"]
    meta["work_dir_display"] = _display(args.work)
    wrote = []
    if not args.no_report:
        data = collect(report_sets, report_methods, args.data, args.work, verbose)
        build_outputs(data, report_methods, args.out, args.md, meta, verbose,
                      t0=None if args.report_only or update else t0)
        wrote += [args.md, os.path.join(args.out, "benchmark.json"), os.path.join(args.out, "plots")]
    if "dlib-mmod" in report_methods:
        wrote += write_mmod_results(report_sets, args.data, args.work, args.out, verbose)
    if not args.report_only:
        write_json(meta_path, meta)
    log(f"wrote {', '.join(wrote) or 'the work folder only'} in {time.perf_counter() - t0:.0f} s"
        + (f"; FAILED: {failures}" if failures else ""), verbose)
    if not args.quiet and not args.no_report:
        print(summary_table(data, report_methods))
    return 1 if failures else 0


def is_update(previous, sets, methods):
    """True when a run of ``sets`` x ``methods`` covers less than the run recorded in ``previous``."""
    if not previous or not previous.get("sets") or not previous.get("methods"):
        return False
    return not (set(previous["sets"]) <= set(sets) and set(previous["methods"]) <= set(methods))


def merge_order(first, second):
    """``first`` then the items of ``second`` not in it (set names keep the recorded run's order)."""
    return list(first) + [x for x in second if x not in first]


if __name__ == "__main__":
    raise SystemExit(main())
