"""Helpers every benchmark script shares: peak memory, the machine line, the load average, fresh workers.

Standard library only: ``opencv_peers.py`` imports it inside the OpenCV 4 virtual environment,
where classic_loc is not installed.
"""

import json
import os
import platform
import subprocess
import sys
import tempfile

__all__ = ["peak_rss_mb", "cpu_model", "load_average", "machine", "git_state", "run_worker"]

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def peak_rss_mb():
    """This process's peak resident set size (VmHWM) in MB, or None where /proc is missing."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def cpu_model():
    """The CPU's model name (from /proc/cpuinfo), else what ``platform`` knows."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return cpu


def load_average():
    """The 1, 5 and 15 minute load averages, rounded, or None where the OS has none."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def machine():
    """``"<cpu>, <n> cores, Python <version>"``."""
    return f"{cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def git_state():
    """The repository's HEAD commit and whether classic_loc/ or benchmarks/ differ from it (None without git)."""
    try:
        head = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--", "classic_loc", "benchmarks"],
                               capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    # porcelain lines are "XY path": the status may start with a space, so the output is not stripped
    return {"head": head, "changed_files": [ln[3:] for ln in dirty.splitlines() if ln.strip()]}


def run_worker(script, job, what):
    """Run ``script --worker-job JOB --worker-out OUT`` in a fresh interpreter and return its JSON answer.

    The worker (one BLAS thread) reads the job and writes its answer as JSON; a fresh
    process makes its peak RSS that of the prediction alone. ``what`` names it in the error.
    """
    with tempfile.TemporaryDirectory(prefix="bench_worker_") as tmp:
        job_path, res_path = os.path.join(tmp, "job.json"), os.path.join(tmp, "result.json")
        with open(job_path, "w") as fh:
            json.dump(job, fh)
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        proc = subprocess.run([sys.executable, os.path.abspath(script), "--worker-job", job_path,
                               "--worker-out", res_path], env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"the {what} prediction process failed:\n{proc.stderr.strip()[-3000:]}")
        with open(res_path) as fh:
            return json.load(fh)
