"""The model loader under fuzzing (tests/fuzz_models.py): every generated file loads or gives a ModelFileError."""

import pathlib
import tempfile

from hypothesis import HealthCheck, given, settings

from classic_loc.errors import DataError

from fuzz_models import TARGETS, base_models, run_model_file


def test_the_base_models_load_and_detect():
    for data in base_models():
        with tempfile.TemporaryDirectory() as d:
            run_model_file(data, pathlib.Path(d))  # no exception: the valid files the fuzzer mutates are valid


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow,
                                                                                 HealthCheck.data_too_large])
@given(TARGETS["model_file"][0])
def test_model_file_fuzz_gives_a_model_or_a_clear_refusal(example):
    strategy, run = TARGETS["model_file"]
    with tempfile.TemporaryDirectory() as d:
        try:
            run(example, pathlib.Path(d))
        except DataError as exc:  # ModelFileError, or a DataError of the detection: one line
            assert "\n" not in str(exc) and str(exc)
