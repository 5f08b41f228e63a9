"""Progress bars and log lines for long jobs, on stderr; silent unless ``verbose``."""

import sys


def progress(iterable, desc, verbose, total=None):
    """``iterable`` wrapped in a tqdm bar when ``verbose``, else unchanged."""
    if not verbose:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, leave=False, dynamic_ncols=True)


def log(verbose, msg):
    """One line on stderr that does not break a running progress bar."""
    if verbose:
        from tqdm.auto import tqdm

        tqdm.write(msg, file=sys.stderr)
