"""De-identification throughput on files: trialship against dicognito, with cp as the floor.

    python bench/deid.py [--files 1000] [--corpus DIR] [--keep] [--tools cp,dicognito,...]
                         [--repeat N]

Generates a corpus of CT, MR and US files (about 500 MB for 1,000 files) whose headers hold PHI
(names, IDs, dates, accession, institution, nested sequences, private tags), then times each tool
in turn, each in its own subprocess so its peak RSS is its own: read -> de-identify -> write, on
the same files, from the page cache (cp runs first and warms it). trialship runs the real
pipeline (trialship.services.deid_files: leak check, hashes, receipts, report). With --repeat N
the tools take turns N times and each row shows its fastest run: on a shared machine the
fastest run is the one least disturbed by other work. The CPU column (user + system seconds of
the tool and its children) is the steadier measure when the machine is busy.

Each run's output is kept until the end (about 0.5 GB a run). Deleting it between runs charged
the next run for it: on an ext4 file system without a journal (these machines' root), creating
a file scans the inodes of its block group freed in the last minute (`recently_deleted` in the
kernel's `find_inode_bit`), and after a run's 1,000 files were deleted each new file took
0.5-0.8 ms of system time instead of 0.02 ms. Runs of the benchmark (or tests) deleted
minutes before in the same block group do that too: the first line after the corpus says what
creating a file costs in the runs' folder. A folder directly under the file system's root gets
a block group of its own (`TMPDIR=/bench-1 python bench/deid.py ...`).

The last line gives cp's own ratio to dicognito: every tool writes the same bytes, so no tool
can show more. It is worth reading first. On some of these virtual machines the guest hands
the memory it frees back to the host (free page reporting), and the first write to such a page
then costs a fault in the host: the page cache fills at 0.3-0.4 GB/s instead of several GB/s,
cp takes 1.4-2.0 s for the corpus instead of 0.2-0.4 s, and that ceiling falls from about 20x
to about 4x. Touching fresh memory just before each run did not help reliably: freed pages go
back to the host within half a second.

trialship's modules are byte-compiled first, as installing it does (pip compiled dicognito's):
an editable install on a machine with PYTHONDONTWRITEBYTECODE=1 (these) would compile them again
in every timed run, about 0.15 s of each.

dicognito is a benchmark-only tool: ``pip install --no-deps dicognito==0.19.0``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    MRImageStorage,
    UltrasoundMultiFrameImageStorage,
)

TOOLS = ("cp", "dicognito", "pydicom", "trialship-j1", "trialship-j2")
PROFILE_TOML = """\
[trial]
sponsor_name = "Bench Sponsor"
protocol_id = "BENCH-1"

[deid]
name = "bench"
options = ["retain_longitudinal_modified_dates", "clean_descriptors"]
uid_secret = "bench-secret-0123456789"
"""

_FIRST = ["Johanna", "Marcus", "Elena", "Pieter", "Aiko", "Liam", "Sofia", "Noah", "Greta"]
_LAST = ["Smithson", "Okafor", "Lindqvist", "Moreau", "Tanaka", "Brennan", "Castillo", "Novak"]


# -- the corpus ----------------------------------------------------------------------------------


def _code(value: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = "99LOCAL"
    item.CodeMeaning = meaning
    return item


def _header(rng: random.Random, patient: int, study: str, modality: str) -> Dataset:
    first, last = _FIRST[patient % len(_FIRST)], _LAST[patient % len(_LAST)]
    mrn = f"MRN{4711000 + patient}"
    accession = f"ACC{900000 + patient * 7}"
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.InstanceCreationDate = "20240110"
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = "20240110"
    ds.StudyTime = ds.SeriesTime = ds.AcquisitionTime = ds.ContentTime = "101500.000"
    ds.AccessionNumber = accession
    ds.Modality = modality
    ds.Manufacturer = "BenchVendor"
    ds.InstitutionName = "Springfield Memorial Hospital"
    ds.InstitutionAddress = "1 Hospital Road, Springfield"
    ds.ReferringPhysicianName = "Welby^Marcus^^Dr"
    ds.StationName = "CT-SPRING-01"
    ds.StudyDescription = f"{modality} chest for {first} {last}"
    ds.ProcedureCodeSequence = [_code("CTCHEST", "CT Chest")]
    ds.SeriesDescription = "Axial 5mm"
    ds.InstitutionalDepartmentName = "Radiology"
    ds.PerformingPhysicianName = "House^Gregory"
    ds.OperatorsName = "Tech^Tina"
    ds.ManufacturerModelName = "Model 9"
    ds.ReferencedStudySequence = [Dataset()]
    ds.ReferencedStudySequence[0].ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"
    ds.ReferencedStudySequence[0].ReferencedSOPInstanceUID = study + ".99"
    ds.PatientName = f"{last}^{first}^Maria"
    ds.PatientID = mrn
    ds.IssuerOfPatientID = "SPRINGFIELD"
    ds.PatientBirthDate = f"19{50 + patient % 40}0315"
    ds.PatientSex = "F" if patient % 2 else "M"
    ds.OtherPatientIDsSequence = [Dataset()]
    ds.OtherPatientIDsSequence[0].PatientID = f"OLD{mrn}"
    ds.OtherPatientIDsSequence[0].IssuerOfPatientID = "LEGACY"
    ds.PatientAge = "071Y"
    ds.PatientSize = "1.70"
    ds.PatientWeight = "70"
    ds.PatientAddress = "12 Elmwood Avenue^Springfield"
    ds.PatientTelephoneNumbers = "+1 555 867 5309"
    ds.EthnicGroup = "N/A"
    ds.PatientComments = f"{first} prefers mornings; MRN {mrn}"
    ds.BodyPartExamined = "CHEST"
    ds.SliceThickness = "5.0"
    ds.KVP = "120"
    ds.DeviceSerialNumber = "SN-99812"
    ds.SoftwareVersions = "VB42"
    ds.ProtocolName = f"Chest {last}"
    ds.PatientPosition = "HFS"
    ds.StudyInstanceUID = study
    ds.StudyID = f"S{patient}"
    ds.RequestAttributesSequence = [Dataset()]
    request = ds.RequestAttributesSequence[0]
    request.AccessionNumber = accession
    request.RequestedProcedureID = f"RP{patient}"
    request.ScheduledProcedureStepID = f"SPS{patient}"
    request.RequestedProcedureCodeSequence = [_code("CTCHEST", "CT Chest")]
    request.ReferencedStudySequence = [Dataset()]
    request.ReferencedStudySequence[0].ReferencedSOPInstanceUID = study + ".98"
    ds.PositionReferenceIndicator = ""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelSpacing = [round(rng.uniform(0.5, 0.9), 4)] * 2
    ds.WindowCenter = "40"
    ds.WindowWidth = "400"
    ds.RescaleIntercept = "-1024"
    ds.RescaleSlope = "1"
    ds.RequestingPhysician = "Quinn^Michaela"
    ds.RequestedProcedureDescription = f"CT chest, {first} {last}"
    ds.PerformedProcedureStepStartDate = "20240110"
    ds.PerformedProcedureStepID = f"PPS{patient}"
    # Private tags: a vendor block with a name in it and a binary blob.
    block = ds.private_block(0x0029, "BENCHVENDOR HEADER", create=True)
    block.add_new(0x10, "LO", f"{last}^{first}")
    block.add_new(0x11, "OB", b"\x01\x02CSA" + bytes(rng.getrandbits(8) for _ in range(500)))
    return ds


def _series(modality: str) -> tuple[str, int, int, int, int]:
    """(SOP class, rows, columns, samples, frames)."""
    if modality == "CT":
        return CTImageStorage, 512, 512, 1, 1
    if modality == "MR":
        return MRImageStorage, 256, 256, 1, 1
    return UltrasoundMultiFrameImageStorage, 480, 640, 3, 2


def generate_corpus(folder: Path, count: int, seed: int = 7) -> tuple[int, int]:
    """`count` files (60% CT, 30% MR, 10% US multi-frame) in `folder`; (files, bytes)."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    noise = bytes(rng.getrandbits(8) for _ in range(1 << 16))
    total = 0
    kinds = ["CT"] * 6 + ["MR"] * 3 + ["US"]
    per_study = 40
    study = series = ""
    for index in range(count):
        modality = kinds[index % len(kinds)]
        patient = index // per_study
        if index % per_study == 0:
            study = f"1.2.826.0.1.3680043.99.{rng.getrandbits(60)}"
        if index % 10 == 0:
            series = f"{study}.{index // 10 + 1}"

        sop_class, rows, columns, samples, frames = _series(modality)
        ds = _header(rng, patient, study, modality)
        ds.SOPClassUID = sop_class
        ds.SOPInstanceUID = f"{series}.{index % 10 + 1}"
        ds.SeriesInstanceUID = series
        ds.FrameOfReferenceUID = study + ".1"
        ds.SeriesNumber = index // 10 + 1
        ds.InstanceNumber = index % 10 + 1
        ds.ImagePositionPatient = [0, 0, index % 10 * 5]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.Rows, ds.Columns, ds.SamplesPerPixel = rows, columns, samples
        if samples == 3:
            ds.PhotometricInterpretation = "RGB"
            ds.PlanarConfiguration = 0
            ds.NumberOfFrames = frames
            ds.BitsAllocated = ds.BitsStored = 8
            ds.HighBit = 7
        else:
            ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
        ds.PixelRepresentation = 0
        size = rows * columns * samples * frames * ds.BitsAllocated // 8
        ds.PixelData = (noise * (size // len(noise) + 1))[:size]
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = sop_class
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        path = folder / f"{modality}{index:05d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        total += path.stat().st_size
    return count, total


# -- the tools (each runs in its own subprocess) -------------------------------------------------


def _files(src: Path) -> list[Path]:
    return sorted(path for path in src.rglob("*") if path.is_file())


def run_cp(src: Path, out: Path) -> None:
    subprocess.run(["cp", "-r", str(src), str(out / "copy")], check=True)


def run_dicognito(src: Path, out: Path) -> None:
    import pydicom
    from dicognito.anonymizer import Anonymizer

    anonymizer = Anonymizer(seed="bench")
    for path in _files(src):
        ds = pydicom.dcmread(path)
        anonymizer.anonymize(ds)
        ds.save_as(out / path.name)


def run_pydicom(src: Path, out: Path) -> None:
    import pydicom

    for path in _files(src):
        ds = pydicom.dcmread(path)
        ds.PatientName = "ANON"
        ds.PatientID = "ANON"
        ds.save_as(out / path.name)


def run_trialship(src: Path, out: Path, jobs: int) -> None:
    from trialship.deid import parse_profile
    from trialship.services.deid_files import Assignment, DeidRun, run_deid
    from trialship.signing import load_or_create_signing_key

    key = load_or_create_signing_key(out / "_key")
    result = run_deid(
        DeidRun(
            sources=(src,),
            out=out / "deid",
            profile=parse_profile(PROFILE_TOML),
            assign=Assignment(subject_id="BENCH-0001", site_id="S01", timepoint_id="BL"),
            jobs=jobs,
            signing_key=key,
        )
    )
    if result.rejected:
        reasons = {entry.reason for entry in result.rejected}
        raise SystemExit(f"{len(result.rejected)} rejected: {sorted(reasons)[:3]}")


def _child(tool: str, src: Path, out: Path) -> None:
    warnings.simplefilter("ignore")
    start = time.perf_counter()
    if tool == "cp":
        run_cp(src, out)
    elif tool == "dicognito":
        run_dicognito(src, out)
    elif tool == "pydicom":
        run_pydicom(src, out)
    else:
        run_trialship(src, out, int(tool.rsplit("j", 1)[1]))
    elapsed = time.perf_counter() - start
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    print(
        json.dumps(
            {
                "seconds": elapsed,
                "cpu_seconds": cpu,
                "rss_kb": own.ru_maxrss,
                "children_rss_kb": children.ru_maxrss,
            }
        )
    )


# -- the driver ----------------------------------------------------------------------------------


def _byte_compile_trialship() -> None:
    """What installing trialship does to its modules (see the docstring); a no-op when they are
    compiled already, and harmless where they cannot be written."""
    import compileall

    import trialship

    compileall.compile_dir(Path(trialship.__file__).parent, quiet=2)


def _measure(tool: str, src: Path, runs: Path) -> dict[str, float]:
    """One run of `tool` into a new folder under `runs`, left there (see the docstring)."""
    out = Path(tempfile.mkdtemp(prefix=f"{tool}-", dir=runs))
    _settle(src)
    done = subprocess.run(
        [sys.executable, __file__, "--child", tool, "--corpus", str(src), "--out", str(out)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    if tool.startswith("trialship"):
        _check_outputs(out / "deid")
    return result


def _check_outputs(out: Path) -> None:
    """Untimed: each output file holds what the run's report says it wrote (its SHA-256), so
    a speed is never that of a run whose files came out wrong."""
    report = json.loads((out / "deid-report.json").read_text())
    for entry in report["inputs"]:
        digest = hashlib.sha256((out / entry["output"]).read_bytes()).hexdigest()
        if digest != entry["output_sha256"]:
            raise SystemExit(f"{entry['output']}: not what the run wrote (its SHA-256 differs)")


def _creation_ms(runs: Path, count: int = 200) -> float:
    """Untimed: what creating an empty file costs in the runs' folder now (see the docstring:
    files deleted nearby in the last minutes make it cost 25 times more), left there."""
    probe = runs / "creation-probe"
    probe.mkdir()
    start = time.perf_counter()
    for number in range(count):
        os.close(os.open(probe / f"{number}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    return (time.perf_counter() - start) * 1000 / count


def _settle(src: Path) -> None:
    """Untimed, before each run: write back what earlier runs left dirty (else the kernel
    writes it back during this run, on its clock), and read every corpus file so each tool
    starts with the corpus in the page cache (the kernel here reclaims idle pages)."""
    os.sync()
    for path in _files(src):
        path.read_bytes()


def main(args: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--corpus", type=Path, help="reuse or create the corpus here")
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child", choices=TOOLS, help=argparse.SUPPRESS)
    parser.add_argument("--tools", default=",".join(TOOLS))
    parser.add_argument("--keep", action="store_true", help="keep a generated corpus")
    parser.add_argument("--repeat", type=int, default=1, help="runs per tool; the fastest counts")
    options = parser.parse_args(args)
    unknown = sorted(set(options.tools.split(",")) - set(TOOLS) - {""})
    if unknown:
        parser.error(f"unknown tool(s) {', '.join(unknown)}; choose from {', '.join(TOOLS)}")
    if options.child:
        _child(options.child, options.corpus, options.out)
        return

    scratch = Path(tempfile.mkdtemp(prefix="trialship-bench-"))
    corpus = options.corpus or scratch / "corpus"
    if not corpus.exists() or not any(corpus.iterdir()):
        start = time.perf_counter()
        generate_corpus(corpus, options.files)
        print(f"generated {options.files} files in {time.perf_counter() - start:.1f}s")
    files = _files(corpus)
    size = sum(path.stat().st_size for path in files)
    print(f"corpus: {len(files)} files, {size / 1e6:.0f} MB ({corpus})")
    tools = [tool for tool in options.tools.split(",") if tool]
    if any(tool.startswith("trialship") for tool in tools):
        _byte_compile_trialship()
    runs = scratch / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    rows: dict[str, dict[str, float]] = {}
    times: dict[str, list[float]] = {tool: [] for tool in tools}
    print(
        f"creating a file here: {_creation_ms(runs):.2f} ms (each tool creates "
        f"{len(files)}; about 0.02 ms where nothing near was deleted in the last minutes)"
    )
    try:
        if "cp" in tools:
            _measure("cp", corpus, runs)  # warm the page cache
        for _ in range(max(1, options.repeat)):
            for tool in tools:
                row = _measure(tool, corpus, runs)
                times[tool].append(row["seconds"])
                if tool not in rows or row["seconds"] < rows[tool]["seconds"]:
                    rows[tool] = row
    finally:
        shutil.rmtree(runs, ignore_errors=True)
        if not options.keep and not options.corpus:
            shutil.rmtree(scratch, ignore_errors=True)
    base = rows.get("dicognito", {}).get("seconds")
    base_median = statistics.median(times["dicognito"]) if times.get("dicognito") else None
    floor = rows.get("cp", {}).get("seconds")
    print(
        f"{'tool':<14}{'seconds':>9}{'files/s':>10}{'MB/s':>9}{'peak RSS MB':>13}"
        f"{'x cp time':>11}{'vs dicognito':>14}{'CPU s':>8}{'median s':>10}{'median vs':>11}"
    )
    for tool, row in rows.items():
        seconds = row["seconds"]
        median = statistics.median(times[tool])
        rss = max(row["rss_kb"], row["children_rss_kb"]) / 1024
        print(
            f"{tool:<14}{seconds:>9.2f}{len(files) / seconds:>10.0f}{size / 1e6 / seconds:>9.0f}"
            f"{rss:>13.0f}{(seconds / floor if floor else 0):>11.1f}"
            f"{(base / seconds if base else 0):>13.1f}x{row.get('cpu_seconds', 0):>8.2f}"
            f"{median:>10.2f}{(base_median / median if base_median else 0):>10.1f}x"
        )
    print(
        "CPU s: user + system time of the tool's process and its children (on a shared "
        "machine it moves less than the wall time); the first columns are each tool's fastest "
        "run, median s and median vs its median run"
    )
    if base and base_median and floor and times.get("cp"):
        # Every tool writes what cp writes: cp's ratio is the most any tool can show here.
        print(
            f"ceiling: cp, which only copies the files, is {base / floor:.1f}x dicognito "
            f"(medians {base_median / statistics.median(times['cp']):.1f}x) on this machine"
        )


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
