"""Errors for bad user input.

Every mistake in a user's data, predictions or model file is raised as a
:class:`DataError` (or :class:`ModelFileError`) whose message is one line that
names the file, the item and the fix. The command line prints that line and
exits with status 2 instead of showing a traceback.
"""

__all__ = ["DataError", "ModelFileError", "MissingDependencyError", "DataWarning", "require_training"]


class DataError(ValueError):
    """A problem in the user's data: one line naming the file, the item and the fix.

    Parameters
    ----------
    file : str or path-like
        The file (or folder) that holds the problem.
    item : str
        What inside it is wrong (a line number, an object, an image id), or "".
    problem : str
        What is wrong.
    fix : str
        What the user should do about it.
    kind : str, optional
        A short category used to count skipped items (``--skip-bad``).
    """

    def __init__(self, file, item, problem, fix, kind="bad item"):
        self.file = str(file)
        self.item = item
        self.problem = problem
        self.fix = fix
        self.kind = kind
        where = f"{self.file}: {item}" if item else self.file
        super().__init__(f"{where}: {problem}; {fix}".replace("\n", " "))

    def __reduce__(self):
        # rebuilt from its parts, so the error crosses a process boundary (joblib,
        # concurrent.futures) intact instead of breaking the pool
        return type(self), (self.file, self.item, self.problem, self.fix, self.kind)


class ModelFileError(DataError):
    """A model file that cannot be loaded (tampered, foreign or of another version)."""


class MissingDependencyError(DataError, ImportError):
    """A command needs a package of an extra that is not installed (a DataError and an ImportError)."""


#: What training needs beyond the base install (numpy, OpenCV, defusedxml): the ``train`` extra.
TRAINING_PACKAGES = {"sklearn": "scikit-learn", "scipy": "scipy", "joblib": "joblib", "skimage": "scikit-image"}


def require_training(what="fit"):
    """Raise :class:`MissingDependencyError` naming the extra when a package training needs is missing.

    The base install (``pip install classic-loc``) predicts and evaluates with numpy and OpenCV
    alone; ``fit`` (and the demo data, drawn from scikit-image's sample photos) needs the
    ``train`` extra.
    """
    import importlib.util

    missing = [pip for module, pip in TRAINING_PACKAGES.items() if importlib.util.find_spec(module) is None]
    if missing:
        raise MissingDependencyError(what, "", f"needs {', '.join(missing)}, which the base install leaves out "
                                     "(it predicts and evaluates only)",
                                     "install the training extra: pip install 'classic-loc[train]' "
                                     "(from a checkout: pip install -e '.[train]')", kind="missing dependency")


class DataWarning(UserWarning):
    """Bad items were skipped (``skip_bad=True``) or data was adjusted."""
