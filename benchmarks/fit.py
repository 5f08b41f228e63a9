"""Peak memory and wall time of a fit at default settings, with the test metrics next to them.

    python benchmarks/fit.py [--sets caltech101_subset pennfudan cmu_mit_faces demo] [--n-jobs 2]
                             [--data ../shared/data] [--out benchmarks/results] [--interval 0.05]
                             [--reference COMMIT]

For each set, a fresh process fits ``Localizer(random_state=0, n_jobs=N)`` (defaults otherwise) on
the set's ``train`` split and evaluates it on ``test`` with the package's evaluator
(:func:`classic_loc.workflow.evaluate_model`). This process samples, every ``--interval`` seconds,
the resident memory (``VmRSS`` of ``/proc/<pid>/status``) of the fitting process and of all its
descendants (found through ``/proc/<pid>/task/*/children``), from the start of ``fit`` until it
returns: the largest sum is the **peak tree RSS**. Pages shared between processes (the
interpreter, libraries, copy-on-write pages of the forked workers) count once per process, so
the sum is an upper bound of the memory the tree holds. The fitting process's own peak
(``VmHWM`` read right after ``fit``, and the largest ``VmRSS`` sampled) is reported as well, and
so is the peak the fit report itself gives (``fit_report_["peak_memory_mb"]``, sampled inside
the process).

With ``--reference COMMIT``, the package as it was at that commit (``git archive`` into a
temporary folder, put first on ``PYTHONPATH`` of the fitting process) is fitted too, set by set
in the same run just before the current tree, and each row gets its ratios to the reference's
(peak tree memory, fit time).

``demo`` is the package's embedded demo data set (generated on first use). The target of issue
12: peak tree RSS <= 1 GB on every shared set at default settings with 2 processes.
Writes ``fit.json`` and ``fit.md`` to ``--out`` (commit, clean-tree flag, load averages, versions).
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)  # the shared helpers, _bench.py
from _bench import cpu_model, git_state, load_average  # noqa: E402

REPO = os.path.dirname(HERE)
DEFAULT_DATA = os.environ.get("CLASSIC_LOC_SHARED_DATA", os.path.join(REPO, "..", "shared", "data"))
SETS = ("caltech101_subset", "pennfudan", "cmu_mit_faces", "demo")
SHARED = ("caltech101_subset", "pennfudan", "cmu_mit_faces")
TARGET_MB = 1024.0
METRICS = ("accuracy", "loc_accuracy", "mean_iou", "map50")


# ------------------------------------------------------------------ memory of a process tree
def tree_rss_mb(pid):
    """(total, own) resident MB of ``pid`` and all its descendants, and of ``pid`` alone (the fit's own sampler)."""
    from classic_loc.training.fit import rss_bytes, tree_rss_bytes

    return (tree_rss_bytes(pid) or 0) / 2**20, (rss_bytes(pid) or 0) / 2**20


# ------------------------------------------------------------------ the fitting process
def _vm_hwm_mb():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return None


def worker(job_path, out_path):
    """Load, mark the fit's start, fit, mark its end, evaluate; write the figures as JSON."""
    with open(job_path) as fh:
        job = json.load(fh)
    from classic_loc import Localizer, load_dataset
    from classic_loc.workflow import evaluate_model

    root = job["root"]
    train, test = load_dataset(root, split="train"), load_dataset(root, split="test")
    model = Localizer(random_state=0, n_jobs=job["n_jobs"])
    before = _vm_hwm_mb()
    open(job["start_marker"], "w").close()
    t0 = time.perf_counter()
    model.fit(train)
    fit_s = time.perf_counter() - t0
    main_hwm = _vm_hwm_mb()
    open(job["end_marker"], "w").close()
    ev = evaluate_model(model, test)
    rep = model.fit_report_
    out = {"fit_seconds": round(fit_s, 2), "main_vm_hwm_mb": round(main_hwm, 1),
           "main_vm_hwm_before_fit_mb": round(before, 1),
           "report_peak_memory_mb": rep.get("peak_memory_mb"),
           "report_memory": {k: v for k, v in rep.items() if "memory" in k and k != "peak_memory_mb"},
           "train_images": len(train), "test_images": len(test),
           "n_positives": rep.get("n_positives"), "n_negatives": rep.get("n_negatives"),
           "metrics": {k: ev["metrics"][k] for k in METRICS},
           "predict_ms_per_image": round(ev["predict_ms_per_image"], 2)}
    with open(out_path, "w") as fh:
        json.dump(out, fh)


def run_set(name, data, n_jobs, interval, package=None, label="current tree"):
    """Fit one set in a fresh process and sample its tree's memory; returns the row.

    ``package``: a folder holding another ``classic_loc`` to fit with (first on PYTHONPATH).
    """
    with tempfile.TemporaryDirectory(prefix="bench_fit_") as tmp:
        if name == "demo":  # found by the current package (a reference's may not carry the demo generator)
            from classic_loc._demo import demo_path

            root = demo_path()
        else:
            root = os.path.join(os.path.abspath(data), name)
        job = {"set": name, "root": root, "n_jobs": n_jobs,
               "start_marker": os.path.join(tmp, "start"), "end_marker": os.path.join(tmp, "end")}
        job_path, out_path = os.path.join(tmp, "job.json"), os.path.join(tmp, "out.json")
        with open(job_path, "w") as fh:
            json.dump(job, fh)
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        if package:
            env["PYTHONPATH"] = package + os.pathsep + env.get("PYTHONPATH", "")
        load0 = load_average()
        proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker-job", job_path,
                                 "--worker-out", out_path], env=env, stderr=subprocess.PIPE, text=True)
        peak, peak_main, main_at_peak, samples, fitting = 0.0, 0.0, 0.0, 0, False
        while proc.poll() is None:
            if not fitting and os.path.exists(job["start_marker"]):
                fitting = True
            if fitting:
                total, own = tree_rss_mb(proc.pid)
                samples += 1
                if total > peak:
                    peak, main_at_peak = total, own
                peak_main = max(peak_main, own)
                if os.path.exists(job["end_marker"]):
                    fitting = False
                    job["start_marker"] = os.path.join(tmp, "never")  # sample no more
            time.sleep(interval)
        err = proc.stderr.read()
        if proc.returncode != 0:
            raise RuntimeError(f"the fit of {name} failed:\n{err.strip()[-3000:]}")
        with open(out_path) as fh:
            res = json.load(fh)
    return {"set": name, "code": label, "n_jobs": n_jobs, "peak_tree_mb": round(peak, 1), "main_at_tree_peak_mb": round(main_at_peak, 1),
            "workers_at_tree_peak_mb": round(peak - main_at_peak, 1), "peak_main_sampled_mb": round(peak_main, 1),
            "samples": samples, "interval_s": interval, "load_before": load0, "load_after": load_average(),
            "target_mb": TARGET_MB if name in SHARED else None,
            "target_met": (peak <= TARGET_MB) if name in SHARED else None, **res}


def machine_line():
    import cv2
    import numpy as np
    import sklearn

    import classic_loc

    return (f"{cpu_model()}, {os.cpu_count()} cores; Python {platform.python_version()}, numpy {np.__version__}, "
            f"OpenCV {cv2.__version__}, scikit-learn {sklearn.__version__}, classic_loc {classic_loc.__version__}")


def ratio(row):
    q = row.get("ratio_to_reference")
    return f"{q['peak_tree']:.3f}, {q['fit_seconds']:.2f}" if q else "-"


def table(rows):
    head = ("| set | code | train images | peak tree MB (main + workers at peak) | main peak MB (VmHWM) | fit report MB "
            "| fit s | x reference (memory, time) | accuracy | loc_accuracy | mean IoU | AP50 | load before / after |")
    lines = [head, "|" + "---|" * 13]
    for r in rows:
        m = r["metrics"]
        rep = r["report_peak_memory_mb"]
        lines.append(f"| {r['set']} | {r['code']} | {r['train_images']} | {r['peak_tree_mb']:.0f} ({r['main_at_tree_peak_mb']:.0f} + "
                     f"{r['workers_at_tree_peak_mb']:.0f}) | {r['main_vm_hwm_mb']:.0f} | "
                     f"{'-' if rep is None else f'{rep:.0f}'} | {r['fit_seconds']:.1f} | "
                     f"{ratio(r)} | {m['accuracy']:.3f} | "
                     f"{m['loc_accuracy']:.3f} | {m['mean_iou']:.3f} | {m['map50']:.3f} | "
                     f"{' '.join(map(str, r['load_before'] or []))} / {' '.join(map(str, r['load_after'] or []))} |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", nargs="+", default=list(SETS), choices=SETS)
    ap.add_argument("--n-jobs", type=int, default=2, help="processes of the fit (default 2)")
    ap.add_argument("--data", default=DEFAULT_DATA, help="folder of the shared data sets")
    ap.add_argument("--out", default=os.path.join(HERE, "results"), help="folder for fit.json and fit.md")
    ap.add_argument("--interval", type=float, default=0.05, help="seconds between memory samples")
    ap.add_argument("--tag", default="fit", help="file name stem of the results (default fit)")
    ap.add_argument("--reference", help="a commit to fit too, set by set in the same run (the before figures)")
    ap.add_argument("--dlib", action="store_true",
                    help="also train dlib's detectors (benchmarks/peers.py, 2 threads) on each set, timed in the same run")
    ap.add_argument("--worker-job", help=argparse.SUPPRESS)
    ap.add_argument("--worker-out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker_job:
        worker(args.worker_job, args.worker_out)
        return 0
    state = git_state()
    rows = []
    ref_dir = tempfile.TemporaryDirectory(prefix="bench_fit_ref_") if args.reference else None
    codes = [(None, "current tree")]
    if ref_dir:
        ref = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", args.reference], capture_output=True,
                             text=True, check=True).stdout.strip()
        archive = subprocess.run(["git", "-C", REPO, "archive", ref, "classic_loc"], capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", ref_dir.name], input=archive.stdout, check=True)
        codes.insert(0, (ref_dir.name, f"reference {ref}"))
    for name in args.sets:
        for package, label in codes:
            print(f"[fit] {name} ({label}): fitting with n_jobs={args.n_jobs} ...", file=sys.stderr, flush=True)
            row = run_set(name, args.data, args.n_jobs, args.interval, package, label)
            if package is None and ref_dir:
                before = rows[-1]
                row["ratio_to_reference"] = {"peak_tree": round(row["peak_tree_mb"] / before["peak_tree_mb"], 3),
                                             "fit_seconds": round(row["fit_seconds"] / before["fit_seconds"], 3)}
            rows.append(row)
            print(f"[fit] {name} ({label}): peak tree {row['peak_tree_mb']:.0f} MB (main "
                  f"{row['main_at_tree_peak_mb']:.0f}), main VmHWM {row['main_vm_hwm_mb']:.0f} MB, fit "
                  f"{row['fit_seconds']:.1f} s, metrics {row['metrics']}", file=sys.stderr, flush=True)
    if ref_dir:
        ref_dir.cleanup()
    dlib_rows = []
    if args.dlib:
        import peers

        for name in (n for n in args.sets if n in SHARED):
            ours = next(r for r in rows if r["set"] == name and r["code"] == "current tree")
            print(f"[fit] {name}: training dlib's detectors (peers.py) ...", file=sys.stderr, flush=True)
            load0 = load_average()
            with tempfile.TemporaryDirectory(prefix="bench_fit_dlib_") as tmp:
                t0 = time.perf_counter()
                fig = peers.run(name, "dlib", args.data, tmp, verbose=False)
                wall = time.perf_counter() - t0
            if fig is None:
                continue
            dlib_rows.append({"set": name, "dlib_fit_seconds": fig["fit_seconds"], "dlib_wall_seconds": round(wall, 1),
                              "dlib_threads": fig["settings"].get("num_threads"), "ours_fit_seconds": ours["fit_seconds"],
                              "ours_n_jobs": args.n_jobs, "ratio": round(ours["fit_seconds"] / fig["fit_seconds"], 3),
                              "load_before": load0, "load_after": load_average()})
    text = table(rows)
    if dlib_rows:
        text += ("\n\nFit time against dlib's detectors trained in the same run (`peers.py`: one "
                 "`train_simple_object_detector` per class, 2 threads):\n\n| set | ours s (n_jobs) | dlib s (threads) | "
                 "ours / dlib | load before / after |\n|---|---|---|---|---|\n")
        text += "\n".join(f"| {d['set']} | {d['ours_fit_seconds']:.1f} ({d['ours_n_jobs']}) | {d['dlib_fit_seconds']:.1f} "
                           f"({d['dlib_threads']}) | {d['ratio']:.2f} | {' '.join(map(str, d['load_before'] or []))} / "
                           f"{' '.join(map(str, d['load_after'] or []))} |" for d in dlib_rows)
    machine = machine_line()
    clean = state is not None and not state["changed_files"]
    note = (f"Commit {state['head'] if state else '?'}, " + ("clean tree" if clean else
            f"DIRTY tree ({', '.join(state['changed_files']) if state else 'no git'})") +
            f". Machine: {machine}. Sampled every {args.interval} s; peak tree = largest sum of VmRSS over "
            "the fitting process and its descendants during fit (shared pages count once per process). "
            f"Target: <= {TARGET_MB:.0f} MB on every shared set.")
    print(text)
    print("\n" + note)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, f"{args.tag}.json"), "w") as fh:
        json.dump({"git": state, "clean_tree": clean, "machine": machine, "n_jobs": args.n_jobs,
                   "reference": args.reference, "rows": rows, "dlib": dlib_rows}, fh, indent=2)
    with open(os.path.join(args.out, f"{args.tag}.md"), "w") as fh:
        fh.write(text + "\n\n" + note + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
