"""Property: every annotation reader returns a valid Dataset or raises DataError, for any input.

The inputs come from tests/fuzz_datasets.py (benchmarks/fuzz.py runs 10,000 per reader).
"""

import pathlib
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings

from classic_loc.errors import DataError
from fuzz_datasets import TARGETS


def _property(name):
    strategy, run = TARGETS[name]

    @settings(max_examples=250, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(strategy)
    def check(example):
        with tempfile.TemporaryDirectory() as workdir:
            try:
                run(example, pathlib.Path(workdir))
            except DataError as err:
                assert "\n" not in str(err)  # one line

    return check


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_reader_gives_a_dataset_or_a_data_error(name):
    _property(name)()


def test_the_fuzz_inputs_reach_valid_datasets_too():
    """The valid seeds of every target read cleanly, so the property is not vacuous."""
    import fuzz_datasets as f

    with tempfile.TemporaryDirectory() as d:
        f.run_coco((f._dumps(f._coco_doc()).encode(), True), pathlib.Path(d, "coco"))
        f.run_voc((f._voc_xml().encode(), b"img1\n", "cat\ndog\n"), pathlib.Path(d, "voc"))
        f.run_yolo(("split", "0 0.5 0.5 0.25 0.5\n", "cat\ndog\n", None, None), pathlib.Path(d, "yolo"))
        f.run_csv((f._CSV_VALID, None), pathlib.Path(d, "csv"))
