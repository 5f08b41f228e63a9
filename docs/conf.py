# Sphinx + numpydoc (as scikit-learn and scikit-image do: our docstrings are numpydoc) + myst-parser
# (pages are Markdown like the README, so one test can run every code block of README and docs alike).
# Build (Python 3.11+, for Sphinx 9): python -m sphinx -W --keep-going -b html docs <out dir>; tests/test_docs.py runs it.

import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, ROOT)  # document this checkout's package, not another installed copy

import classic_loc  # noqa: E402

if os.path.dirname(os.path.dirname(os.path.realpath(classic_loc.__file__))) != os.path.realpath(ROOT):
    raise RuntimeError(f"docs/conf.py imported classic_loc from {classic_loc.__file__}, not from {ROOT}")

project = "classic_loc"
author = "classic_loc developers"
copyright = "classic_loc developers"
version = release = classic_loc.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build"]

# autodoc: a class's members in source order
autodoc_member_order = "bysource"

# numpydoc: api.md chooses and documents each class's members itself; numpydoc's own "Methods" table
# would list them a second time (and name members api.md leaves out, with no entry to link to)
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
# numpydoc's validation, limited to the checks for a malformed docstring (the kind that renders wrong
# without any other warning, e.g. a paragraph inside "Parameters" shown as a parameter): unknown
# section, sections out of order, bad directive, documented parameter not in the signature, "name: type"
# without the space, no summary. Style checks (missing sections, periods) are left off.
numpydoc_validation_checks = {"GL06", "GL07", "GL10", "PR02", "PR10", "SS01"}

myst_heading_anchors = 3

html_theme = "alabaster"
html_title = f"classic_loc {release}"
html_static_path = []
