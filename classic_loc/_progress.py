"""Progress for long jobs, on stderr; silent unless ``verbose``.

On a terminal a tqdm bar (where tqdm is installed: the ``train`` extra); in a log (stderr redirected to a file or a pipe) plain lines, one at
most every :data:`LINE_SECONDS` and one at the end, as ``predicting: 40/120 (33%), 12 s`` (a
bar's carriage returns would fill a log with redrawn lines).
"""

import sys
import time

#: In a log, a progress line at most this often (and one when the job ends).
LINE_SECONDS = 10.0


def _is_terminal(stream):
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # no isatty, or a closed stream
        return False


def progress(iterable, desc, verbose, total=None, stream=None):
    """``iterable`` with its progress shown when ``verbose``, else unchanged.

    Parameters
    ----------
    iterable : iterable
    desc : str
        What is being done, shown before the count.
    verbose : bool
    total : int, optional
        Number of items (``len(iterable)`` when it has one).
    stream : file, optional
        Where to show it (stderr).

    Returns
    -------
    The iterable itself when not ``verbose``; else an iterable with tqdm's ``update(n)`` and
    ``close()``: a tqdm bar when ``stream`` is a terminal, plain lines when not.
    """
    if not verbose:
        return iterable
    stream = sys.stderr if stream is None else stream
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)
    tqdm = _tqdm() if _is_terminal(stream) else None
    if tqdm is not None:
        return tqdm(iterable, desc=desc, total=total, leave=False, dynamic_ncols=True, file=stream)
    return _Lines(iterable, desc, total, stream)


def _tqdm():
    """tqdm's bar class, or None where tqdm is not installed (the base install: plain lines then)."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm


class _Lines:
    """tqdm's interface (iterate, ``update``, ``close``) as plain lines: at most one every LINE_SECONDS, one at the end."""

    def __init__(self, iterable, desc, total, stream):
        self.iterable, self.desc, self.total, self.stream = iterable, desc, total, stream
        self.n, self.closed = 0, False
        self.start = self.last = time.monotonic()

    def _line(self, now):
        done = f"{self.n}/{self.total} ({100 * self.n / self.total:.0f}%)" if self.total else f"{self.n}"
        print(f"{self.desc}: {done}, {now - self.start:.0f} s", file=self.stream, flush=True)

    def update(self, n=1):
        self.n += n
        now = time.monotonic()
        if now - self.last >= LINE_SECONDS and self.n != self.total:
            self.last = now
            self._line(now)

    def close(self):
        if not self.closed:
            self.closed = True
            self._line(time.monotonic())

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.update(1)
        self.close()


def log(verbose, msg):
    """One line on stderr that does not break a running progress bar."""
    if verbose:
        tqdm = _tqdm()
        if tqdm is None:
            print(msg, file=sys.stderr, flush=True)
        else:
            tqdm.write(msg, file=sys.stderr)
