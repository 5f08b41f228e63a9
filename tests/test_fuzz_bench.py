"""benchmarks/fuzz.py counts each example as valid, refused (the project's one-line error) or crash."""

import sys
from pathlib import Path

from hypothesis import strategies as st

from classic_loc.errors import DataError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import fuzz  # noqa: E402


class _TwoLineError(DataError):
    def __str__(self):
        return "first line\nsecond line"


def _run(example, workdir):
    assert workdir.is_dir() and not any(workdir.iterdir())  # a fresh, empty folder per example
    (workdir / "input.txt").write_text(str(example))
    if example < 0:
        raise DataError("input.txt", "line 1", "negative", "write a positive number")
    if example == 7:
        raise KeyError(7)
    if example == 8:
        raise _TwoLineError("input.txt", "line 1", "two lines", "fix")


def test_fuzz_counts_valid_refused_and_crashes_over_the_whole_space():
    row = fuzz.fuzz_target("dummy", st.integers(-20, 20), _run, examples=1000, seed=0, slow_seconds=5.0,
                           progress=False)
    # hypothesis exhausts the 41 integers of [-20, 20]; 8 is a "refusal" whose message is two lines
    assert row["examples"] == 41
    assert (row["valid"], row["refused"], row["crashes"]) == (19, 20, 2)
    details = sorted(c["detail"] for c in row["first_crashes"])
    assert details[0].startswith("DataError whose message is not one line")
    assert details[1].startswith("KeyError at tests/test_fuzz_bench.py:")


def test_fuzz_finds_every_reader_of_user_input_in_the_tests():
    targets = fuzz.load_targets()
    # the four annotation formats, image headers, results files and mappings, model files
    assert set(targets) == {"voc", "coco", "yolo", "csv", "image", "predictions_json", "predictions_mapping",
                            "model_file"}
    for name, (module, strategy, run) in targets.items():
        assert module.startswith("fuzz_") and callable(run), name
