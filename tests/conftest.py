import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def shared_data_dir():
    """The shared real data sets: $CLASSIC_LOC_SHARED_DATA, else ../shared/data beside the repo."""
    return Path(os.environ.get("CLASSIC_LOC_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture
def older_model_file():
    """``write(src, dst, keys, params)``: a copy of model file ``src`` without the metadata ``keys`` and the
    parameters ``params``, signed again, as a file written before they existed."""
    import json

    import numpy as np

    from classic_loc.model_io import checksum

    def write(src, dst, keys=(), params=()):
        with np.load(src, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        meta = json.loads(arrays.pop("__meta__").tobytes())
        for key in ("checksum", *keys):
            meta.pop(key)
        for name in params:
            meta["params"].pop(name)
        meta["checksum"] = checksum(meta, arrays)
        with open(dst, "wb") as fh:
            np.savez(fh, **arrays, __meta__=np.frombuffer(json.dumps(meta).encode(), np.uint8))
        return dst

    return write


@pytest.fixture
def shared_data():
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"needs the shared real data sets at {path} (set CLASSIC_LOC_SHARED_DATA to their folder)")
    return path


@pytest.fixture(scope="session")
def voc(tmp_path_factory):
    """A 40-image demo data set in VOC layout, shared by the command-line tests: read it, never write into it."""
    import classic_loc._demo as demo

    root = tmp_path_factory.mktemp("tiny") / "voc"
    demo.generate(root, n_images=40, seed=1)
    return root


@pytest.fixture(scope="session")
def trained(voc, tmp_path_factory):
    """A quick model of :func:`voc` (no mining): a file to read or copy, never to write over."""
    from classic_loc import Localizer, load_dataset

    path = tmp_path_factory.mktemp("tinymodel") / "m.npz"
    Localizer(mining_rounds=0, n_random_negatives=200).fit(load_dataset(voc, split="train")).save(path)
    return path


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if a command starts training (every check must come before it).

    ``pytest.fail`` raises a BaseException, which the command line's catch-all cannot swallow.
    """
    from classic_loc import Localizer

    monkeypatch.setattr(Localizer, "fit", lambda *a, **k: pytest.fail("training started before the checks"))
