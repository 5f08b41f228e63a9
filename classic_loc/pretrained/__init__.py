"""Ready-made models shipped inside the package: a face detector and a person (pedestrian) detector.

``classic_loc.pretrained("face")`` returns a fitted :class:`~classic_loc.Localizer`; on the
command line ``predict --model face`` does the same. No network: the model files are package
data, in the safe model format (no pickle, checksummed). ``benchmarks/pretrained.py`` made them
from the shared data sets with the default settings; :func:`model_card` gives, per model, the data
it was trained on and its terms, the settings, the seed, the commit and its scores on the test
split (the shared evaluator).

Examples
--------
>>> from classic_loc import pretrained
>>> model = pretrained("face")
>>> model.classes_
('face',)
"""

import json
import os
import sys
import types

from ..errors import DataError

__all__ = ["NAMES", "pretrained", "pretrained_path", "model_card"]

HERE = os.path.dirname(os.path.abspath(__file__))

#: The shipped models: name -> file in this folder.
NAMES = {"face": "face.npz", "person": "person.npz"}

#: The cards of the shipped models (data, terms, settings, seed, commit, scores), written with them.
CARDS = "models.json"


def pretrained_path(name):
    """The file of the shipped model ``name`` (see :data:`NAMES`); DataError for another name."""
    if name not in NAMES:
        raise DataError("pretrained", repr(name), "is not a shipped model",
                        f"use one of {', '.join(NAMES)}, or the path of a model file", kind="usage")
    return os.path.join(HERE, NAMES[name])


def pretrained(name):
    """The shipped model ``name``, loaded: a fitted :class:`~classic_loc.Localizer`.

    Parameters
    ----------
    name : str
        ``"face"`` (frontal faces, trained on the CMU/MIT frontal faces) or ``"person"``
        (pedestrians, trained on Penn-Fudan).
    """
    from ..localizer import Localizer

    return Localizer.load(pretrained_path(name))


def model_card(name):
    """What is known of the shipped model ``name``: a dict (data, terms, settings, seed, commit, test scores)."""
    pretrained_path(name)  # the name check
    with open(os.path.join(HERE, CARDS), encoding="utf-8") as fh:
        return json.load(fh)[name]


class _CallableModule(types.ModuleType):
    """This module, callable: ``classic_loc.pretrained("face")`` is :func:`pretrained`."""

    def __call__(self, name):
        return pretrained(name)


sys.modules[__name__].__class__ = _CallableModule
