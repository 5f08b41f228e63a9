"""Progress (classic_loc._progress): a bar on a terminal, plain lines in a log."""

import io
import subprocess
import sys

import pytest

import classic_loc._progress as progress_module
from classic_loc._progress import progress


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_not_verbose_leaves_the_iterable_alone():
    items = [1, 2, 3]
    assert progress(items, "x", False) is items


def test_a_log_gets_plain_lines_and_the_items_pass_unchanged(monkeypatch):
    log = io.StringIO()
    assert list(progress(range(3), "counting", True, stream=log)) == [0, 1, 2]
    assert log.getvalue() == "counting: 3/3 (100%), 0 s\n"  # quick: the last line only
    monkeypatch.setattr(progress_module, "LINE_SECONDS", 0.0)  # a line after every item, the end once
    log = io.StringIO()
    assert list(progress(iter("ab"), "letters", True, total=None, stream=log)) == ["a", "b"]
    assert log.getvalue().splitlines() == ["letters: 1, 0 s", "letters: 2, 0 s", "letters: 2, 0 s"]
    log = io.StringIO()
    list(progress([7, 8, 9], "n", True, stream=log))
    assert log.getvalue().splitlines() == ["n: 1/3 (33%), 0 s", "n: 2/3 (67%), 0 s", "n: 3/3 (100%), 0 s"]
    assert "\r" not in log.getvalue()


def test_update_and_close_as_the_fit_uses_them():
    log = io.StringIO()
    bar = progress(iter(()), "mining", True, total=4, stream=log)
    for _ in range(4):
        bar.update(1)
    bar.close()
    bar.close()  # once only
    assert log.getvalue() == "mining: 4/4 (100%), 0 s\n"


def test_a_terminal_gets_a_tqdm_bar():
    tqdm = pytest.importorskip("tqdm")
    bar = progress(range(5), "x", True, stream=_Terminal())
    assert isinstance(bar, tqdm.tqdm)
    assert list(bar) == [0, 1, 2, 3, 4]


def test_predict_into_a_log_writes_lines_not_a_redrawn_bar(voc, trained, tmp_path):
    """The command line with stderr redirected to a file, as in a batch job."""
    err = tmp_path / "err.log"
    with open(err, "w") as fh:
        proc = subprocess.run([sys.executable, "-m", "classic_loc", "predict", "--model", str(trained),
                               str(voc / "JPEGImages"), "--out", str(tmp_path / "p.json")],
                              stderr=fh, stdout=subprocess.DEVNULL, check=False)
    text = err.read_text()
    assert proc.returncode == 0, text
    assert "\r" not in text
    assert "predicting: 40/40 (100%)" in text
