"""Throughput of trialship.deid against dicognito on pydicom's bundled test files.

    python bench/deid.py [--rounds N]

Both engines get the same in-memory datasets (read once, deep-copied per run, pixel data
deferred), so the numbers compare the de-identification work only, not disk I/O. trialship runs
with its leak check on. dicognito is optional (pip install dicognito).
"""

from __future__ import annotations

import argparse
import copy
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import pydicom
from pydicom.data import get_testdata_files
from pydicom.dataset import Dataset

from trialship.deid import DeidContext, Option, Profile, TrialInfo, deidentify

PROFILE = Profile(
    trial=TrialInfo(sponsor_name="Bench Sponsor", protocol_id="BENCH-1"),
    name="bench",
    options=frozenset({Option.RETAIN_LONGITUDINAL_MODIFIED_DATES, Option.CLEAN_DESCRIPTORS}),
    uid_secret=b"bench-secret-0123456789",
)
CONTEXT = DeidContext(
    subject_id="BENCH-0001", uid_secret=b"bench-secret-0123456789", date_shift_days=-42
)


def _datasets() -> list[Dataset]:
    found = []
    for name in get_testdata_files():
        path = Path(name)
        if not path.is_file():
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception:  # broken test files are skipped, as in the tests
            continue
        if "SOPInstanceUID" in ds:
            found.append(ds)
    return found


def _time(run: Callable[[Dataset], object], datasets: list[Dataset], rounds: int) -> float:
    copies = [copy.deepcopy(ds) for ds in datasets for _ in range(rounds)]
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for ds in copies:
            run(ds)
    return len(copies) / (time.perf_counter() - start)


def main(args: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args(args)
    datasets = _datasets()
    ours = _time(lambda ds: deidentify(ds, PROFILE, CONTEXT), datasets, options.rounds)
    print(f"trialship.deid: {ours:8.1f} datasets/s ({len(datasets)} files x {options.rounds})")
    try:
        from dicognito.anonymizer import Anonymizer
    except ImportError:
        print("dicognito not installed: pip install dicognito to compare")
        return
    anonymizer = Anonymizer(seed="bench")
    theirs = _time(anonymizer.anonymize, datasets, options.rounds)
    print(f"dicognito:      {theirs:8.1f} datasets/s -> trialship is {ours / theirs:.1f}x")


if __name__ == "__main__":
    main()
