"""Signals and killed runs: outputs stay intact, no temporary is left, no worker outlives its parent.

Each test starts the command line in a subprocess (its own session), waits
until it is at work, sends a signal and then checks the files and the
processes. Processes are found by reading /proc (psutil may not be installed),
so these tests run on Linux only.
"""

import hashlib
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from classic_loc._fileio import HOST, TMP_MARKER, atomic_write_text, remove_stale_temporaries

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

SLOW_FIT = ["--set", "mining_rounds=3", "--set", "n_random_negatives=3000"]  # far longer than the tests wait


@pytest.fixture
def model_file(trained):
    return trained


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _alive(pid):
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _children(pid):
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                out.append(int(entry))
    return out


def _descendants(pid):
    found, todo = [], [pid]
    while todo:
        kids = _children(todo.pop())
        found += kids
        todo += kids
    return found


def _start(args, cwd, python_code=None):
    """The command line (or ``python -c python_code``) in a subprocess; its stderr goes to a file (a pipe
    would block a reader while any process that inherited it lives), read by :func:`_stderr`."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("CLASSIC_LOC_DEBUG", None)
    command = ["-c", python_code] if python_code else ["-m", "classic_loc", *args]
    with open(os.path.join(cwd, "stderr.txt"), "wb") as err:
        proc = subprocess.Popen([sys.executable, *command], cwd=cwd, env=env,
                                start_new_session=True, stdout=subprocess.DEVNULL, stderr=err)
    proc.stderr_path = os.path.join(cwd, "stderr.txt")
    return proc


def _stderr(proc):
    with open(proc.stderr_path, encoding="utf-8") as fh:
        return fh.read()


def _wait_for(condition, timeout, what):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def _reap(proc, survivors=()):
    """End what a failed test left running (only our own processes, by pid)."""
    for pid in survivors:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=30)


def _live_descendants(pid):
    return [p for p in _descendants(pid) if _alive(p)]


def _fit_with_workers(voc, out, tmp_path, sig, python_code=None):
    """Start a fit with two worker processes, send ``sig`` once they exist; return (exit status, stderr, workers).

    Waits up to 10 s after the parent has ended for every process it started to end.
    """
    proc = _start(["fit", "--data", str(voc), "--out", str(out), "--quiet", "--n-jobs", "2", *SLOW_FIT], tmp_path,
                  python_code)
    workers = []
    try:
        workers = _wait_for(lambda: (lambda d: d if len(d) >= 2 else None)(_live_descendants(proc.pid)), 90,
                            "the worker processes")
        time.sleep(0.5)  # let them start on their tasks
        workers = sorted(set(workers) | set(_live_descendants(proc.pid)))
        assert proc.poll() is None, "the fit ended before the signal: make SLOW_FIT slower"
        os.kill(proc.pid, sig)
        rc = proc.wait(timeout=60)
        stderr = _stderr(proc)
        _wait_for(lambda: not any(_alive(p) for p in workers), 10, "the workers to end")
        return rc, stderr, workers
    except BaseException:
        _reap(proc, [p for p in workers if _alive(p)])
        raise


def _leftovers(folder):
    return sorted(n for n in os.listdir(folder) if TMP_MARKER in n or "classic-loc-probe" in n)


@pytest.mark.parametrize("sig, status", [(signal.SIGKILL, -signal.SIGKILL), (signal.SIGTERM, 143),
                                         (signal.SIGINT, 130)])
def test_fit_interrupted_with_workers_leaves_no_worker_and_the_old_model(voc, tmp_path, sig, status):
    out = tmp_path / "model.npz"
    out.write_bytes(b"the previous model")
    before = _sha(out)
    rc, stderr, workers = _fit_with_workers(voc, out, tmp_path, sig)
    assert len(workers) >= 2  # loky's workers (and its resource tracker) were running
    assert rc == status
    assert not [p for p in workers if _alive(p)]  # _fit_with_workers waited at most 10 s for that
    assert _sha(out) == before
    assert _leftovers(tmp_path) == []  # fit writes nothing before training ends
    if sig != signal.SIGKILL:
        assert stderr.strip() == f"interrupted ({signal.Signals(sig).name})"


def test_fit_through_the_python_api_killed_leaves_no_worker(voc, tmp_path):
    # not only the command line: Localizer.fit's own worker processes end with their parent
    code = (f"from classic_loc import Localizer, load_dataset\n"
            f"Localizer(n_jobs=2, mining_rounds=3, n_random_negatives=3000).fit(load_dataset({str(voc)!r}))\n")
    rc, _, workers = _fit_with_workers(voc, tmp_path / "unused.npz", tmp_path, signal.SIGKILL, code)
    assert len(workers) >= 2 and rc == -signal.SIGKILL
    assert not [p for p in workers if _alive(p)]


def _predict_until_writing(model_file, voc, out, tmp_path, extra=()):
    """Start a slow predict streaming into ``out``; return the process once its temporary file exists."""
    images = voc / "JPEGImages"
    proc = _start(["predict", "--model", str(model_file), str(images), "--out", str(out), "--quiet",
                   "--set", "upsample=3", *extra], tmp_path)
    try:
        # the output's own temporary: the writability probe (named like a temporary too) comes and goes before it
        started = f".{out.name}{TMP_MARKER}"
        _wait_for(lambda: any(n.startswith(started) for n in _leftovers(out.parent)) or proc.poll() is not None, 90,
                  "the temporary output file")
        assert proc.poll() is None, "predict ended before the signal: make it slower"
        return proc
    except BaseException:
        _reap(proc)
        raise


@pytest.mark.parametrize("sig, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_predict_interrupted_keeps_the_previous_output_and_removes_its_temporary(model_file, voc, tmp_path, sig,
                                                                                   status):
    out = tmp_path / "preds.json"
    out.write_text("[]\n")
    before = _sha(out)
    proc = _predict_until_writing(model_file, voc, out, tmp_path, ["--n-jobs", "2"])
    os.kill(proc.pid, sig)
    assert proc.wait(timeout=60) == status
    assert _stderr(proc).strip() == f"interrupted ({signal.Signals(sig).name})"
    assert _sha(out) == before
    assert _leftovers(tmp_path) == []


def test_predict_killed_leaves_one_named_temporary_that_the_next_run_removes(model_file, voc, tmp_path):
    out = tmp_path / "preds.json"
    out.write_text("[]\n")
    before = _sha(out)
    proc = _predict_until_writing(model_file, voc, out, tmp_path)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL
    assert _sha(out) == before
    left = _leftovers(tmp_path)  # one, clearly named: host, pid and this process's count of temporaries
    assert len(left) == 1 and re.fullmatch(re.escape(f".preds.json{TMP_MARKER}{HOST}-{proc.pid}-") + r"\d+", left[0])
    # the next run writing into that folder removes it (its process is gone), and writes its own output
    image = sorted((voc / "JPEGImages").iterdir())[0]
    done = subprocess.run([sys.executable, "-m", "classic_loc", "predict", "--model", str(model_file), str(image),
                           "--out", str(out), "--quiet"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert _leftovers(tmp_path) == []
    assert out.read_text().startswith("[")


def test_stale_temporaries_of_live_processes_are_kept(tmp_path):
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True)
    dead = int(finished.stdout)
    parent = os.getppid()  # alive: the process that started this test run
    names = [f".a.json{TMP_MARKER}{HOST}-{dead}-0", f".b.npz{TMP_MARKER}{HOST}-{parent}-3",
             f".c.json{TMP_MARKER}{HOST}-{os.getpid()}-9", f"d.json{TMP_MARKER}{HOST}-{dead}",
             "x.classic-loc-tmp-1-0.json",
             # another machine's file in a shared folder: its pid says nothing here, it is never removed
             f".e.json{TMP_MARKER}other-node-7-{dead}-0", f".f.json{TMP_MARKER}{dead}-0"]
    for n in names:
        (tmp_path / n).write_text("x")
    assert remove_stale_temporaries(tmp_path) == [names[0]]
    assert sorted(os.listdir(tmp_path)) == sorted(names[1:])
    # and a write into a folder sweeps it once: the dead process's file goes, the others stay
    (tmp_path / names[0]).write_text("x")
    sub = tmp_path / "fresh"
    sub.mkdir()
    (sub / names[0]).write_text("x")
    atomic_write_text(sub / "out.txt", "y")
    assert sorted(os.listdir(sub)) == ["out.txt"]


def test_main_restores_the_signal_handlers(tmp_path, capsys):
    from classic_loc.cli import main

    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    assert main(["predict", "--model", str(tmp_path / "missing.npz"), str(tmp_path)]) == 2
    assert "no such model file" in capsys.readouterr().err
    assert {s: signal.getsignal(s) for s in before} == before
