"""The lighting correction (``preprocess``: none, equalize, clahe) on every shared data set.

    python benchmarks/preprocess.py [--data ../shared/data] [--out benchmarks/results] [--n-jobs 2]

Per data set and method: the default Localizer with that ``preprocess`` (``random_state=0``), fitted on
the train split and scored on the test split by the shared evaluator (AP50, mAP, loc_accuracy,
mean IoU), its fit time, and its predict time per test image (median, one BLAS thread, the
methods' models timed interleaved on the same images). Writes ``preprocess.json`` and
``preprocess.md`` with the commit, whether the tree was clean and the load average.
"""

import argparse
import json
import os
import statistics
import sys
import time

if __name__ == "__main__":  # one BLAS thread for the timed predictions (the fits run their own processes)
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_var] = "1"

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
from _bench import git_state, load_average, machine  # noqa: E402

from classic_loc import Localizer, load_dataset  # noqa: E402
from classic_loc._fileio import atomic_write_text  # noqa: E402

SETS = ("caltech101_subset", "pennfudan", "cmu_mit_faces")
METHODS = ("none", "equalize", "clahe")
METRICS = ("map50", "map", "loc_accuracy", "mean_iou")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.environ.get("CLASSIC_LOC_SHARED_DATA",
                                                     os.path.join(HERE, "..", "..", "shared", "data")))
    ap.add_argument("--out", default=os.path.join(HERE, "results"), help="folder for preprocess.json and .md")
    ap.add_argument("--n-jobs", type=int, default=2, help="processes for each fit (default 2)")
    ap.add_argument("--images", type=int, default=30, help="test images timed per set (default 30)")
    args = ap.parse_args(argv)
    tree, load0 = git_state(), load_average()
    rows = []
    for set_name in SETS:
        train = load_dataset(os.path.join(args.data, set_name), split="train")
        test = load_dataset(os.path.join(args.data, set_name), split="test")
        models = {}
        for method in METHODS:
            print(f"{set_name}: fitting with preprocess={method} ...", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            model = Localizer(preprocess=method, random_state=0, n_jobs=args.n_jobs).fit(train)
            fit_s = time.perf_counter() - t0
            scores = model.score(test)
            models[method] = model.set_params(n_jobs=1)
            rows.append({"set": set_name, "preprocess": method, "fit_s": fit_s, **{k: scores[k] for k in METRICS}})
        images = [test.image(i) for i in range(min(args.images, len(test)))]
        times = {m: [] for m in METHODS}
        for image in images:
            for m, model in models.items():
                t0 = time.perf_counter()
                model.detect(image)
                times[m].append((time.perf_counter() - t0) * 1000)
        for row in rows:
            if row["set"] == set_name:
                row["ms_per_image"] = statistics.median(times[row["preprocess"]])
    meta = {"commit": tree and tree["head"], "clean_tree": bool(tree) and not tree["changed_files"],
            "load_average": [load0, load_average()], "machine": machine(),
            "command": "python benchmarks/preprocess.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    os.makedirs(args.out, exist_ok=True)
    atomic_write_text(os.path.join(args.out, "preprocess.json"), json.dumps({"rows": rows, "meta": meta}, indent=2))
    lines = ["# Lighting correction (preprocess) on the shared data sets", "",
             f"Commit {meta['commit']}{'' if meta['clean_tree'] else ' (uncommitted changes)'}, load average "
             f"{meta['load_average'][0]} at the start; default settings otherwise, random_state=0; test splits, "
             "the shared evaluator; predict time: median per test image, one thread, the three models interleaved.",
             "", "| set | preprocess | AP50 | mAP | loc_accuracy | mean IoU | ms/image | fit s |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['set']} | {r['preprocess']} | {r['map50']:.3f} | {r['map']:.3f} | {r['loc_accuracy']:.3f} | "
                     f"{r['mean_iou']:.3f} | {r['ms_per_image']:.1f} | {r['fit_s']:.0f} |")
    atomic_write_text(os.path.join(args.out, "preprocess.md"), "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
