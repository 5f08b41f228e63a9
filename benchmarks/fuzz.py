"""Fuzz every reader of user input: annotation formats, prediction files, model files.

    python benchmarks/fuzz.py [--examples 10000] [--targets voc coco ...] [--seed 0] [--out benchmarks/results]

The inputs come from the hypothesis strategies the tests use (``tests/fuzz_*.py``: each defines
``TARGETS = {name: (strategy, run)}``), here with many more examples. ``run(example, workdir)``
writes one input into an empty folder and reads it with the project's reader. Each example ends in
one of three ways:

- ``valid``: the reader returned a result;
- ``refused``: it raised the project's own error (:class:`classic_loc.errors.DataError` or a
  subclass), whose message is one line;
- ``crash``: any other exception, or a refusal whose message is not one line.

The target is 0 crashes for each reader. An example that takes longer than ``--slow`` seconds is
listed as slow (a hang would show there). Prints a table and writes ``fuzz.json`` and ``fuzz.md``
(with the commit, whether the tree was clean, the machine and the load average) to ``--out``.
"""

import argparse
import glob
import importlib
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
import warnings
from collections import Counter
from pathlib import Path

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
TESTS = os.path.join(REPO, "tests")
for _p in (HERE, TESTS):
    if _p not in sys.path:
        sys.path.insert(0, _p)

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from _bench import git_state, load_average, machine  # noqa: E402


def load_targets():
    """Every ``TARGETS`` entry of ``tests/fuzz_*.py``: name -> (module, strategy, run)."""
    targets = {}
    for path in sorted(glob.glob(os.path.join(TESTS, "fuzz_*.py"))):
        module = importlib.import_module(os.path.splitext(os.path.basename(path))[0])
        for name, (strategy, run) in module.TARGETS.items():
            if name in targets:
                raise SystemExit(f"fuzz target {name!r} is defined twice ({targets[name][0]} and {module.__name__})")
            targets[name] = (module.__name__, strategy, run)
    return targets


def classify(run, example, workdir):
    """``("valid" | "refused" | "crash", detail)`` of one example."""
    from classic_loc.errors import DataError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run(example, workdir)
    except DataError as err:
        message = str(err)
        if "\n" in message or not message.strip():
            return "crash", f"DataError whose message is not one line: {message[:300]!r}"
        return "refused", type(err).__name__
    except Exception as exc:  # noqa: BLE001 - counting every other exception is the point
        tb = traceback.extract_tb(exc.__traceback__)
        where = f"{os.path.relpath(tb[-1].filename, REPO)}:{tb[-1].lineno}" if tb else "?"
        return "crash", f"{type(exc).__name__} at {where}: {str(exc)[:200]}"
    return "valid", ""


def fuzz_target(name, strategy, run, examples, seed, slow_seconds, progress=True):
    """Run ``examples`` generated inputs through ``run``; return the counts and the first crashes."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hyp_seed

    counts, crashes, slow, times = Counter(), [], [], []
    base = tempfile.mkdtemp(prefix=f"fuzz_{name}_")
    state = {"n": 0}

    @hyp_seed(seed)
    @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def one(example):
        state["n"] += 1
        workdir = Path(base) / f"ex{state['n']}"
        workdir.mkdir()
        t0 = time.perf_counter()
        outcome, detail = classify(run, example, workdir)
        dt = time.perf_counter() - t0
        shutil.rmtree(workdir, ignore_errors=True)
        times.append(dt)
        counts[outcome] += 1
        if outcome == "crash" and len(crashes) < 20:
            crashes.append({"detail": detail, "example": repr(example)[:500]})
        if dt > slow_seconds and len(slow) < 20:
            slow.append({"seconds": round(dt, 2), "outcome": outcome, "example": repr(example)[:300]})
        if progress and state["n"] % 500 == 0:
            print(f"  {name}: {state['n']} examples, {counts['crash']} crashes", file=sys.stderr)

    t_start = time.perf_counter()
    try:
        one()
    finally:
        shutil.rmtree(base, ignore_errors=True)
    times.sort()
    return {"target": name, "examples": state["n"], "valid": counts["valid"], "refused": counts["refused"],
            "crashes": counts["crash"], "seconds": round(time.perf_counter() - t_start, 1),
            "median_ms": round(1000 * times[len(times) // 2], 2) if times else None,
            "max_ms": round(1000 * times[-1], 1) if times else None,
            "first_crashes": crashes, "slow_examples": slow}


def markdown(rows, meta):
    lines = ["# Fuzzing the readers of user input", "",
             f"`python benchmarks/fuzz.py --examples {meta['examples']} --seed {meta['seed']}`; "
             f"commit {meta['git']['head'] if meta['git'] else '?'}"
             f"{'' if meta['git'] and not meta['git']['changed_files'] else ' (DIRTY tree: figures not from a commit)'}; "
             f"{meta['machine']}; load average at start {meta['load_average_start']}, "
             f"at end {meta['load_average_end']}.", "",
             "An example is *valid* (the reader returned a result), *refused* (the project's one-line "
             "DataError) or a *crash* (any other exception). Target: 0 crashes.", "",
             "| reader | examples | valid | refused | crashes | median ms | max ms |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['target']} | {r['examples']} | {r['valid']} | {r['refused']} | **{r['crashes']}** | "
                     f"{r['median_ms']} | {r['max_ms']} |")
    for r in rows:
        for c in r["first_crashes"][:5]:
            lines.append(f"\n- {r['target']} crash: {c['detail']}\n  example: `{c['example'][:200]}`")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=10000, help="generated inputs per reader (default 10000)")
    parser.add_argument("--targets", nargs="*", help="readers to fuzz (default: all in tests/fuzz_*.py)")
    parser.add_argument("--seed", type=int, default=0, help="hypothesis seed (default 0)")
    parser.add_argument("--slow", type=float, default=5.0, help="list examples slower than this, s (default 5)")
    parser.add_argument("--out", default=os.path.join(HERE, "results"),
                        help="folder for fuzz.json and fuzz.md (default benchmarks/results)")
    args = parser.parse_args(argv)
    from classic_loc._fileio import atomic_write_text

    targets = load_targets()
    names = args.targets or list(targets)
    unknown = sorted(set(names) - set(targets))
    if unknown:
        parser.error(f"unknown target(s) {unknown}; available: {sorted(targets)}")
    meta = {"examples": args.examples, "seed": args.seed, "git": git_state(), "machine": machine(),
            "load_average_start": load_average()}
    rows = []
    for name in names:
        _, strategy, run = targets[name]
        print(f"fuzzing {name} ({args.examples} examples)", file=sys.stderr)
        rows.append(fuzz_target(name, strategy, run, args.examples, args.seed, args.slow))
        r = rows[-1]
        print(f"  {name}: {r['examples']} examples, {r['valid']} valid, {r['refused']} refused, "
              f"{r['crashes']} crashes, {r['seconds']} s", file=sys.stderr)
    meta["load_average_end"] = load_average()
    meta["git_at_end"] = git_state()
    os.makedirs(args.out, exist_ok=True)
    atomic_write_text(os.path.join(args.out, "fuzz.json"), json.dumps({**meta, "results": rows}, indent=2))
    text = markdown(rows, meta)
    atomic_write_text(os.path.join(args.out, "fuzz.md"), text)
    print(text)
    return 1 if any(r["crashes"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
