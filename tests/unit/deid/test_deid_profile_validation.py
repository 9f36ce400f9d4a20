"""Profiles are validated on parse; every error names the offending key."""

from __future__ import annotations

import pytest

from trialship.deid import (
    Option,
    PrivateTags,
    ProfileError,
    default_profile_toml,
    parse_profile,
    profile_hash,
    to_toml,
)

SECRET = "0123456789abcdef-secret"
VALID = f"""
[trial]
sponsor_name = "Acme Oncology"
protocol_id = "ACM-301"
protocol_name = "Acme study"
[deid]
name = "acme"
options = ["retain_longitudinal_full_dates", "clean_descriptors"]
uid_secret = "{SECRET}"
private_tags = "remove"
patient_age = "at_exam_capped"
date_shift_days = [-365, -30]
[deid.keep]
keywords = ["PatientSex"]
[deid.remove]
keywords = ["SeriesDescription"]
[deid.replace]
InstitutionName = "{{site_id}}"
"""


def test_valid_profile_parses_with_all_fields() -> None:
    profile = parse_profile(VALID)
    assert profile.trial.sponsor_name == "Acme Oncology"
    assert profile.options == {Option.RETAIN_LONGITUDINAL_FULL_DATES, Option.CLEAN_DESCRIPTORS}
    assert profile.uid_secret == SECRET.encode()
    assert profile.keep == {"PatientSex"} and profile.remove == {"SeriesDescription"}
    assert profile.replace == (("InstitutionName", "{site_id}"),)


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ('sponsor_name = "Acme Oncology"', "", "trial.sponsor_name"),
        ('protocol_id = "ACM-301"', 'protocol_id = ""', "trial.protocol_id"),
        ('"clean_descriptors"]', '"clean_everything"]', "deid.options"),
        ('"clean_descriptors"]', '"retain_longitudinal_modified_dates"]', "deid.options"),
        ('keywords = ["PatientSex"]', 'keywords = ["PatientSexx"]', "deid.keep.keywords"),
        ('keywords = ["PatientSex"]', 'keywords = ["PatientName"]', "deid.keep.keywords"),
        ('keywords = ["SeriesDescription"]', 'keywords = ["PatientSex"]', "deid.remove.keywords"),
        ('private_tags = "remove"', 'private_tags = "some"', "deid.private_tags"),
        ('private_tags = "remove"', 'private_tags = "retain_safe"', "deid.private_tags"),
        ('patient_age = "at_exam_capped"', 'patient_age = "exact"', "deid.patient_age"),
        ("[-365, -30]", "[-30, -365]", "deid.date_shift_days"),
        ("[-365, -30]", '["a", 1]', "deid.date_shift_days"),
        (f'uid_secret = "{SECRET}"', "", "deid.uid_secret"),
        (f'uid_secret = "{SECRET}"', 'uid_secret = "short"', "deid.uid_secret"),
        (
            f'uid_secret = "{SECRET}"',
            f'uid_secret = "{SECRET}"\nuid_secret_file = "/run/secret"',
            "deid.uid_secret",
        ),
        ('"{site_id}"', '"{hospital}"', "deid.replace.InstitutionName"),
        ('InstitutionName = "{site_id}"', 'SOPInstanceUID = "x"', "deid.replace.SOPInstanceUID"),
        ('name = "acme"', 'name = "acme"\ncolour = "red"', "deid.colour"),
        ("[trial]", "[trail]\n[trial]", "trail"),
    ],
)
def test_invalid_profile_error_names_the_key(old: str, new: str, key: str) -> None:
    assert old in VALID
    with pytest.raises(ProfileError) as caught:
        parse_profile(VALID.replace(old, new, 1))
    assert caught.value.key == key
    assert key in str(caught.value)


def test_broken_toml_is_a_profile_error() -> None:
    with pytest.raises(ProfileError) as caught:
        parse_profile("[trial\n")
    assert caught.value.key == "toml"


def test_secret_file_is_recorded_and_resolved_through_the_callable() -> None:
    text = VALID.replace(f'uid_secret = "{SECRET}"', 'uid_secret_file = "/run/trial.key"')
    unresolved = parse_profile(text)
    assert unresolved.uid_secret is None and unresolved.uid_secret_file == "/run/trial.key"
    seen: list[str] = []

    def read(path: str) -> bytes:
        seen.append(path)
        return b"file-secret-0123456789\n"

    resolved = parse_profile(text, read_secret_file=read)
    assert seen == ["/run/trial.key"] and resolved.uid_secret == b"file-secret-0123456789"


def test_retain_safe_private_option_goes_with_retain_safe_policy() -> None:
    text = VALID.replace('"clean_descriptors"]', '"retain_safe_private"]').replace(
        'private_tags = "remove"', 'private_tags = "retain_safe"'
    )
    assert parse_profile(text).private_tags is PrivateTags.RETAIN_SAFE


def test_profile_round_trips_through_toml() -> None:
    profile = parse_profile(VALID)
    assert parse_profile(to_toml(profile, include_secret=True)) == profile
    assert SECRET not in to_toml(profile)


def test_profile_hash_is_stable_ignores_the_secret_and_tracks_content() -> None:
    profile = parse_profile(VALID)
    assert profile_hash(profile) == profile_hash(parse_profile(VALID))
    other_secret = parse_profile(VALID.replace(SECRET, "another-secret-value-99"))
    assert profile_hash(other_secret) == profile_hash(profile)
    fewer = parse_profile(VALID.replace(', "clean_descriptors"', ""))
    assert profile_hash(fewer) != profile_hash(profile)


def test_default_profile_for_a_new_trial_parses() -> None:
    text = default_profile_toml(
        sponsor_name="Acme Oncology", protocol_id="ACM-301", uid_secret="s" * 32
    )
    profile = parse_profile(text)
    assert profile.trial.protocol_id == "ACM-301"
    assert Option.RETAIN_LONGITUDINAL_MODIFIED_DATES in profile.options
