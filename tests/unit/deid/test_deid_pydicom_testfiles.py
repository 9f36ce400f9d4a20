"""pydicom's bundled test files go through the engine without errors; every leak is explained."""

from __future__ import annotations

import warnings
from pathlib import Path

import pydicom
import pytest
from deid_helpers import make_ctx, make_profile
from pydicom.data import get_testdata_files

from trialship.deid import Option, PrivateTags, deidentify

# Test files whose InstitutionName is a vendor name ("TOSHIBA") or a placeholder ("Here") that also
# appears in Manufacturer: the check reports it, as it must (fail closed).
KNOWN = {("institution", "Manufacturer"), ("institution", "ManufacturerModelName")}
# Test files whose patient is a placeholder named "Last Name^First Name": a local code's meaning
# "Recording Observer's Name" holds a part of it. Found, as it must be.
KNOWN_FILES = {
    ("reportsi.dcm", "name", "CodeMeaning"),
    ("reportsi_with_empty_number_tags.dcm", "name", "CodeMeaning"),
}


def _readable() -> list[Path]:
    paths = []
    for name in get_testdata_files():
        path = Path(name)
        if not path.is_file():
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pydicom.dcmread(path, stop_before_pixels=True)
        except Exception:  # deliberately broken test files are not ours to fix
            continue
        paths.append(path)
    return paths


FILES = _readable()
PROFILES = {
    "basic": make_profile(),
    "all-options": make_profile(list(Option), private_tags=PrivateTags.KEEP),
    "dates-descriptors": make_profile(
        [Option.RETAIN_LONGITUDINAL_MODIFIED_DATES, Option.CLEAN_DESCRIPTORS]
    ),
}


def test_there_are_many_test_files() -> None:
    assert len(FILES) > 100


@pytest.mark.parametrize("profile_name", sorted(PROFILES))
def test_every_test_file_deidentifies_and_leaks_only_known_cases(profile_name: str) -> None:
    unexplained = []
    for path in FILES:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path, defer_size="2 KB")
            result = deidentify(ds, PROFILES[profile_name], make_ctx())
        assert result.dataset.PatientIdentityRemoved == "YES"
        unexplained += [
            (path.name, leak.kind, leak.path)
            for leak in result.leaks
            if (leak.kind, leak.keyword) not in KNOWN
            and (path.name, leak.kind, leak.keyword) not in KNOWN_FILES
        ]
    assert unexplained == []
