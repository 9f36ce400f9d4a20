"""Byte-identity check: does this tree's de-identification produce exactly what a baseline
commit produces, on the benchmark corpus and on pydicom's bundled test files?

    python bench/deid_identity.py [--baseline 0d14442] [--corpus DIR] [--files 200]

The baseline's `trialship` package is exported with `git archive` into a temporary folder; each
side runs in its own subprocess (one imports the baseline, the other this tree) and writes a
manifest. Compared, per input and profile: the output file's bytes (SHA-256), the report entries,
the warnings, the leaks found, or the rejection reason. Also one whole `run_deid` per side over
the corpus (fixed clock and signing key): every file of the output tree, report and signed
receipts included. Exits 1 and lists the first differences when anything differs.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PROFILES = {
    "bench": {"options": ["retain_longitudinal_modified_dates", "clean_descriptors"]},
    "basic": {"options": []},
    "all-keep-private": {"options": "all", "private_tags": "keep"},
    "dates-descriptors-safe-private": {
        "options": ["retain_longitudinal_modified_dates", "clean_descriptors"],
        "private_tags": "retain_safe",
    },
    "full-dates-uids-device": {
        "options": ["retain_longitudinal_full_dates", "retain_uids", "retain_device_identity"],
        "keep": ["PatientBirthDate"],
        "remove": ["SeriesDescription"],
    },
    "structured-graphics-patient": {
        "options": ["clean_structured_content", "clean_graphics", "retain_patient_characteristics"],
        "patient_age": "remove",
        "replace": [["InstitutionName", "{site_id}"], ["StationName", "{timepoint_id}"]],
    },
}
# Trial values with an accent make the engine declare UTF-8 and re-encode the text.
CONTEXTS = {
    "plain": {"site_id": "S01", "site_name": "Site One", "timepoint_id": "BL"},
    "accented": {"site_id": "S02", "site_name": "Hôpital Sainte-Anne", "timepoint_id": "V1"},
}


# -- one side (runs in a subprocess with the side's package first on sys.path) -------------------


def _profile(spec: dict[str, Any]) -> Any:
    from trialship.deid import Option, PatientAgePolicy, PrivateTags, Profile, TrialInfo

    options = list(Option) if spec["options"] == "all" else [Option(o) for o in spec["options"]]
    return Profile(
        trial=TrialInfo(sponsor_name="Check Sponsor", protocol_id="CHK-1", protocol_name="Check"),
        name="identity-check",
        options=frozenset(options),
        uid_secret=b"identity-check-secret-0123456789",
        private_tags=PrivateTags(spec.get("private_tags", "remove")),
        patient_age=PatientAgePolicy(spec.get("patient_age", "at_exam_capped")),
        keep=frozenset(spec.get("keep", ())),
        remove=frozenset(spec.get("remove", ())),
        replace=tuple(tuple(pair) for pair in spec.get("replace", ())),
    )


def _one(path: Path, profile: Any, context: dict[str, str]) -> dict[str, Any]:
    from trialship.deid import deidentify as deid
    from trialship.deid import make_context
    from trialship.intake.dicom_stream import UnreadableFile, read_instance, write_instance

    with path.open("rb") as source:
        try:
            instance = read_instance(source, os.fstat(source.fileno()).st_size)
        except UnreadableFile as exc:
            return {"unreadable": str(exc)}
        known = ("KNOWN-77",)
        ctx = make_context(profile, subject_id="CHK-0001", known_identifiers=known, **context)
        try:
            result = deid(instance.dataset, profile, ctx)
        except Exception as exc:  # an error is an outcome to compare
            return {"error": type(exc).__name__}
        out: dict[str, Any] = {
            "entries": [entry.to_dict() for entry in result.report.entries],
            "warnings": list(result.report.warnings),
            "options": list(result.report.options),
            "review": result.report.needs_pixel_review,
            "leaks": [leak.to_dict() for leak in result.leaks],
        }
        target = io.BytesIO()
        try:
            hashes = write_instance(instance, source, target)
        except Exception as exc:
            out["write_error"] = type(exc).__name__
            return out
        data = target.getvalue()
        out["output_sha256"] = hashlib.sha256(data).hexdigest()
        out["hashes_ok"] = hashes[1] == out["output_sha256"]
        out["input_sha256"] = hashes[0]
    return out


def _tree(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def _side(
    inputs: list[Path], corpus: Path | None, extra: Path | None, scratch: Path
) -> dict[str, Any]:
    import datetime as dt

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from trialship.deid import parse_profile
    from trialship.intake.header_values import without_validation
    from trialship.services.deid_files import Assignment, DeidRun, run_deid

    manifest: dict[str, Any] = {"files": {}}
    with without_validation(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, spec in PROFILES.items():
            profile = _profile(spec)
            for context_name, context in CONTEXTS.items():
                for path in inputs:
                    key = f"{name}/{context_name}/{path}"
                    manifest["files"][key] = _one(path, profile, context)
    if extra is not None:  # one run per private-tags policy: the files remember each other
        for name in ("bench", "all-keep-private", "dates-descriptors-safe-private"):
            out = scratch / f"run-nested-{name}"
            run_deid(
                DeidRun(
                    sources=(extra,),
                    out=out,
                    profile=_profile(PROFILES[name]),
                    assign=Assignment(subject_id="NEST-0001", site_id="S01", timepoint_id="BL"),
                    signing_key=Ed25519PrivateKey.from_private_bytes(b"\x07" * 32),
                    created_at=dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
                )
            )
            manifest[f"run_nested_{name}"] = _tree(out)
    if corpus is not None:
        sys.path.insert(0, str(REPO / "bench"))
        from deid import PROFILE_TOML  # the benchmark's own profile

        for jobs in (1, 2):
            out = scratch / f"run-j{jobs}"
            run_deid(
                DeidRun(
                    sources=(corpus,),
                    out=out,
                    profile=parse_profile(PROFILE_TOML),
                    assign=Assignment(subject_id="BENCH-0001", site_id="S01", timepoint_id="BL"),
                    jobs=jobs,
                    signing_key=Ed25519PrivateKey.from_private_bytes(b"\x07" * 32),
                    created_at=dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
                )
            )
            manifest[f"run_j{jobs}"] = _tree(out)
    return manifest


# -- the driver ----------------------------------------------------------------------------------


def write_nested_private(folder: Path, count: int = 3) -> None:
    """One subject's files whose standard sequences hold private elements (one naming the
    patient) and text with the patient's identifiers: each profile's private-tags policy
    decides them inside the sequence, and the files repeat the same sequences (what the
    engine remembers from one file to the next). Fixed UIDs: both sides read the same bytes."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

    folder.mkdir(parents=True, exist_ok=True)
    for n in range(count):
        ds = Dataset()
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = f"1.2.826.0.1.3680043.8.498.7{n + 1}"
        ds.StudyInstanceUID, ds.SeriesInstanceUID = "1.2.3.4.10", "1.2.3.4.11"
        ds.PatientName, ds.PatientID = "Okafor^Johanna", "MRN40021"
        ds.PatientBirthDate, ds.StudyDate, ds.AccessionNumber = "19610203", "20240105", "A77"
        ds.Modality, ds.InstanceNumber, ds.SeriesNumber = "CT", n + 1, 1
        item = Dataset()
        item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = CTImageStorage, "1.2.3.4.12"
        item.add_new(0x00090010, "LO", "ACME 1.0")
        item.add_new(0x00091001, "LO", "Okafor^Johanna")
        item.add_new(0x00091002, "DS", "1.5")
        ds.ReferencedImageSequence = Sequence([item])
        request = Dataset()
        request.RequestedProcedureID, request.ScheduledProcedureStepID = "A77", "SPS1"
        request.add_new(0x00290010, "LO", "SIEMENS CSA HEADER")
        request.add_new(0x00291008, "CS", "IMAGE NUM 4")
        ds.RequestAttributesSequence = Sequence([request])
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.save_as(folder / f"NESTED{n + 1}.dcm", enforce_file_format=True)


def _inputs(corpus: Path | None, files: int, extra: Path | None) -> list[Path]:
    from pydicom.data import get_testdata_files

    found = sorted(Path(name) for name in get_testdata_files() if Path(name).is_file())
    if extra is not None:
        found += sorted(extra.iterdir())
    if corpus is not None:
        found += sorted(path for path in corpus.rglob("*") if path.is_file())[:files]
    return found


def _run_side(package_root: Path, args: list[str]) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(package_root), PYTHONWARNINGS="ignore")
    done = subprocess.run(
        [sys.executable, __file__, *args, "--side", str(package_root)],
        check=True,
        env=env,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    found: list[str] = []
    for section in sorted(set(old) | set(new)):
        left, right = old.get(section, {}), new.get(section, {})
        for key in sorted(set(left) | set(right)):
            if left.get(key) != right.get(key):
                found.append(f"{section}: {key}")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--baseline", default="0d14442")
    parser.add_argument("--corpus", type=Path, help="benchmark corpus (bench/deid.py --keep)")
    parser.add_argument("--files", type=int, default=200, help="corpus files for the engine check")
    parser.add_argument("--side", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--extra", type=Path, help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.side:
        import trialship

        assert Path(trialship.__file__).resolve().parents[1] == options.side.resolve()
        inputs = _inputs(options.corpus, options.files, options.extra)
        with tempfile.TemporaryDirectory(prefix="deid-identity-") as scratch:
            manifest = _side(inputs, options.corpus, options.extra, Path(scratch))
        print(json.dumps(manifest))
        return 0
    with tempfile.TemporaryDirectory(prefix="deid-nested-") as extra:
        write_nested_private(Path(extra))
        forwarded = ["--files", str(options.files), "--extra", extra]
        if options.corpus:
            forwarded += ["--corpus", str(options.corpus)]
        return _compare(options.baseline, forwarded)


def _compare(baseline: str, forwarded: list[str]) -> int:
    with tempfile.TemporaryDirectory(prefix="deid-baseline-") as folder:
        archive = subprocess.run(
            ["git", "-C", str(REPO), "archive", baseline, "trialship"],
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
        old = _run_side(Path(folder), forwarded)
    new = _run_side(REPO, forwarded)
    differences = _differences(old, new)
    outcomes = [entry for entry in new["files"].values()]
    written = sum(1 for entry in outcomes if "output_sha256" in entry)
    print(
        f"compared {len(outcomes)} (input, profile, context) cases: {written} written, "
        f"{sum(1 for entry in outcomes if entry.get('leaks'))} with leaks, "
        f"{sum(1 for entry in outcomes if 'unreadable' in entry or 'error' in entry)} unreadable"
        f"; runs: {', '.join(f'{k} {len(v)} files' for k, v in new.items() if k != 'files')}"
    )
    bad_hashes = [key for key, entry in new["files"].items() if entry.get("hashes_ok") is False]
    if bad_hashes:
        print(f"output hash differs from written bytes: {bad_hashes[:5]}")
        return 1
    if differences:
        print(f"{len(differences)} difference(s) against {baseline}:")
        for line in differences[:40]:
            print("  " + line)
        return 1
    print(f"identical to {baseline}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
