import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def shared_data_dir():
    """The shared real data sets: $CLASSIC_LOC_SHARED_DATA, else ../shared/data beside the repo."""
    return Path(os.environ.get("CLASSIC_LOC_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture
def shared_data():
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"needs the shared real data sets at {path} (set CLASSIC_LOC_SHARED_DATA to their folder)")
    return path
