"""Fast feature pyramids against exact ones: the per-level feature error and the accuracy cost on every shared set.

    python benchmarks/pyramid.py [--data ../shared/data] [--sets ...] [--seeds 0 1 2] [--images 20]
                                 [--parts error accuracy] [--n-jobs 2] [--out benchmarks/results]

``error``
    For both HOG variants (fhog, Dalal-Triggs), on ``--images`` images of each set at
    ``scale_step=1.1``: the relative L2 error ``||fast - exact|| / ||exact||`` of each approximated
    level's feature grid, by how far below its exact level it lies (the ratio ``f`` in [1, 2)), and
    the power-law exponent of the histograms (Dollar et al.'s lambda: the median of
    ``-log(mean exact / mean resampled) / log f`` over the levels). For scale, the error between two
    exact grids of one level whose resize differs only in its interpolation (area against bilinear).
``accuracy``
    Per set and seed: the default model fitted and evaluated with ``pyramid="exact"`` and with
    ``pyramid="fast"`` (everything else default), test-split metrics of the shared evaluator, and the
    predict time per test image (one thread; the two modes interleaved image by image). The table
    gives the median over seeds and the median of the per-seed differences (fast - exact): changing
    only the seed moves AP50 on the small sets by a few hundredths, so one seed says little.

Writes ``pyramid.json`` and ``pyramid.md`` to ``--out`` with the commit, whether the tree was clean,
the load averages and the versions.
"""

import argparse
import dataclasses
import glob
import json
import os
import platform
import statistics
import sys
import time

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from _bench import cpu_model, git_state, load_average  # noqa: E402

from classic_loc import Localizer, load_dataset  # noqa: E402
from classic_loc._fileio import atomic_write_text  # noqa: E402
from classic_loc.feature_pyramid import LAMBDA, cell_histograms, exact_levels, resample_cells  # noqa: E402
from classic_loc.features.fhog import fhog_grid  # noqa: E402
from classic_loc.pyramid import resize_level  # noqa: E402
from classic_loc.scan import FeatureParams, Template, pyramid_levels  # noqa: E402

SETS = ("caltech101_subset", "pennfudan", "cmu_mit_faces")
METRICS = ("accuracy", "loc_accuracy", "mean_iou", "map50", "map")
F_BINS = [(1.0, 1.25), (1.25, 1.5), (1.5, 1.75), (1.75, 2.0)]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ------------------------------------------------------------------ error
def _lambda_sample(image, fp, s0, s, pad):
    """-log(mean exact histogram / mean resampled histogram) / log f for one level ``s`` below exact ``s0``."""
    p = pad * fp.cell_size
    e_level, e_sy, e_sx = resize_level(image, s0)
    e_level = cv2.copyMakeBorder(e_level, p, p, p, p, cv2.BORDER_REPLICATE)
    level, sy, sx = resize_level(image, s)
    level = cv2.copyMakeBorder(level, p, p, p, p, cv2.BORDER_REPLICATE)
    exact = cell_histograms(level, fp)
    approx = resample_cells(cell_histograms(e_level, fp), exact.shape[:2], (e_sy / sy, e_sx / sx), fp.cell_size, p)
    f = float(np.sqrt(e_sy / sy * e_sx / sx))
    if f <= 1.0 + 1e-9 or approx.mean() <= 0:
        return None
    return float(-np.log(exact.mean() / approx.mean()) / np.log(f))


def part_error(args):
    rows, lambdas, interp = [], {}, []
    t = Template((12, 6), None, context=1)
    for variant in ("felzenszwalb", "dalal-triggs"):
        fp = FeatureParams(variant=variant)
        for set_name in args.sets:
            files = sorted(glob.glob(os.path.join(args.data, set_name, "JPEGImages", "*.jpg")))
            files = files[:: max(1, len(files) // args.images)][:args.images]
            by_bin = {b: [] for b in F_BINS}
            lam = []
            for path in files:
                image = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
                exact = list(pyramid_levels(image, fp, [t], 1.1))
                fast = list(pyramid_levels(image, dataclasses.replace(fp, pyramid="fast"), [t], 1.1))
                scales = [e[0] for e in exact]
                src = exact_levels(scales)
                for i, (e, a) in enumerate(zip(exact, fast)):
                    if src[i] == i:
                        continue
                    f = scales[src[i]] / scales[i]
                    err = float(np.linalg.norm(a[3].grid - e[3].grid) / np.linalg.norm(e[3].grid))
                    for lo, hi in F_BINS:
                        if lo <= f < hi:
                            by_bin[(lo, hi)].append(err)
                    if i % 3 == 1:
                        sample = _lambda_sample(image, fp, scales[src[i]], scales[i], 1)
                        if sample is not None:
                            lam.append(sample)
                if variant == "felzenszwalb":
                    for s in (1 / 1.1, 1 / 1.5):
                        size = (int(round(image.shape[1] * s)), int(round(image.shape[0] * s)))
                        g1 = fhog_grid(cv2.resize(image, size, interpolation=cv2.INTER_AREA))
                        g2 = fhog_grid(cv2.resize(image, size, interpolation=cv2.INTER_LINEAR))
                        interp.append(float(np.linalg.norm(g1 - g2) / np.linalg.norm(g1)))
            rows.append({"variant": variant, "set": set_name, "images": len(files),
                         "error_by_f": {f"{lo:.2f}-{hi:.2f}": (round(statistics.mean(v), 4) if v else None)
                                        for (lo, hi), v in by_bin.items()},
                         "levels": sum(len(v) for v in by_bin.values()),
                         "lambda_median": round(statistics.median(lam), 4) if lam else None})
            lambdas.setdefault(variant, []).extend(lam)
            log(f"error: {variant} {set_name}: {rows[-1]['error_by_f']} lambda {rows[-1]['lambda_median']}")
    return {"rows": rows, "lambda": {v: round(statistics.median(x), 4) for v, x in lambdas.items() if x},
            "lambda_used": LAMBDA, "interpolation_error_exact": {"median": round(statistics.median(interp), 4),
                                                                 "min": round(min(interp), 4),
                                                                 "max": round(max(interp), 4)} if interp else None}


# ------------------------------------------------------------------ accuracy
def _time_modes(models, images, repeats=3):
    per = {m: [[] for _ in images] for m in models}
    for m in models.values():
        m.detect(images[0])
    for _ in range(repeats):
        for i, img in enumerate(images):
            for name, m in models.items():
                t0 = time.perf_counter()
                m.detect(img)
                per[name][i].append((time.perf_counter() - t0) * 1000)
    return {name: statistics.median(statistics.median(x) for x in v) for name, v in per.items()}


def part_accuracy(args):
    runs = []
    for set_name in args.sets:
        root = os.path.join(args.data, set_name)
        train, test = load_dataset(root, split="train"), load_dataset(root, split="test")
        idx = list(range(0, len(test), max(1, len(test) // 40)))[:40]
        images = [test.image(i) for i in idx]
        for seed in args.seeds:
            models, row = {}, {"set": set_name, "seed": seed}
            for mode in ("exact", "fast"):
                log(f"accuracy: {set_name} seed {seed} pyramid={mode}: fitting ...")
                t0 = time.perf_counter()
                m = Localizer(pyramid=mode, random_state=seed, n_jobs=args.n_jobs).fit(train)
                row[f"fit_s_{mode}"] = round(time.perf_counter() - t0, 1)
                r = m.score(test)
                row[mode] = {k: r[k] for k in METRICS}
                models[mode] = m
            ms = _time_modes(models, images)
            row["ms_exact"], row["ms_fast"] = round(ms["exact"], 3), round(ms["fast"], 3)
            runs.append(row)
            log(f"  {row}")
    summary = []
    for set_name in args.sets:
        rs = [r for r in runs if r["set"] == set_name]
        if not rs:
            continue
        s = {"set": set_name, "seeds": [r["seed"] for r in rs]}
        for k in METRICS:
            s[f"{k}_exact"] = statistics.median(r["exact"][k] for r in rs)
            s[f"{k}_fast"] = statistics.median(r["fast"][k] for r in rs)
            s[f"{k}_diff"] = statistics.median(r["fast"][k] - r["exact"][k] for r in rs)
            s[f"{k}_diffs"] = [round(r["fast"][k] - r["exact"][k], 4) for r in rs]
        s["ms_exact"] = statistics.median(r["ms_exact"] for r in rs)
        s["ms_fast"] = statistics.median(r["ms_fast"] for r in rs)
        s["time_ratio"] = statistics.median(r["ms_fast"] / r["ms_exact"] for r in rs)
        summary.append(s)
    return {"runs": runs, "summary": summary}


# ------------------------------------------------------------------ report
def markdown(out):
    g = out["git"] or {}
    dirty = bool(g.get("changed_files"))
    lines = ["# Fast feature pyramids against exact ones", "",
             f"`python benchmarks/pyramid.py {' '.join(out['argv'])}` at commit {g.get('head')} "
             f"({'DIRTY tree: ' + ', '.join(g['changed_files']) if dirty else 'clean tree'}); "
             f"{out['machine']}; load average {out['load_start']} at the start, {out['load_end']} at the end.", ""]
    if dirty:
        lines += ["**These figures come from a tree with uncommitted changes.**", ""]
    if "accuracy" in out:
        lines += ["## Accuracy cost (default settings; medians over seeds; diff = median of fast - exact per seed)", "",
                  "| set | seeds | AP50 exact | AP50 fast | diff | mAP diff | accuracy diff | loc_accuracy diff | "
                  "mean_iou diff | ms/img exact | ms/img fast | time fast/exact |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for s in out["accuracy"]["summary"]:
            lines.append(f"| {s['set']} | {len(s['seeds'])} | {s['map50_exact']:.3f} | {s['map50_fast']:.3f} | "
                         f"{s['map50_diff']:+.3f} {s['map50_diffs']} | {s['map_diff']:+.3f} | {s['accuracy_diff']:+.3f} | "
                         f"{s['loc_accuracy_diff']:+.3f} | {s['mean_iou_diff']:+.3f} | {s['ms_exact']:.2f} | "
                         f"{s['ms_fast']:.2f} | {s['time_ratio']:.2f} |")
        lines += [""]
    if "error" in out:
        e = out["error"]
        lines += ["## Per-level feature error (relative L2 against exact features, scale_step 1.1)", "",
                  "| variant | set | images | levels | " + " | ".join(f"f {b}" for b in e["rows"][0]["error_by_f"])
                  + " | lambda (median) |", "|---|---|---|---|" + "---|" * (len(F_BINS) + 1)]
        for r in e["rows"]:
            cells = " | ".join("-" if v is None else f"{v:.3f}" for v in r["error_by_f"].values())
            lines.append(f"| {r['variant']} | {r['set']} | {r['images']} | {r['levels']} | {cells} | "
                         f"{r['lambda_median']} |")
        ie = e.get("interpolation_error_exact")
        lines += ["", f"Measured lambda (median over levels): {e['lambda']}; the package uses {e['lambda_used']} "
                  "(the block normalisation divides the histograms' scale out, up to its regulariser)."]
        if ie:
            lines += [f"For scale: two exact FHOG grids of one level whose resize differs only in its interpolation "
                      f"(area against bilinear) differ by {ie['median']:.3f} (median; {ie['min']:.3f}-{ie['max']:.3f})."]
        lines += [""]
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.environ.get("CLASSIC_LOC_SHARED_DATA",
                                                     os.path.join(HERE, "..", "..", "shared", "data")),
                    help="folder holding the shared data sets (default: ../shared/data)")
    ap.add_argument("--sets", nargs="+", default=list(SETS), choices=SETS, help="data sets (default: all three)")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="random_state values (default 0 1 2)")
    ap.add_argument("--images", type=int, default=20, help="images per set for the error part (default 20)")
    ap.add_argument("--parts", nargs="+", default=["error", "accuracy"], choices=["error", "accuracy"],
                    help="what to run (default: both)")
    ap.add_argument("--n-jobs", type=int, default=2, help="processes for fitting (default 2)")
    ap.add_argument("--out", default=os.path.join(HERE, "results"), help="folder for pyramid.json and pyramid.md")
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    out = {"argv": sys.argv[1:] if argv is None else list(argv), "git": git_state(), "load_start": load_average(),
           "machine": f"{cpu_model()}, {os.cpu_count()} cores; Python {platform.python_version()}, numpy "
                      f"{np.__version__}, OpenCV {cv2.__version__}"}
    if "error" in args.parts:
        out["error"] = part_error(args)
    if "accuracy" in args.parts:
        out["accuracy"] = part_accuracy(args)
    out["load_end"] = load_average()
    os.makedirs(args.out, exist_ok=True)
    atomic_write_text(os.path.join(args.out, "pyramid.json"), json.dumps(out, indent=1) + "\n")
    text = markdown(out)
    atomic_write_text(os.path.join(args.out, "pyramid.md"), text + "\n")
    print(text)


if __name__ == "__main__":
    main()
