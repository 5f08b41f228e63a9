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
    to this CPU's float32 matrix-multiply throughput on one thread. Issue 12's speed moves one at
    a time, in the same interleaved run (:data:`BEFORE_CHAIN`): ``fhog, before`` is the
    pre-issue-12 path kept as the reference (a model trained with ``pyramid="exact"``, scanned
    exact, every template scored on its own by ``score_windows``: :func:`one_template_scoring`
    patches ``classic_loc.scan.window_scorer`` to return None); ``fhog, exact pyramid`` is the same
    model with the stacked scorer (all templates of a level in one product); ``fhog`` is the
    default model (fast feature pyramid).
``sizes``
    At 320x240 and 640x480 (a real test image, resized), each fed the same pixels in colour (RGB)
    and in grey (a 2-D uint8 array; dlib's time differs by about 1.5x between them, and
    classic_loc converts colour to grey in ``FeatureParams.prepare``, inside its timed predict):
    dlib's ``get_frontal_face_detector()``
    (upsample 0) next to classic_loc face models with its 80x80 window and pyramid step (6/5);
    OpenCV's Haar frontal-face cascade (scaleFactor 1.1 and 1.2) next to a classic_loc Haar face
    model with the same steps; OpenCV's HOG people detector (default settings, 64x128 window, step
    1.05) next to a classic_loc people model with that window and step. The OpenCV detectors run
    from ``opencv-python-headless<5`` in a virtual environment of their own (``benchmarks/peers.py``;
    it feeds the HOG people detector colour, the cascade grey). Each face row has its ratio to dlib's
    detector on the same size and input, the people row to OpenCV's HOG people detector.
``memory``
    Cold start (import + model load, fresh interpreter), peak resident memory of a fresh process
    that loads a model and predicts one 640x480 image (against one that imports numpy and OpenCV
    only), model file size per class, and the modules the predict path imports.
``scaling``
    Predict time against image size, 160x120 to 1920x1080 (it should grow linearly with the
    pixels), as a table and ``plots/speed_vs_size.png``.

Models are trained once into ``--work`` (minutes; then reused; delete the ``.npz`` files after a
change to the fit code). Writes ``speed.json`` and ``speed.md`` to ``--out``; each part records
its commit and whether the tree was clean (``_bench.git_state()``: the report marks figures from
uncommitted package or benchmark code), the load averages at its start and end, the versions and
the CPU.
"""

import argparse
import contextlib
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time

if __name__ == "__main__":  # only when run: importing this module (the tests) leaves the caller's threads alone
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_var] = "1"  # before numpy: the scan's small matrix products are fastest on one thread

import cv2  # noqa: E402
import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from _bench import cpu_model, git_state, load_average  # noqa: E402

import classic_loc.scan  # noqa: E402
from classic_loc import Localizer, load_dataset  # noqa: E402
from classic_loc._fileio import atomic_write_text  # noqa: E402
from classic_loc.scan import n_positions, pyramid_levels, template_dim  # noqa: E402

# classic_loc models timed here: name -> (set, Localizer settings)
SETS = ("caltech101_subset", "pennfudan", "cmu_mit_faces")
FEATURES = ("fhog", "haar", "fhog+haar")
MODELS = {
    **{f"{s}-{f}": (s, {"features": f}) for s in SETS for f in FEATURES},  # the defaults, per feature family
    # the "before" of issue 12: every pyramid level's HOG computed from its pixels, at fit and at prediction
    "caltech101_subset-fhog-exact": ("caltech101_subset", {"features": "fhog", "pyramid": "exact"}),
    # dlib's frontal face detector: an 80 x 80 window (8-pixel cells) and pyramid_down<6> (step 6/5),
    # scanning every scale from the image's own down (upsample 0); ours the same: 10 x 10 cells
    # with one cell of context, objects from 64 px up, first level the image itself (upsample 1, not "auto",
    # which picks 2 on these faces: dlib's upsample 1)
    "face-fhog-80px-1.2": ("cmu_mit_faces", {"features": "fhog", "window_cells": [10, 10], "scale_step": 1.2,
                                             "upsample": 1.0, "min_size": 64, "max_size": 100000}),
    "face-haar-80px-1.2": ("cmu_mit_faces", {"features": "haar", "window_cells": [10, 10], "scale_step": 1.2,
                                             "upsample": 1.0, "min_size": 64, "max_size": 100000}),
    "face-fhog+haar-80px-1.2": ("cmu_mit_faces", {"features": "fhog+haar", "window_cells": [10, 10],
                                                  "scale_step": 1.2, "upsample": 1.0, "min_size": 64,
                                                  "max_size": 100000}),
    # OpenCV's people detector: a 64 x 128 window, scale 1.05, from the image's own scale down
    "people-fhog-64x128-1.05": ("pennfudan", {"features": "fhog", "window_cells": [16, 8], "context": 1,
                                              "scale_step": 1.05, "upsample": 1.0, "min_size": 112,
                                              "max_size": 100000}),
}


def log(msg, quiet=False):
    if not quiet:
        print(msg, file=sys.stderr, flush=True)


def machine_line():
    cpu = cpu_model()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{cpu}, {os.cpu_count()} cores, load average {load:.1f} at the end; Python {platform.python_version()}, "
            f"numpy {np.__version__}, OpenCV {cv2.__version__}")


def versions():
    """Versions of what the figures depend on (dlib's when it is installed)."""
    v = {"python": platform.python_version(), "numpy": np.__version__, "opencv": cv2.__version__}
    try:
        import classic_loc

        v["classic_loc"] = getattr(classic_loc, "__version__", None)
    except ImportError:  # pragma: no cover - this script runs from the repository
        pass
    try:
        import dlib

        v["dlib"] = dlib.__version__
    except ImportError:
        v["dlib"] = None
    return v


#: The files whose uncommitted changes make this script's figures differ from its commit's: the package and
#: the benchmark code it runs. Other helpers' uncommitted files (quality.py, fit.py, ...) are listed, not marked.
RUN_FILES = ("benchmarks/speed.py", "benchmarks/_bench.py", "benchmarks/peers.py", "benchmarks/opencv_peers.py")


def tree_state(state):
    """``git_state()`` turned into what the report says: {head, clean, clean_for_this_script, run_changes, other_changes}.

    ``clean``: nothing under classic_loc/ or benchmarks/ differs from HEAD; ``clean_for_this_script``: nothing
    this script runs does (classic_loc/ and :data:`RUN_FILES`). None without git.
    """
    if state is None:
        return None
    files = list(state.get("changed_files", []))
    run = [f for f in files if f.startswith("classic_loc") or f in RUN_FILES]
    return {"head": state.get("head"), "clean": not files, "clean_for_this_script": not run,
            "run_changes": run, "other_changes": [f for f in files if f not in run]}


def tree_note(tree):
    """One line for the report: the commit, and a warning when the figures come from a dirty tree."""
    if tree is None:
        return "commit unknown (no git)"
    if tree.get("changed_during_run"):
        return (f"commit {tree['head']} at the start ({'clean' if tree['clean_for_this_script'] else 'DIRTY'}); "
                "**the code changed during the run** (see tree_at_end in the JSON)")
    if tree["clean"]:
        return f"commit {tree['head']}, clean tree"
    if tree["clean_for_this_script"]:
        return (f"commit {tree['head']}; the code this script runs is committed (other uncommitted files: "
                f"{', '.join(tree['other_changes'])})")
    return (f"**DIRTY TREE: figures not reproducible from commit {tree['head']}** (uncommitted changes in "
            f"{', '.join(tree['run_changes'])})")


@contextlib.contextmanager
def one_template_scoring():
    """Inside it, the scan scores each template on its own, with ``score_windows``.

    That is the pre-issue-12 scoring path, kept as the reference: ``classic_loc.scan.window_scorer``
    (which stacks all templates of a level into one matrix product) is patched to return None,
    and then the scan falls back to :func:`classic_loc.features.hog.score_windows` per template.
    """
    saved = classic_loc.scan.window_scorer
    classic_loc.scan.window_scorer = lambda templates, fp: None
    try:
        yield
    finally:
        classic_loc.scan.window_scorer = saved


class Variant:
    """A loaded model scanned one way: ``detect``/``score`` as the model's, inside :func:`one_template_scoring`
    when ``one_template``; ``model`` is the Localizer (its settings decide the pyramid, step, cascade)."""

    def __init__(self, model, one_template=False):
        self.model, self.one_template = model, one_template

    def _ctx(self):
        return one_template_scoring() if self.one_template else contextlib.nullcontext()

    def detect(self, image, timings=None):
        with self._ctx():
            return self.model.detect(image, timings=timings)

    def score(self, dataset):
        with self._ctx():
            return self.model.score(dataset)


# ------------------------------------------------------------------ models
def model_path(work, name):
    return os.path.join(work, f"{name}.npz")


def ensure_model(name, data, work, quiet):
    """The trained classic_loc model ``name`` (trained into ``work`` the first time)."""
    path = model_path(work, name)
    set_name, settings = MODELS[name]
    if os.path.exists(path) and stale_settings(Localizer.load(path), settings):
        log(f"{name}: the model in {work} was trained with other settings "
            f"({stale_settings(Localizer.load(path), settings)}): retraining", quiet)
        os.remove(path)
    if not os.path.exists(path):
        log(f"training {name} on {set_name} train ({settings}) ...", quiet)
        train = load_dataset(os.path.join(data, set_name), split="train")
        model = Localizer(n_jobs=2, verbose=not quiet, **settings).fit(train)
        model.save(path)
    return Localizer.load(path)


def stale_settings(model, settings):
    """The settings of ``settings`` that ``model`` was not made with, {name: (model's, wanted)}."""
    def norm(v):
        return [norm(x) for x in v] if isinstance(v, (list, tuple)) else v

    have = model.get_params()
    return {k: (have.get(k), v) for k, v in settings.items() if norm(have.get(k)) != norm(v)}


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
    ps = model._prediction_settings()  # what detect scans with ("auto" upsample resolved to the fitted one)
    flops = 0
    for s, _, _, level in pyramid_levels(image, fp, model.templates_, ps["scale_step"], ps["upsample"]):
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
#: The "before" chain of issue 12's speed moves on caltech (all fhog, default settings otherwise), in order:
#: the pre-issue-12 path (every level's HOG from its pixels, each template scored on its own), then the
#: stacked scorer (all templates of a level in one product), then the fast feature pyramid (the default model).
BEFORE_CHAIN = ("caltech101_subset-fhog, before", "caltech101_subset-fhog, exact pyramid", "caltech101_subset-fhog")
CALTECH_REF = "dlib-3-detectors-upsample0"


def caltech_variants(work):
    """The caltech rows: name -> :class:`Variant` (the models are in ``work``; :func:`ensure_model` first)."""
    def load(name):
        return Localizer.load(model_path(work, name))

    v = {
        # a model trained with pyramid="exact", scanned exact, with the one-template scoring: the reference
        BEFORE_CHAIN[0]: Variant(load("caltech101_subset-fhog-exact").set_params(pyramid="exact"), one_template=True),
        BEFORE_CHAIN[1]: Variant(load("caltech101_subset-fhog-exact").set_params(pyramid="exact")),
        BEFORE_CHAIN[2]: Variant(load("caltech101_subset-fhog")),
        "caltech101_subset-haar": Variant(load("caltech101_subset-haar")),
        "caltech101_subset-fhog+haar": Variant(load("caltech101_subset-fhog+haar")),
        # deployment settings at prediction (no retraining): dlib's pyramid step; the cascade for Haar models
        "caltech101_subset-fhog, scale_step 1.2": Variant(load("caltech101_subset-fhog").set_params(scale_step=1.2)),
    }
    for f in ("haar", "fhog+haar"):
        v[f"caltech101_subset-{f}, cascade"] = Variant(load(f"caltech101_subset-{f}").set_params(cascade=True))
    return v


def part_caltech(args, out):
    test = load_dataset(os.path.join(args.data, "caltech101_subset"), split="test")
    for n in ("caltech101_subset-fhog", "caltech101_subset-fhog-exact", "caltech101_subset-haar",
              "caltech101_subset-fhog+haar"):
        ensure_model(n, args.data, args.work, args.quiet)
    models = caltech_variants(args.work)
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
        log(f"caltech: {n}: accuracy on the test split, stages, scoring GFLOP/s ...", args.quiet)
        metrics = m.score(test)
        stages = stage_split(m, images)
        flops = statistics.median(scoring_flops(m.model, img) for img in images[:20])
        gflops = flops / (stages["scoring"] / 1000.0) / 1e9 if stages.get("scoring") else None
        rows[n] = {"median_ms": times[n]["median_ms"], "stages_ms": stages, "accuracy": metrics["accuracy"],
                   "loc_accuracy": metrics["loc_accuracy"], "mean_iou": metrics["mean_iou"], "map50": metrics["map50"],
                   "scoring_gflops": gflops, "scoring_share_of_matmul_peak": gflops / peak if gflops else None,
                   "pyramid": m.model.pyramid, "one_template_scoring": m.one_template}
    for name in fns:
        if name.startswith("dlib"):
            rows[name] = {"median_ms": times[name]["median_ms"]}
    if CALTECH_REF in rows:
        for r in rows.values():
            r["ratio_to_dlib_upsample0"] = r["median_ms"] / rows[CALTECH_REF]["median_ms"]
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


#: Inputs of the sizes part: the same pixels in colour (RGB) and in grey (a 2-D uint8 array, OpenCV's RGB2GRAY).
INPUTS = ("colour", "grey")
FACE_PEER, PEOPLE_PEER = "dlib-frontal-face", "opencv-hog-people"


def peer_of(method):
    """The peer a sizes row is compared with: dlib's frontal face detector for our face models, OpenCV's HOG
    people detector for our people model, None for the peers themselves."""
    if method.startswith("face-"):
        return FACE_PEER
    if method.startswith("people-"):
        return PEOPLE_PEER
    return None


def peer_ratios(rows):
    """Add ``peer`` and ``ratio_to_peer`` to each row: its time over its peer's on the same size and input
    (``ratio_to_peer`` None when the peer has no row with that size and input)."""
    ref = {(r["method"], r["size"], r.get("input")): r["median_ms"] for r in rows}
    for r in rows:
        peer = peer_of(r["method"])
        if peer is None:
            continue
        t = ref.get((peer, r["size"], r.get("input")))
        r["peer"], r["ratio_to_peer"] = peer, (r["median_ms"] / t if t else None)
    return rows


def part_sizes(args, out):
    src = load_dataset(os.path.join(args.data, "pennfudan"), split="test")
    path = src[0].path
    rgb = src.image(0)
    sizes = [(320, 240), (640, 480)]
    face_names = ["face-fhog-80px-1.2", "face-haar-80px-1.2", "face-fhog+haar-80px-1.2"]
    people = "people-fhog-64x128-1.05"
    models = {n: ensure_model(n, args.data, args.work, args.quiet) for n in face_names + [people]}
    def load(name):
        return Localizer.load(model_path(args.work, name))

    # prediction settings changed on the trained models (no retraining): OpenCV's Haar steps, the cascade
    ours = {**models,
            "face-haar-80px-1.1": load("face-haar-80px-1.2").set_params(scale_step=1.1),
            "face-haar-80px-1.2, cascade": load("face-haar-80px-1.2").set_params(cascade=True),
            "face-haar-80px-1.1, cascade": load("face-haar-80px-1.2").set_params(scale_step=1.1, cascade=True),
            "face-fhog+haar-80px-1.2, cascade": load("face-fhog+haar-80px-1.2").set_params(cascade=True)}
    try:
        import dlib

        det = dlib.get_frontal_face_detector()
    except ImportError:
        det = None
    rows = []
    for size in sizes:
        colour = _sized(rgb, size)
        inputs = {"colour": colour, "grey": np.ascontiguousarray(cv2.cvtColor(colour, cv2.COLOR_RGB2GRAY))}
        fns = {}
        for kind, img in inputs.items():  # every method on both inputs, all in one interleaved run
            for n, m in ours.items():
                fns[(n, kind)] = lambda _, m=m, img=img: m.detect(img)
            if det is not None:
                fns[(FACE_PEER, kind)] = lambda _, img=img: det(img, 0)
        log(f"sizes: {size[0]}x{size[1]}: timing {len(fns)} methods x inputs x {args.repeats} ...", args.quiet)
        t = interleaved(fns, [colour], args.repeats)
        for (n, kind), v in t.items():
            row = {"size": f"{size[0]}x{size[1]}", "method": n, "input": kind, "median_ms": v["median_ms"]}
            if n in ours:
                row["stages_ms"] = stage_split(ours[n], [inputs[kind]] * 3)
            rows.append(row)
    opencv_note = None
    try:
        import peers

        cv4 = peers.time_opencv(path, sizes, repeats=args.repeats, verbose=not args.quiet)
        for r in cv4["results"]:
            sf = r["params"].get("scaleFactor")
            # opencv_peers.py feeds HOG the colour image (BGR: the same pixels) and the Haar cascade grey
            rows.append({"size": f"{r['width']}x{r['height']}",
                         "method": f"opencv-{r['detector']}" + (f"-{sf}" if sf else ""), "median_ms": r["median_ms"],
                         "input": "colour" if r["detector"] == "hog-people" else "grey",
                         "opencv": cv4.get("cv2_version")})
    except Exception as exc:  # noqa: BLE001 - the comparison is optional; say why it is missing
        opencv_note = f"OpenCV 4 comparison skipped: {type(exc).__name__}: {exc}"
        log(opencv_note, args.quiet)
    out["sizes"] = {"image": os.path.basename(path), "repeats": args.repeats, "rows": peer_ratios(rows),
                    "opencv_note": opencv_note}


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
                  part_note(c), "",
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
                      f"{c['images']} test images x {c['repeats']} runs, interleaved (every row in the same run). "
                      "Scoring GFLOP/s counts 2 x windows x template length per template and level (a dense "
                      "product), over the scoring stage's time.", "",
                  "The speed moves one at a time (fhog, default settings otherwise): "
                  f"`{BEFORE_CHAIN[0]}` is the pre-issue-12 path kept as the reference (a model trained with "
                  "`pyramid=\"exact\"`, scanned exact, each template scored on its own by `score_windows`); "
                  f"`{BEFORE_CHAIN[1]}` is the same model with all templates of a level in one matrix product "
                  f"(`WindowScorer`); `{BEFORE_CHAIN[2]}` is the default model (trained and scanned with the fast "
                  "feature pyramid). Accuracy is the shared evaluator's on the whole test split.", "",
                  "Per-stage split (ms per image, mean over the timed images, one pass with timings on; "
                  "the colour-to-grey conversion is in `pyramid`):", "",
                  "| model | " + " | ".join(STAGES) + " | sum | sum / dlib upsample 0 | "
                  + f"median ms / {BEFORE_CHAIN[0]}'s |", "|---|" + "---|" * (len(STAGES) + 3)]
        before = rows.get(BEFORE_CHAIN[0])
        for n, r in rows.items():
            if "stages_ms" in r:
                tot = sum(r["stages_ms"].get(k, 0.0) for k in STAGES)
                ref = rows.get(CALTECH_REF)
                lines.append(f"| {n} | " + " | ".join(f"{r['stages_ms'].get(k, 0):.2f}" for k in STAGES)
                             + f" | {tot:.2f} | " + (f"{tot / ref['median_ms']:.2f}" if ref else "")
                             + " | " + (f"{r['median_ms'] / before['median_ms']:.2f}" if before else "") + " |")
        lines.append("")
    if "sizes" in out:
        s = out["sizes"]
        sizes = sorted({r["size"] for r in s["rows"]}, key=_area)
        lines += ["## Same image at 320x240 and 640x480, colour and grey input (median ms, one thread)", "",
                  part_note(s), "",
                  "| method | input | " + " | ".join(sizes) + " | " + " | ".join(f"ratio to peer {z}" for z in sizes)
                  + " | peer |", "|---|---|" + "---|" * (2 * len(sizes) + 1)]
        by = {}
        for r in s["rows"]:
            by.setdefault((r["method"], r.get("input", "colour")), {})[r["size"]] = r
        for (m, kind), v in by.items():
            cells = [f"{v[z]['median_ms']:.1f}" if z in v else "" for z in sizes]
            ratios = [f"{v[z]['ratio_to_peer']:.2f}" if z in v and v[z].get("ratio_to_peer") else "" for z in sizes]
            peer = next((x.get("peer") for x in v.values() if x.get("peer")), None)
            peer = "" if peer is None else (peer + ("" if any(ratios) else " (no row on this input)"))
            lines.append(f"| {m} | {kind} | " + " | ".join(cells) + " | " + " | ".join(ratios) + f" | {peer} |")
        lines += ["", f"Image: {s.get('image')} (pennfudan test), resized with INTER_AREA; {s.get('repeats')} "
                      "runs per method, all methods and both inputs of one size interleaved in one run "
                      "(OpenCV's detectors run afterwards in their own process). Grey is OpenCV's RGB2GRAY of "
                      "the colour image, a 2-D uint8 array: dlib's frontal face detector takes it as is. "
                      "classic_loc's models compute their features on grey (`FeatureParams.prepare`): "
                      "on colour input the conversion is part of their time (in the `pyramid` stage). "
                      "Ratio to peer: the row's time over its peer's on the same size and input (dlib's "
                      "frontal face detector for the face models, OpenCV's HOG people detector for the people "
                      "model); `opencv_peers.py` always feeds that detector colour (BGR, the same pixels), so the "
                      "people model has no grey ratio. Same pyramid step as the peer: 1.2 (dlib's "
                      "pyramid_down<6>) for the face models, 1.05 for the people model."]
        if s.get("opencv_note"):
            lines += ["", s["opencv_note"]]
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
    lines.append("Machine, code and command of each part:")
    lines.append("")
    for part in PARTS:
        if part in out:
            p = out[part]
            meta = p.get("meta", {})
            load = (f"; load average (1, 5, 15 min) {meta['load_start']} at the start, {meta['load_end']} at the end"
                    if meta.get("load_start") else "")
            when = f"; {meta['finished_utc']}" if meta.get("finished_utc") else ""
            lines.append(f"- {part}: {p.get('machine', '')}{load}; {tree_note(meta.get('tree')) if meta else 'commit not recorded'}"
                         f"{when}; {', '.join(f'{k} {v}' for k, v in meta.get('versions', {}).items())}; `{p.get('command', '')}`")
    return "\n".join(lines)


def part_note(part):
    """The code line under a part's heading: its commit, and a mark when the figures come from a dirty tree."""
    meta = part.get("meta")
    return f"Measured at {tree_note(meta.get('tree'))}." if meta else "Commit not recorded."


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
    cv2.setNumThreads(1)
    for part in args.parts:
        tree, load0 = tree_state(git_state()), load_average()
        globals()[f"part_{part}"](args, out)
        tree_end = tree_state(git_state())
        out[part]["machine"] = machine_line()
        out[part]["command"] = command
        out[part]["meta"] = {"tree": tree, "tree_at_end": tree_end, "load_start": load0, "load_end": load_average(),
                             "cpu": cpu_model(), "cores": os.cpu_count(), "versions": versions(),
                             "finished_utc": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")}
        if tree and tree_end and (tree_end["head"], tree_end["run_changes"]) != (tree["head"], tree["run_changes"]):
            tree["changed_during_run"] = True  # the package was imported at the start: those are its figures
    text = report(out)
    print(text)
    atomic_write_text(os.path.join(args.out, "speed.json"), json.dumps(out, indent=2, default=float))
    atomic_write_text(os.path.join(args.out, "speed.md"), "# Speed and footprint\n\n" + text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
