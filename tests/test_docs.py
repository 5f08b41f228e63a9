"""The documentation site builds with Sphinx, warnings as errors, and every page is reachable."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_docs_build_without_warnings(tmp_path):
    for module in ("sphinx", "numpydoc", "myst_parser"):
        pytest.importorskip(module, reason="building the docs needs sphinx, numpydoc and myst-parser "
                                           "(pip install -e .[docs], Python 3.11+)")
    out = tmp_path / "html"
    run = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html", str(DOCS), str(out)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, f"sphinx failed:\n{run.stdout[-3000:]}\n{run.stderr[-5000:]}"
    assert (out / "index.html").is_file()
    api = (out / "api.html").read_text(encoding="utf-8")
    # entries autodoc generated from the docstrings, not just the names in api.md's own text
    for name in ("Localizer", "Localizer.fit", "box_iou", "load_dataset", "evaluate", "DataError"):
        assert f'id="classic_loc.{name}"' in api, f"no API entry for classic_loc.{name}"
    assert "Intersection over union" in api  # box_iou's docstring itself


def test_index_toctree_lists_every_page():
    text = (DOCS / "index.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```\{toctree\}\n(.*?)^```", text, flags=re.S | re.M)
    assert blocks, "docs/index.md has no toctree"
    listed = [line.strip() for block in blocks for line in block.splitlines()
              if line.strip() and not line.strip().startswith(":")]
    pages = {p.relative_to(DOCS).with_suffix("").as_posix() for p in DOCS.rglob("*.md")
             if "_build" not in p.relative_to(DOCS).parts} - {"index"}
    assert len(listed) == len(set(listed)), f"a page is listed twice: {listed}"
    assert not pages - set(listed), f"pages not in the toctree of docs/index.md: {sorted(pages - set(listed))}"
    assert not set(listed) - pages, f"toctree entries without a page: {sorted(set(listed) - pages)}"
