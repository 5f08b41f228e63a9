"""Training: positives, negatives, hard-negative mining, SVM fit, calibration, ridge fit.

scikit-learn lives here and only here; :class:`classic_loc.Localizer` imports
this package inside ``fit`` only, so loading a model and predicting never
imports scikit-learn.
"""

from .fit import train_templates

__all__ = ["train_templates"]
