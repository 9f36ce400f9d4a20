"""The Common Instance Reference module goes when the profile removed every reference it lists,
and stays where it is the reference itself."""

from __future__ import annotations

from deid_helpers import make_ctx, make_profile, patient_dataset
from pydicom.dataset import Dataset

from trialship.deid import deidentify


def _reference(uid: str) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    item.ReferencedSOPInstanceUID = uid
    return item


def _series_listing(uid: str) -> list[Dataset]:
    series = Dataset()
    series.SeriesInstanceUID = "1.2.826.0.1.3680043.99.1.9"
    series.ReferencedInstanceSequence = [_reference(uid)]
    return [series]


def test_the_module_goes_with_the_last_reference_it_lists() -> None:
    ds = patient_dataset()
    ds.SourceImageSequence = [_reference("1.2.826.0.1.3680043.99.1.8")]
    ds.ReferencedSeriesSequence = _series_listing("1.2.826.0.1.3680043.99.1.8")
    result = deidentify(ds, make_profile(), make_ctx())
    assert "SourceImageSequence" not in result.dataset  # (X/Z/U*: Type 3 in a CT image)
    assert "ReferencedSeriesSequence" not in result.dataset
    removed = [e for e in result.report.entries if e.keyword == "ReferencedSeriesSequence"]
    assert removed and "removed every reference" in removed[0].detail


def test_the_module_stays_where_it_is_the_reference() -> None:
    ds = patient_dataset()
    ds.ReferencedSeriesSequence = _series_listing("1.2.826.0.1.3680043.99.1.8")
    result = deidentify(ds, make_profile(), make_ctx())
    assert "ReferencedSeriesSequence" in result.dataset
