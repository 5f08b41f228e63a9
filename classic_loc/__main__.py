"""``python -m classic_loc``: the command line (see :mod:`classic_loc.cli`)."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
