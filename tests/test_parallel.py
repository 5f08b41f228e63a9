"""classic_loc.parallel: results in order, and no leftovers of killed worker processes."""

import os
import subprocess
import sys
import time

import joblib
import pytest

from classic_loc.parallel import parallel_imap, parallel_map, remove_stale_worker_files


def _square(x):
    return x * x


def test_parallel_map_keeps_the_order_in_processes_and_in_this_process():
    items = list(range(20))
    assert parallel_map(_square, items, 1) == parallel_map(_square, iter(items), 2) == [x * x for x in items]


def _fail_on_three(x):
    if x == 3:
        raise ValueError("item 3 is bad")
    return x


def test_parallel_imap_streams_in_order_with_at_most_ahead_items_out():
    pulled = []

    def items():
        for x in range(30):
            pulled.append(x)
            yield x

    out = []
    for res in parallel_imap(_square, items(), 2, ahead=lambda: 5):
        out.append(res)
        assert len(pulled) - len(out) <= 4  # 5 out when the result was taken; one of them is taken now
    assert out == [x * x for x in range(30)]
    assert list(parallel_imap(_square, range(7), 1)) == [x * x for x in range(7)]
    # under another joblib backend the items go through it (in groups of ahead), in order
    with joblib.parallel_config(backend="threading"):
        assert list(parallel_imap(_square, iter(range(11)), 2, ahead=3)) == [x * x for x in range(11)]


def test_parallel_imap_raises_a_worker_error_and_stops_early():
    gen = parallel_imap(_fail_on_three, range(100), 2, ahead=4)
    assert [next(gen) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(ValueError, match="item 3 is bad"):
        next(gen)
    gen = parallel_imap(_square, range(100), 2, ahead=4)
    assert next(gen) == 0
    gen.close()  # the items not started are cancelled; nothing hangs
    assert list(parallel_imap(_square, range(5), 2)) == [0, 1, 4, 9, 16]  # the pool still works


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_semaphores_and_memmapping_folders_of_dead_processes_are_removed(tmp_path):
    dead, alive = _dead_pid(), os.getppid()
    names = {f"sem.loky-{dead}-1ixoropg": "file", f"joblib_memmapping_folder_{dead}_7e9a5b_303ed1": "dir",
             f"sem.loky-{alive}-38ecl162": "file", f"joblib_memmapping_folder_{alive}_4685b0_ac0971": "dir",
             f"sem.loky-{os.getpid()}-abc": "file", "sem.other-1-x": "file", "unrelated.txt": "file"}
    for name, kind in names.items():
        if kind == "dir":
            (tmp_path / name).mkdir()
            (tmp_path / name / "array.mmap").write_bytes(b"x")
        else:
            (tmp_path / name).write_bytes(b"x")
    day_old = time.time() - 24 * 3600 - 60
    for name in names:
        os.utime(tmp_path / name, (day_old, day_old))
    (tmp_path / f"sem.loky-{dead}-recent").write_bytes(b"x")  # maybe a live process of another pid namespace
    removed = remove_stale_worker_files(tmp_path)
    assert sorted(removed) == sorted([f"sem.loky-{dead}-1ixoropg", f"joblib_memmapping_folder_{dead}_7e9a5b_303ed1"])
    assert sorted(os.listdir(tmp_path)) == sorted(set(names) - set(removed) | {f"sem.loky-{dead}-recent"})
    assert remove_stale_worker_files(tmp_path, min_age=0) == [f"sem.loky-{dead}-recent"]
    assert remove_stale_worker_files(tmp_path / "missing") == []


def test_a_parallel_run_sweeps_shared_memory_once(monkeypatch):
    import classic_loc.parallel as par

    calls = []
    monkeypatch.setattr(par, "_swept", [])
    monkeypatch.setattr(par, "remove_stale_worker_files", lambda: calls.append(1) or [])
    parallel_map(_square, range(4), 2)
    parallel_map(_square, range(4), 2)
    parallel_map(_square, range(4), 1)  # in this process: no workers, no sweep
    assert calls == [1]
