"""Inference speed and footprint on one CPU thread, against dlib and OpenCV on the same images.

    python benchmarks/speed.py [--data ../shared/data] [--work benchmarks/out/speed] [--out benchmarks/results]
                               [--repeats 15] [--parts caltech sizes memory scaling] [--quiet]

Everything runs single-threaded (BLAS and OpenCV pinned to one thread; dlib's detectors use one).
Figures are medians over repeated runs, interleaved between methods, and every comparison is a
ratio to a reference measured in the same run on the same images: this machine is shared.

Parts (``--parts``, all by default):

``features``
    Per shared set, the default model of each feature family (fhog, haar, fhog+haar): the shared
    evaluator's figures on the test split and the predict time per test image, interleaved.
``caltech``
    classic_loc's 3-class caltech101_subset models (HOG = fhog, Haar, fhog+Haar; defaults) against
    dlib's three HOG detectors trained on the same train split (``benchmarks/peers.py``), run
    together with ``fhog_object_detector.run_multiple`` at upsample 0 and 1, on the test images.
    Also: the models' accuracy on the test split (the shared evaluator), the per-stage split
    (pyramid, features, scoring, gather, NMS, refinement), and how close the scoring stage comes
    to this CPU's float32 matrix-multiply throughput on one thread.
``sizes``
    At 320x240 and 640x480 (a real test image, resized): dlib's ``get_frontal_face_detector()``
    (upsample 0) next to classic_loc face models with its 80x80 window and pyramid step (6/5);
    OpenCV's Haar frontal-face cascade (scaleFactor 1.1 and 1.2) next to a classic_loc Haar face
    model with the same steps; OpenCV's HOG people detector (default settings, 64x128 window, step
    1.05) next to a classic_loc people model with that window and step. The OpenCV detectors run
    from ``opencv-python-headless<5`` in a virtual environment of their own (``benchmarks/peers.py``).
``memory``
    Cold start (import + model load, fresh interpreter), peak resident memory of a fresh process
    that loads a model and predicts one 640x480 image (against one that imports numpy and OpenCV
    only), model file size per class, and the modules the predict path imports.
``scaling``
    Predict time against image size, 160x120 to 1920x1080 (it should grow linearly with the
    pixels), as a table and ``plots/speed_vs_size.png``.

Models are trained once into ``--work`` (minutes; then reused). Writes ``speed.json`` and
``speed.md`` to ``--out``.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy: the scan's small matrix products are fastest on one thread

import cv2  # noqa: E402
import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from _bench import cpu_model  # noqa: E402

from classic_loc import Localizer, load_dataset  # noqa: E402
from classic_loc._fileio import atomic_write_text  # noqa: E402
from classic_loc.scan import n_positions, pyramid_levels, template_dim  # noqa: E402

cv2.setNumThreads(1)

# classic_loc models timed here: name -> (set, Localizer settings)
SETS = ("caltech101_subset", "pennfudan", "cmu_mit_faces")
FEATURES = ("fhog", "haar", "fhog+haar")
MODELS = {
    **{f"{s}-{f}": (s, {"features": f}) for s in SETS for f in FEATURES},  # the defaults, per feature family
    # dlib's frontal face detector: an 80 x 80 window (8-pixel cells) and pyramid_down<6> (step 6/5),
    # scanning every scale from the image's own down (upsample 0); ours the same: 10 x 10 cells
    # with one cell of context, objects from 64 px up
    "face-fhog-80px-1.2": ("cmu_mit_faces", {"features": "fhog", "window_cells": [10, 10], "scale_step": 1.2,
                                             "min_size": 64, "max_size": 100000}),
    "face-haar-80px-1.2": ("cmu_mit_faces", {"features": "haar", "window_cells": [10, 10], "scale_step": 1.2,
                                             "min_size": 64, "max_size": 100000}),
    "face-fhog+haar-80px-1.2": ("cmu_mit_faces", {"features": "fhog+haar", "window_cells": [10, 10],
                                                  "scale_step": 1.2, "min_size": 64, "max_size": 100000}),
    # OpenCV's people detector: a 64 x 128 window, scale 1.05, from the image's own scale down
    "people-fhog-64x128-1.05": ("pennfudan", {"features": "fhog", "window_cells": [16, 8], "context": 1,
                                              "scale_step": 1.05, "min_size": 112, "max_size": 100000}),
}


def log(msg, quiet=False):
    if not quiet:
        print(msg, file=sys.stderr, flush=True)


def machine_line():
    cpu = cpu_model()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{cpu}, {os.cpu_count()} cores, load average {load:.1f} at the end; Python {platform.python_version()}, "
            f"numpy {np.__version__}, OpenCV {cv2.__version__}")


# ------------------------------------------------------------------ models
def model_path(work, name):
    return os.path.join(work, f"{name}.npz")


def ensure_model(name, data, work, quiet):
    """The trained classic_loc model ``name`` (trained into ``work`` the first time)."""
    path = model_path(work, name)
    if not os.path.exists(path):
        set_name, settings = MODELS[name]
        log(f"training {name} on {set_name} train ({settings}) ...", quiet)
        train = load_dataset(os.path.join(data, set_name), split="train")
        model = Localizer(n_jobs=2, verbose=not quiet, **settings).fit(train)
        model.save(path)
    return Localizer.load(path)


def ensure_dlib(data, work, quiet):
    """Paths of dlib's caltech101_subset detectors (trained by ``peers.py`` the first time), or None."""
    try:
        import peers
        peers._import_dlib()
    except (ImportError, SystemExit) as exc:
        log(f"dlib comparison skipped: {exc}", quiet)
        return None
    train = load_dataset(os.path.join(data, "caltech101_subset"), split="train")
    for folder in (os.path.join(HERE, "out", "peers"), os.path.join(work, "peers")):  # peers.py's own run first
        paths = [os.path.join(folder, f"caltech101_subset_dlib_{c}.svm") for c in train.classes]
        if all(os.path.exists(p) for p in paths):
            return paths
    log("training dlib's caltech101_subset detectors (benchmarks/peers.py) ...", quiet)
    peers.run("caltech101_subset", "dlib", data, os.path.join(work, "peers"), verbose=not quiet)
    return paths


# ------------------------------------------------------------------ timing
def interleaved(fns, images, repeats):
    """Median ms per image of each function, calls interleaved round-robin (drift hits all alike).

    Returns {name: {"median_ms", "per_image_ms"}}: per image the median of ``repeats`` calls,
    then the median over images.
    """
    per = {name: [[] for _ in images] for name in fns}
    for name, fn in fns.items():  # warm-up
        fn(images[0])
    for _ in range(repeats):
        for i, img in enumerate(images):
            for name, fn in fns.items():
                t0 = time.perf_counter()
                fn(img)
                per[name][i].append((time.perf_counter() - t0) * 1000.0)
    out = {}
    for name in fns:
        med = [statistics.median(x) for x in per[name]]
        out[name] = {"median_ms": statistics.median(med), "per_image_ms": med}
    return out


def stage_split(model, images):
    """Mean ms per image of each scan stage, over ``images``."""
    t = {}
    for img in images:
        model.detect(img, timings=t)
    return {k: round(v / len(images) * 1000.0, 3) for k, v in t.items()}


def scoring_flops(model, image):
    """Multiply-adds of the scoring stage counted as a dense product: 2 * windows * D per template and level."""
    fp = model.feature_params_
    flops = 0
    for s, _, _, level in pyramid_levels(image, fp, model.templates_, model.scale_step, model.upsample):
        for t in model.templates_:
            if t.scale_range[0] * (1 - 1e-9) <= s <= t.scale_range[1] * (1 + 1e-9):
                n = n_positions(level, fp, t.window_cells)
                flops += 2 * n[0] * n[1] * template_dim(fp, t)
    return flops


def matmul_gflops(repeats=5):
    """This CPU's float32 matrix-multiply throughput on one thread (1024 x 1024 times 1024 x 1024)."""
    a = np.random.default_rng(0).random((1024, 1024), dtype=np.float32)
    b = a.T.copy()
    a @ b
    best = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best.append(time.perf_counter() - t0)
    return 2 * 1024 ** 3 / statistics.median(best) / 1e9


# ------------------------------------------------------------------ parts
def part_caltech(args, out):
    test = load_dataset(os.path.join(args.data, "caltech101_subset"), split="test")
    names = [f"caltech101_subset-{f}" for f in FEATURES]
    models = {n: ensure_model(n, args.data, args.work, args.quiet) for n in names}
    # deployment settings at prediction (no retraining): dlib's pyramid step; the cascade for Haar models
    models["caltech101_subset-fhog, scale_step 1.2"] = Localizer.load(
        model_path(args.work, "caltech101_subset-fhog")).set_params(scale_step=1.2)
    for f in ("haar", "fhog+haar"):
        models[f"caltech101_subset-{f}, cascade"] = Localizer.load(
            model_path(args.work, f"caltech101_subset-{f}")).set_params(cascade=True)
    idx = list(range(0, len(test), max(1, len(test) // args.images)))[:args.images]
    images = [test.image(i) for i in idx]
    fns = {n: m.detect for n, m in models.items()}
    dlib_paths = ensure_dlib(args.data, args.work, args.quiet)
    if dlib_paths:
        import dlib

        dets = [dlib.fhog_object_detector(p) for p in dlib_paths]
        for up in (0, 1):
            fns[f"dlib-3-detectors-upsample{up}"] = (
                lambda img, up=up: dlib.fhog_object_detector.run_multiple(dets, img, upsample_num_times=up,
                                                                         adjust_threshold=-1.0))
    log(f"caltech: timing {len(fns)} methods on {len(images)} test images x {args.repeats} ...", args.quiet)
    times = interleaved(fns, images, args.repeats)
    peak = matmul_gflops()
    rows = {}
    for n, m in models.items():
        metrics = m.score(test)
        stages = stage_split(m, images)
        flops = statistics.median(scoring_flops(m, img) for img in images[:20])
        gflops = flops / (stages["scoring"] / 1000.0) / 1e9 if stages.get("scoring") else None
        rows[n] = {"median_ms": times[n]["median_ms"], "stages_ms": stages, "accuracy": metrics["accuracy"],
                   "loc_accuracy": metrics["loc_accuracy"], "mean_iou": metrics["mean_iou"], "map50": metrics["map50"],
                   "scoring_gflops": gflops, "scoring_share_of_matmul_peak": gflops / peak if gflops else None}
    for name in fns:
        if name.startswith("dlib"):
            rows[name] = {"median_ms": times[name]["median_ms"]}
    out["caltech"] = {"images": len(images), "repeats": args.repeats, "matmul_gflops_1_thread": peak, "rows": rows,
                      "dlib_accuracy": _dlib_accuracy(args.work)}


def part_features(args, out):
    """Per shared set: the default model of each feature family, accuracy and ms per test image."""
    rows = []
    for set_name in SETS:
        test = load_dataset(os.path.join(args.data, set_name), split="test")
        models = {f: ensure_model(f"{set_name}-{f}", args.data, args.work, args.quiet) for f in FEATURES}
        for f in ("haar", "fhog+haar"):
            models[f"{f}, cascade"] = Localizer.load(model_path(args.work, f"{set_name}-{f}")).set_params(cascade=True)
        idx = list(range(0, len(test), max(1, len(test) // 40)))[:40]
        images = [test.image(i) for i in idx]
        log(f"features: {set_name}: timing {len(models)} models on {len(images)} test images ...", args.quiet)
        times = interleaved({f: m.detect for f, m in models.items()}, images, max(3, args.repeats // 3))
        for f, m in models.items():
            r = m.score(test)
            rows.append({"set": set_name, "features": f, "accuracy": r["accuracy"], "loc_accuracy": r["loc_accuracy"],
                         "mean_iou": r["mean_iou"], "map50": r["map50"], "map": r["map"],
                         "median_ms": times[f]["median_ms"],
                         "ratio_to_fhog": times[f]["median_ms"] / times["fhog"]["median_ms"],
                         "model_bytes": os.path.getsize(model_path(args.work, f"{set_name}-{f.split(',')[0]}"))})
    out["features"] = {"rows": rows}


def _dlib_accuracy(work):
    for folder in (os.path.join(HERE, "out", "peers"), os.path.join(work, "peers")):
        f = os.path.join(folder, "caltech101_subset_dlib_figures.json")
        if os.path.exists(f):
            with open(f) as fh:
                m = json.load(fh).get("metrics", {})
            return {k: m.get(k) for k in ("accuracy", "loc_accuracy", "mean_iou", "map50")}
    return None


def _sized(image, size):
    return np.ascontiguousarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA))


def part_sizes(args, out):
    src = load_dataset(os.path.join(args.data, "pennfudan"), split="test")
    path = src[0].path
    rgb = src.image(0)
    sizes = [(320, 240), (640, 480)]
    face_names = ["face-fhog-80px-1.2", "face-haar-80px-1.2", "face-fhog+haar-80px-1.2"]
    people = "people-fhog-64x128-1.05"
    models = {n: ensure_model(n, args.data, args.work, args.quiet) for n in face_names + [people]}
    rows = []
    for size in sizes:
        img = _sized(rgb, size)
        fns = {n: m.detect for n, m in models.items()}
        haar = models["face-haar-80px-1.2"]
        fns["face-haar-80px-1.1"] = lambda im, m=haar: _detect_with(m, im, scale_step=1.1)
        fns["face-haar-80px-1.2, cascade"] = lambda im, m=haar: _detect_with(m, im, cascade=True)
        fns["face-haar-80px-1.1, cascade"] = lambda im, m=haar: _detect_with(m, im, scale_step=1.1, cascade=True)
        fns["face-fhog+haar-80px-1.2, cascade"] = (
            lambda im, m=models["face-fhog+haar-80px-1.2"]: _detect_with(m, im, cascade=True))
        try:
            import dlib

            det = dlib.get_frontal_face_detector()
            fns["dlib-frontal-face"] = lambda im: det(im, 0)
        except ImportError:
            pass
        log(f"sizes: {size[0]}x{size[1]}: timing {len(fns)} methods x {args.repeats} ...", args.quiet)
        t = interleaved(fns, [img], args.repeats)
        for n, v in t.items():
            row = {"size": f"{size[0]}x{size[1]}", "method": n, "median_ms": v["median_ms"]}
            if n in models:
                row["stages_ms"] = stage_split(models[n], [img] * 3)
            rows.append(row)
    try:
        import peers

        cv4 = peers.time_opencv(path, sizes, repeats=args.repeats, verbose=not args.quiet)
        for r in cv4["results"]:
            sf = r["params"].get("scaleFactor")
            rows.append({"size": f"{r['width']}x{r['height']}",
                         "method": f"opencv-{r['detector']}" + (f"-{sf}" if sf else ""), "median_ms": r["median_ms"],
                         "opencv": cv4.get("cv2_version")})
    except Exception as exc:  # noqa: BLE001 - the comparison is optional; say why it is missing
        log(f"OpenCV 4 comparison skipped: {exc}", args.quiet)
    out["sizes"] = {"image": os.path.basename(path), "repeats": args.repeats, "rows": rows}


def _detect_with(model, image, **changes):
    """``model.detect`` with other scan settings (a shallow copy; the templates are shared)."""
    import copy

    m = copy.copy(model)
    for k, v in changes.items():
        setattr(m, k, v)
    return m.detect(image)


_RSS_CODE = """
import sys, time
t0 = time.perf_counter()
import numpy, cv2
t1 = time.perf_counter()
if sys.argv[1] != "-":
    from classic_loc import Localizer
    m = Localizer.load(sys.argv[1])
    t2 = time.perf_counter()
    img = numpy.zeros((480, 640, 3), numpy.uint8)
    img[:] = cv2.resize(cv2.imread(sys.argv[2]), (640, 480))[:, :, ::-1]
    m.detect(img)
else:
    t2 = t1
bad = sorted({k.split('.')[0] for k in sys.modules} & {'sklearn', 'skimage', 'joblib', 'scipy', 'torch'})
hwm = [int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')][0] / 1024
import json
print(json.dumps([t1 - t0, t2 - t0, hwm, ','.join(bad)]))
"""


def _fresh(model_file, image):
    """(import s, import + load s, peak RSS MB, heavy modules) of a fresh process predicting one 640x480 image."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    res = subprocess.run([sys.executable, "-c", _RSS_CODE, model_file, image], capture_output=True, text=True,
                         check=True, env=env)
    return tuple(json.loads(res.stdout.strip().splitlines()[-1]))


def part_memory(args, out):
    image = load_dataset(os.path.join(args.data, "pennfudan"), split="test")[0].path
    base = [_fresh("-", image) for _ in range(3)]
    rows = []
    for n in MODELS:
        if not os.path.exists(model_path(args.work, n)):
            continue
        runs = [_fresh(model_path(args.work, n), image) for _ in range(3)]
        m = Localizer.load(model_path(args.work, n))
        size = os.path.getsize(model_path(args.work, n))
        rows.append({"model": n, "classes": len(m.classes_), "model_bytes": size,
                     "bytes_per_class": size / len(m.classes_),
                     "cold_start_ms": statistics.median(r[1] for r in runs) * 1000,
                     "peak_rss_mb_640x480": statistics.median(r[2] for r in runs),
                     "heavy_modules_imported": runs[0][3] or "none"})
    out["memory"] = {"numpy_cv2_import_ms": statistics.median(b[0] for b in base) * 1000,
                     "numpy_cv2_peak_rss_mb": statistics.median(b[2] for b in base), "rows": rows}


def part_scaling(args, out):
    rgb = load_dataset(os.path.join(args.data, "pennfudan"), split="test").image(0)
    sizes = [(160, 120), (320, 240), (640, 480), (1280, 720), (1920, 1080)]
    names = ["face-fhog-80px-1.2", "face-haar-80px-1.2", "caltech101_subset-fhog"]
    models = {n: ensure_model(n, args.data, args.work, args.quiet) for n in names}
    rows = []
    for size in sizes:
        img = _sized(rgb, size)
        reps = max(3, args.repeats // (1 + size[0] * size[1] // (640 * 480)))
        t = interleaved({n: m.detect for n, m in models.items()}, [img], reps)
        for n, v in t.items():
            rows.append({"size": f"{size[0]}x{size[1]}", "megapixels": size[0] * size[1] / 1e6, "model": n,
                         "median_ms": v["median_ms"]})
    fits = {}
    for n in names:
        mp = np.array([r["megapixels"] for r in rows if r["model"] == n])
        ms = np.array([r["median_ms"] for r in rows if r["model"] == n])
        slope, icpt = np.polyfit(mp, ms, 1)
        pred = slope * mp + icpt
        fits[n] = {"ms_per_megapixel": slope, "intercept_ms": icpt,
                   "r2": 1 - float(((ms - pred) ** 2).sum() / ((ms - ms.mean()) ** 2).sum())}
    out["scaling"] = {"rows": rows, "linear_fit": fits}
    _plot_scaling(rows, fits, os.path.join(args.out, "plots", "speed_vs_size.png"))


def _plot_scaling(rows, fits, path):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for n, f in fits.items():
        mp = [r["megapixels"] for r in rows if r["model"] == n]
        ms = [r["median_ms"] for r in rows if r["model"] == n]
        ax.plot(mp, ms, "o-", label=f"{n} ({f['ms_per_megapixel']:.0f} ms/MP, R² {f['r2']:.3f})")
    ax.set_xlabel("image size (megapixels): 160x120 ... 1920x1080")
    ax.set_ylabel("predict ms per image (1 thread, median)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    tmp = path + ".tmp.png"
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)


# ------------------------------------------------------------------ report
def report(out):
    lines = []
    if "features" in out:
        lines += ["## HOG, Haar and both: default models on each shared set", "",
                  "| set | features | accuracy | loc_accuracy | mean_iou | AP50 | mAP | ms/image (1 thread, median) | "
                  "time / fhog's | model KiB |", "|---|---|---|---|---|---|---|---|---|---|"]
        for r in out["features"]["rows"]:
            lines.append(f"| {r['set']} | {r['features']} | {r['accuracy']:.3f} | {r['loc_accuracy']:.3f} | "
                         f"{r['mean_iou']:.3f} | {r['map50']:.3f} | {r['map']:.3f} | {r['median_ms']:.1f} | "
                         f"{r['ratio_to_fhog']:.2f} | {r['model_bytes'] / 1024:.0f} |")
        lines.append("")
    if "caltech" in out:
        c = out["caltech"]
        rows = c["rows"]
        refs = [n for n in rows if n.startswith("dlib")]
        lines += ["## caltech101_subset test images: 3-class model against dlib's 3 detectors", "",
                  "| method | ms/image (median) | " + " | ".join(f"ratio to {r}" for r in refs)
                  + " | accuracy | loc_accuracy | AP50 | scoring GFLOP/s (share of 1-thread matmul) |",
                  "|---|---|" + "---|" * len(refs) + "---|---|---|---|"]
        for n, r in rows.items():
            ratios = " | ".join(f"{r['median_ms'] / rows[x]['median_ms']:.2f}" for x in refs)
            acc = (f"{r['accuracy']:.3f} | {r['loc_accuracy']:.3f} | {r['map50']:.3f}" if "accuracy" in r
                   else (" | ".join(f"{c['dlib_accuracy'][k]:.3f}" for k in ("accuracy", "loc_accuracy", "map50"))
                         if c.get("dlib_accuracy") else " | | "))
            g = (f"{r['scoring_gflops']:.1f} ({r['scoring_share_of_matmul_peak']:.0%})"
                 if r.get("scoring_gflops") else "")
            lines.append(f"| {n} | {r['median_ms']:.2f} | {ratios} | {acc} | {g} |")
        lines += ["", f"float32 matmul on one thread: {c['matmul_gflops_1_thread']:.1f} GFLOP/s. "
                      f"{c['images']} test images x {c['repeats']} runs, interleaved.", "",
                  "Per-stage split (ms per image, mean):", "",
                  "| model | " + " | ".join(STAGES) + " |", "|---|" + "---|" * len(STAGES)]
        for n, r in rows.items():
            if "stages_ms" in r:
                lines.append(f"| {n} | " + " | ".join(f"{r['stages_ms'].get(s, 0):.2f}" for s in STAGES) + " |")
        lines.append("")
    if "sizes" in out:
        s = out["sizes"]
        lines += ["## Same image at 320x240 and 640x480 (median ms, one thread)", "",
                  "| method | " + " | ".join(sorted({r["size"] for r in s["rows"]}, key=_area)) + " |",
                  "|---|" + "---|" * len({r["size"] for r in s["rows"]})]
        by = {}
        for r in s["rows"]:
            by.setdefault(r["method"], {})[r["size"]] = r["median_ms"]
        for m, v in by.items():
            lines.append(f"| {m} | " + " | ".join(f"{v.get(z, float('nan')):.1f}"
                                                  for z in sorted({r['size'] for r in s['rows']}, key=_area)) + " |")
        lines.append("")
    if "memory" in out:
        m = out["memory"]
        lines += ["## Footprint", "",
                  f"A fresh interpreter importing numpy and OpenCV only: {m['numpy_cv2_import_ms']:.0f} ms, "
                  f"peak RSS {m['numpy_cv2_peak_rss_mb']:.1f} MB.", "",
                  "| model | classes | file KiB | KiB per class | cold start ms (import + load) | peak RSS MB "
                  "(predict 640x480) | sklearn/skimage/joblib/scipy/torch imported |", "|---|---|---|---|---|---|---|"]
        for r in m["rows"]:
            lines.append(f"| {r['model']} | {r['classes']} | {r['model_bytes'] / 1024:.0f} | "
                         f"{r['bytes_per_class'] / 1024:.0f} | {r['cold_start_ms']:.0f} | "
                         f"{r['peak_rss_mb_640x480']:.1f} | {r['heavy_modules_imported']} |")
        lines.append("")
    if "scaling" in out:
        sc = out["scaling"]
        sizes = sorted({r["size"] for r in sc["rows"]}, key=_area)
        lines += ["## Predict time against image size (median ms, one thread)", "",
                  "| model | " + " | ".join(sizes) + " | ms per megapixel (linear fit, R²) |",
                  "|---|" + "---|" * (len(sizes) + 1)]
        for n, f in sc["linear_fit"].items():
            v = {r["size"]: r["median_ms"] for r in sc["rows"] if r["model"] == n}
            lines.append(f"| {n} | " + " | ".join(f"{v[z]:.1f}" for z in sizes)
                         + f" | {f['ms_per_megapixel']:.1f} ({f['r2']:.3f}) |")
        lines += ["", "![predict time against image size](plots/speed_vs_size.png)", ""]
    lines.append("Machine and command of each part:")
    lines.append("")
    for part in PARTS:
        if part in out:
            lines.append(f"- {part}: {out[part].get('machine', '')}; `{out[part].get('command', '')}`")
    return "\n".join(lines)


STAGES = ("pyramid", "features", "scoring", "gather", "nms", "refinement")
PARTS = ("features", "caltech", "sizes", "memory", "scaling")


def _area(size):
    w, h = size.split("x")
    return int(w) * int(h)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.environ.get("CLASSIC_LOC_SHARED_DATA",
                                                     os.path.join(HERE, "..", "..", "shared", "data")),
                    help="folder holding the shared data sets (default: ../shared/data)")
    ap.add_argument("--work", default=os.path.join(HERE, "out", "speed"),
                    help="folder for the trained models (trained once, then reused)")
    ap.add_argument("--out", default=os.path.join(HERE, "results"), help="folder for speed.json, speed.md, plots/")
    ap.add_argument("--parts", nargs="+", default=list(PARTS), choices=PARTS, help="what to measure (default: all)")
    ap.add_argument("--repeats", type=int, default=15, help="timed runs per image and method (default 15)")
    ap.add_argument("--images", type=int, default=60, help="caltech test images timed (default 60)")
    ap.add_argument("--quiet", action="store_true", help="no progress output")
    args = ap.parse_args(argv)
    if not os.path.isdir(args.data):
        ap.error(f"no shared data at {args.data}: pass --data or set CLASSIC_LOC_SHARED_DATA")
    os.makedirs(args.work, exist_ok=True)
    out, previous = {}, os.path.join(args.out, "speed.json")
    if os.path.exists(previous):  # parts not run this time keep their earlier figures (each has its machine line)
        with open(previous) as fh:
            out = {k: v for k, v in json.load(fh).items() if k in PARTS}
    command = "python benchmarks/speed.py " + " ".join(argv if argv is not None else sys.argv[1:])
    for part in args.parts:
        globals()[f"part_{part}"](args, out)
        out[part]["machine"] = machine_line()
        out[part]["command"] = command
    text = report(out)
    print(text)
    atomic_write_text(os.path.join(args.out, "speed.json"), json.dumps(out, indent=2, default=float))
    atomic_write_text(os.path.join(args.out, "speed.md"), "# Speed and footprint\n\n" + text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
