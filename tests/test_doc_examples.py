"""Every code block of the README and of docs/ runs, from a checkout, on data the test makes.

Conventions of the pages (checked here): a code block is fenced and tagged ``bash`` (commands, run
one by one; ``&&`` separates commands on a line), ``python`` (run as a script) or ``text`` (output,
not run); no indented code blocks. Commands and scripts run in a fresh folder that holds what the
pages assume: ``demo/`` (a small demo data set in VOC layout, as ``python -m classic_loc demo --out
demo`` writes a larger one), ``model.npz`` (a model trained on it) and ``preds.json`` (its
predictions on the test split). Three kinds of command are checked rather than run: ``pip install``
(the extras it names must exist: CI installs the project itself), ``python -m pytest`` (it must be
what .ci/run runs) and ``python -m sphinx`` (tests/test_docs.py builds the docs).
"""

import configparser
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

markdown_it = pytest.importorskip("markdown_it", reason="markdown-it-py (installed with myst-parser) parses the pages")

REPO = Path(__file__).resolve().parent.parent
PAGES = [REPO / "README.md"] + sorted((REPO / "docs").glob("*.md"))
LANGUAGES = {"bash", "python", "text"}
MAIN_JOB = "python -m classic_loc fit"
_ran = {}  # commands without inputs of their own (the main job) run once per session: command -> stdout


def _blocks(page):
    """(language, code, first line) of every code block of ``page``, fenced or indented (language None)."""
    tokens = markdown_it.MarkdownIt("commonmark").parse(page.read_text())
    out = []
    for t in tokens:
        if t.type == "fence":
            out.append((t.info.split()[0] if t.info.strip() else "", t.content, t.map[0] + 1))
        elif t.type == "code_block":
            out.append((None, t.content, t.map[0] + 1))
    return out


def _extras():
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    return set(cfg["options.extras_require"])


def _ci_test_command():
    return [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()
            if line.strip().startswith("python -m pytest")]


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_code_blocks_are_fenced_and_tagged(page):
    for lang, _, line in _blocks(page):
        if lang and lang.startswith("{"):
            continue  # a MyST directive (toctree, autodoc in eval-rst), not code: tests/test_docs.py builds them
        assert lang is not None, f"{page.name}:{line}: an indented code block; fence it and tag it bash, python or text"
        assert lang in LANGUAGES, f"{page.name}:{line}: code block tagged {lang!r}, not one of {sorted(LANGUAGES)}"


@pytest.fixture(scope="module")
def template(voc, trained, tmp_path_factory):
    """The folder the pages' examples start from: demo/, model.npz, preds.json."""
    root = tmp_path_factory.mktemp("docwork")
    shutil.copytree(voc, root / "demo")
    shutil.copy(trained, root / "model.npz")
    from classic_loc.cli import main

    from classic_loc import load_dataset

    test = [r.path for r in load_dataset(root / "demo", split="test")]
    assert main(["predict", "--model", str(root / "model.npz"), *test, "--out", str(root / "preds.json"),
                 "--quiet", "--n-jobs", "1"]) == 0
    return root


def _env():
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")  # `python` is this one
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def _skeleton(text):
    """The labels of a fit summary, in order: what must be the same in the README and a real run."""
    labels = []
    for line in text.splitlines():
        if line.startswith("classic_loc fit: done in "):
            labels.append("classic_loc fit: done in")
        m = re.match(r"  ([A-Za-z_][\w ]*?)(?:\s{2,}|\s+\d)", line)
        if m:
            labels.append(m.group(1).split()[0])
    return labels


def _check_not_run(command):
    """True when ``command`` is one this test checks rather than runs (see the module docstring)."""
    words = shlex.split(command)
    if words[:4] == ["python", "-m", "pip", "install"]:
        specs = [w for w in words[4:] if not w.startswith("-")]
        assert specs, command
        for spec in specs:
            m = re.fullmatch(r"\.(?:\[([\w,-]+)\])?", spec)
            assert m, f"{command}: installs {spec!r}, not this checkout"
            assert set((m.group(1) or "").split(",")) - {""} <= _extras(), f"{command}: no such extra in setup.cfg"
        return True
    if words[:3] == ["python", "-m", "pytest"]:
        assert command in _ci_test_command(), f"{command!r} is not what .ci/run runs"
        return True
    if words[:3] == ["python", "-m", "sphinx"]:
        assert "docs" in words, command
        return True
    return False


def _run_bash(code, cwd, page, line):
    outputs = []
    for raw in code.splitlines():
        raw = raw.strip()
        if not raw or raw.startswith("#"):
            continue
        for command in (c.strip() for c in raw.split("&&")):
            if _check_not_run(command):
                continue
            if command in _ran:
                outputs.append((command, _ran[command]))
                continue
            proc = subprocess.run(command, shell=True, cwd=cwd, env=_env(), capture_output=True, text=True,
                                  timeout=900, executable="/bin/bash")
            assert proc.returncode == 0, f"{page.name}:{line}: `{command}` exited {proc.returncode}:\n{proc.stderr[-2000:]}"
            if command == MAIN_JOB:
                _ran[command] = proc.stdout
            outputs.append((command, proc.stdout))
    return outputs


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_code_blocks_run(page, template, tmp_path):
    work = tmp_path / "work"
    shutil.copytree(template, work)
    blocks = _blocks(page)
    for i, (lang, code, line) in enumerate(blocks):
        if lang == "python":
            proc = subprocess.run([sys.executable, "-c", code], cwd=work, env=_env(), capture_output=True, text=True,
                                  timeout=900)
            assert proc.returncode == 0, f"{page.name}:{line}: the Python block failed:\n{proc.stderr[-2000:]}"
        elif lang == "bash":
            for command, stdout in _run_bash(code, work, page, line):
                if command == MAIN_JOB and page.name == "README.md":
                    # the README shows the main job's output as a real run printed it
                    shown = blocks[i + 1]
                    assert shown[0] == "text", f"README.md:{line}: the main job's output should follow it"
                    assert _skeleton(shown[1]) == _skeleton(stdout), "the README's fit output is not the real layout"
                    assert len(_skeleton(stdout)) >= 12


def test_readme_is_short_and_shows_real_test_output():
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    blocks = _blocks(REPO / "README.md")
    i = next(i for i, b in enumerate(blocks) if "python -m pytest" in b[1])
    assert blocks[i + 1][0] == "text" and re.search(r"\d+ passed", blocks[i + 1][1])
    assert not re.search(r"\bissue \d|course notes|\.\./shared", text)
