"""Errors for bad user input.

Every mistake in a user's data, predictions or model file is raised as a
:class:`DataError` (or :class:`ModelFileError`) whose message is one line that
names the file, the item and the fix. The command line prints that line and
exits with status 2 instead of showing a traceback.
"""

__all__ = ["DataError", "ModelFileError", "DataWarning"]


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


class DataWarning(UserWarning):
    """Bad items were skipped (``skip_bad=True``) or data was adjusted."""
