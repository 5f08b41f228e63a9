"""A new user's first run: ``python -m classic_loc fit`` with no arguments, as on a fresh machine.

    python benchmarks/first_run.py [--repeat 3] [--out benchmarks/results]

Each repeat runs the README's main job in a fresh empty folder with an empty demo-data cache
(``CLASSIC_LOC_DATA`` set to a new folder, so the demo data set is generated on the spot, as the
first time on a new machine), once as the command line runs it by default (every core) and once
with ``--n-jobs 1`` (the reference, in the same repeat: one process). For each it measures the
wall time of the whole command, the peak resident memory of its whole process tree (the sum of
``VmRSS`` over the command and its worker processes, sampled every 20 ms) and reads the demo
metrics from the run folder's report.json. Prints a table of medians, with the ratio of the default
to the reference, and writes ``first_run.json`` and ``first_run.md`` to ``--out``, with the commit,
whether the tree was clean, the load average at the start and the end, the machine and versions.

The targets (a quick main job): at most 60 s of wall time on 2 cores and 1 GB of peak memory over
the process tree.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)  # the shared helpers, _bench.py
from _bench import git_state, load_average, machine  # noqa: E402

from classic_loc._fileio import atomic_write_text  # noqa: E402
from classic_loc.training.fit import tree_rss_bytes  # noqa: E402

TARGET_SECONDS, TARGET_MB = 60.0, 1024.0
METRICS = ("accuracy", "loc_accuracy", "mean_iou", "map50", "map")
VARIANTS = (("default (every core)", []), ("reference: --n-jobs 1", ["--n-jobs", "1"]))


def run_once(extra, sample_seconds=0.02):
    """One main job in a fresh folder with an empty demo cache: wall s, peak tree MB, metrics, stdout."""
    work = tempfile.mkdtemp(prefix="classic-loc-first-run-")
    try:
        env = dict(os.environ, CLASSIC_LOC_DATA=os.path.join(work, "cache"))
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env.pop(var, None)  # as a user's shell has them: the command line sets its own
        peak = [0]
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "classic_loc", "fit", *extra], cwd=work, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        done = threading.Event()

        def sample():
            while not done.is_set():
                rss = tree_rss_bytes(proc.pid)
                peak[0] = max(peak[0], rss or 0)
                done.wait(sample_seconds)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        out = proc.communicate()[0]
        wall = time.perf_counter() - t0
        done.set()
        sampler.join()
        if proc.returncode != 0:
            raise SystemExit(f"python -m classic_loc fit {' '.join(extra)} exited {proc.returncode}")
        with open(os.path.join(work, "runs", "fit", "report.json")) as fh:
            report = json.load(fh)
        return {"wall_s": round(wall, 2), "peak_tree_mb": round(peak[0] / 2**20, 1),
                "fit_s": report["fit_seconds"], "fit_peak_mb": report["training"].get("peak_memory_mb"),
                "upsample": report["training"].get("upsample"),
                "metrics": {k: report["metrics"][k] for k in METRICS}, "stdout": out}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3, help="runs of each variant, interleaved (default 3)")
    ap.add_argument("--out", default=os.path.join(HERE, "results"), help="folder for first_run.json and .md")
    args = ap.parse_args(argv)
    state, load_start = git_state(), load_average()
    runs = {name: [] for name, _ in VARIANTS}
    for i in range(args.repeat):
        for name, extra in VARIANTS:
            r = run_once(extra)
            runs[name].append(r)
            print(f"[{i + 1}/{args.repeat}] {name}: {r['wall_s']:.1f} s, peak {r['peak_tree_mb']:.0f} MB, "
                  + ", ".join(f"{k} {r['metrics'][k]:.3f}" for k in METRICS), file=sys.stderr)
    load_end = load_average()
    rows = {}
    for name, _ in VARIANTS:
        rs = runs[name]
        rows[name] = {"wall_s": statistics.median(r["wall_s"] for r in rs),
                      "peak_tree_mb": statistics.median(r["peak_tree_mb"] for r in rs),
                      "fit_s": statistics.median(r["fit_s"] for r in rs),
                      "metrics": rs[0]["metrics"], "same_metrics_every_run": all(r["metrics"] == rs[0]["metrics"]
                                                                                  for r in rs),
                      "upsample": rs[0]["upsample"], "walls": [r["wall_s"] for r in rs],
                      "peaks": [r["peak_tree_mb"] for r in rs]}
    default, ref = rows[VARIANTS[0][0]], rows[VARIANTS[1][0]]
    clean = state is not None and not state["changed_files"]
    result = {"commit": state and state["head"], "clean": clean, "changed_files": state and state["changed_files"],
              "load_start": load_start, "load_end": load_end, "machine": machine(), "cores": os.cpu_count(),
              "repeat": args.repeat, "rows": rows, "ratio_wall_default_to_reference": default["wall_s"] / ref["wall_s"],
              "targets": {"wall_s": TARGET_SECONDS, "peak_tree_mb": TARGET_MB},
              "stdout_default": runs[VARIANTS[0][0]][-1]["stdout"]}
    lines = ["# First run: `python -m classic_loc fit` on a fresh machine", "",
             f"Commit {result['commit']}, {'clean tree' if clean else 'DIRTY tree (figures not from committed code)'}; "
             f"load average {load_start} at the start, {load_end} at the end; {result['machine']}. "
             f"Medians of {args.repeat} interleaved runs, each in a new folder with an empty demo cache (the demo "
             "data set is generated in the run).", "",
             "| variant | wall s | peak MB (process tree) | fit s | upsample | accuracy | loc_accuracy | mean IoU | "
             "mAP50 | mAP |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, row in rows.items():
        m = row["metrics"]
        lines.append(f"| {name} | {row['wall_s']:.1f} | {row['peak_tree_mb']:.0f} | {row['fit_s']:.1f} | "
                     f"{row['upsample']:.2f} | " + " | ".join(f"{m[k]:.3f}" for k in METRICS) + " |")
    lines += ["", f"Default against the reference (wall time, same run): {result['ratio_wall_default_to_reference']:.2f}x. "
              f"Targets: wall <= {TARGET_SECONDS:.0f} s ({'met' if default['wall_s'] <= TARGET_SECONDS else 'NOT met'}), "
              f"peak <= {TARGET_MB:.0f} MB ({'met' if default['peak_tree_mb'] <= TARGET_MB else 'NOT met'}).", "",
              "The summary the default run printed:", "", "```text", result["stdout_default"].rstrip(), "```", ""]
    os.makedirs(args.out, exist_ok=True)
    atomic_write_text(os.path.join(args.out, "first_run.json"), json.dumps(result, indent=2) + "\n")
    atomic_write_text(os.path.join(args.out, "first_run.md"), "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
