"""Destination URLs: the three kinds, options, overrides, and mistakes named clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from trialship.errors import ValidationError
from trialship.transfer import (
    DicomDestination,
    DicomWebDestination,
    SftpDestination,
    parse_destination,
)


def test_sftp_url_with_user_port_folder_and_secrets_from_overrides() -> None:
    dest = parse_destination(
        "sftp://sponsor@files.example.org:2222/incoming/TRIAL-1/?marker=DONE",
        identity=Path("/k"),
        password="s3cret",
    )
    assert dest == SftpDestination(
        host="files.example.org", port=2222, user="sponsor", path="/incoming/TRIAL-1",
        identity=Path("/k"), password="s3cret", marker="DONE",
    )  # fmt: skip
    assert dest.describe() == "sftp://sponsor@files.example.org:2222/incoming/TRIAL-1"
    assert "s3cret" not in repr(dest)


def test_sftp_fingerprint_survives_query_decoding_of_plus() -> None:
    dest = parse_destination("sftp://u@h/d?fingerprint=SHA256:ab+cd/ef")
    assert isinstance(dest, SftpDestination)
    assert dest.host_fingerprint == "SHA256:ab+cd/ef" and dest.port == 22


def test_dicom_url_with_options() -> None:
    dest = parse_destination(
        "dicom://PACS@10.0.0.5:11112?calling_aet=SITE1&max_pdu=16382&commitment=yes"
        "&commitment_port=11113&associations=2&retries=1"
    )
    assert dest == DicomDestination(
        host="10.0.0.5", port=11112, called_aet="PACS", calling_aet="SITE1", max_pdu=16382,
        commitment=True, commitment_port=11113, associations=2, retries=1,
    )  # fmt: skip
    assert dest.describe() == "dicom://PACS@10.0.0.5:11112"
    ours = parse_destination("dicom://PACS@h:104", calling_aet="ME")
    assert isinstance(ours, DicomDestination) and ours.calling_aet == "ME"


def test_dicomweb_url_keeps_the_path_and_hides_the_auth_header() -> None:
    dest = parse_destination(
        "dicomweb+https://pacs.example.org:8443/dicom-web/", auth_header="Bearer x"
    )
    assert dest == DicomWebDestination("https://pacs.example.org:8443/dicom-web", "Bearer x")
    assert dest.describe() == "dicomweb+https://pacs.example.org:8443/dicom-web"
    assert "Bearer" not in repr(dest)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://h/x", "unknown destination"),
        ("sftp://host/dir", "needs a user"),
        ("sftp://u@:22/dir", "no host"),
        ("dicom://h:104", "called AE title"),
        ("dicom://WAY-TOO-LONG-AE-TITLE@h:104", "1 to 16 characters"),
        ("dicom://A@h:104?max_pdu=big", "max_pdu must be a number"),
        ("sftp://u@h:99999/d", "bad port"),
    ],
)
def test_bad_urls_are_named(url: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        parse_destination(url)
