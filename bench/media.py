"""Benchmark: trialship DICOMDIR + ISO against dcmtk dcmmkdir + genisoimage on the same files.

    python bench/media.py                 # 1,000 files of ~490 KB (about 490 MB)
    python bench/media.py --files 10000   # 10,000 files (~4.9 GB of disk in the work folder)
    python bench/media.py --repeat 5      # each variant 5 times, in turn: best, median, spread

Each variant runs in its own child process, in turn (round-robin when repeated, so a burst of
load on a shared machine hits every variant alike), so peak RSS (ru_maxrss) belongs to that
variant alone: the larger of the child's own and its largest child process's (dcmtk's tools,
trialship's hashing processes). Files are generated once and read again (untimed) before each
run so that they are in the page cache for every variant: the figures compare CPU and write
cost, not cold reads. trialship's modules are
imported before its clock starts (about 0.3 s; dcmtk's clock includes starting its two
processes). CPU seconds (user + system, all threads and child processes) are printed too: on
a busy machine they move far less than wall time.

trialship's variants: "trialship" is what `media build` runs (headers read, DICOMDIR, image
written with the files hashed for MANIFEST.CSV as they are copied, the image read back while it
is written: the whole image and every file by extent hashed from what was written, then
checked against the finished image's directory and the manifest; fsync); "trialship-noverify"
writes the same image with no read-back (the image's SHA-256 is not taken). Both fsync the
image before they stop their clock (a disc is marked ready only once it is on disk);
genisoimage does not, so its flush is timed apart and the "dcmtk + fsync" row, and the
"vs +fsync" column, add it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
PER_SERIES = 100
PER_PATIENT = 500


def _setup_argparser(args: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--size", type=int, default=490_000, help="approximate bytes per file")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each variant, in turn")
    parser.add_argument(
        "--keep", type=Path, default=None, help="generate into (or reuse) this folder, keep it"
    )
    parser.add_argument("--one", choices=["trialship", "trialship-noverify", "dcmtk"])
    parser.add_argument("--src", type=Path)
    parser.add_argument("--out", type=Path)
    return parser.parse_args(args)


def generate(root: Path, count: int, size: int) -> list[Path]:
    """CT files in a PS3.10 layout dcmmkdir accepts: DICOM/Pn/Sn/En/In (same as trialship's)."""
    rows = 512
    columns = max(1, (size - 1_000) // (rows * 2))
    block = bytearray(os.urandom(rows * columns * 2))
    paths = []
    study = series = ""
    for n in range(count):
        p, s, e, i = n // PER_PATIENT, 0, (n % PER_PATIENT) // PER_SERIES, n % PER_SERIES
        if n % PER_PATIENT == 0:
            study = generate_uid()
        if n % PER_SERIES == 0:
            series = generate_uid()
        ds = Dataset()
        ds.SOPClassUID = UID(CT_IMAGE)
        ds.SOPInstanceUID = generate_uid()
        ds.StudyDate, ds.StudyTime, ds.AccessionNumber = "20240105", "101500", ""
        ds.Modality, ds.StudyDescription = "CT", "BASELINE"
        ds.PatientName, ds.PatientID = f"SUBJECT^{p + 1:04d}", f"SUBJ{p + 1:04d}"
        ds.PatientIdentityRemoved = "YES"
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.StudyID, ds.SeriesNumber, ds.InstanceNumber = "1", e + 1, i + 1
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.Rows, ds.Columns = rows, columns
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        block[:8] = n.to_bytes(8, "little")  # every file hashes differently
        ds.PixelData = bytes(block)
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        folder = root / "DICOM" / f"P{p + 1:07d}" / f"S{s + 1:07d}" / f"E{e + 1:07d}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"I{i + 1:07d}"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def run_trialship(src: Path, out: Path, verify: bool) -> dict[str, float]:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from trialship.media.build import DiscFile, build_disc
    from trialship.media.capacity import Medium
    from trialship.media.dicomdir import number_entries
    from trialship.services.media_build import collect_paths, read_sources

    start = time.perf_counter()
    # As `media build` reads its sources: every header (the files are hashed as they are
    # copied onto the disc).
    sources, _ = read_sources(list(collect_paths([src / "DICOM"])), out.parent)
    by_sop = {s.entry.sop_instance_uid: s for s in sources}
    files = []
    for e in number_entries(s.entry for s in sources):
        source = by_sop[e.sop_instance_uid]
        assert e.file_id is not None
        files.append(DiscFile(source.path, e.file_id, source.entry, source.sha256, source.stamp))
    headers = time.perf_counter()
    total = sum(os.stat(f.src_path).st_size for f in files)
    medium = Medium.CD80 if total < 650e6 else Medium.DVD if total < 4.5e9 else Medium.DVD_DL
    built = build_disc(
        files,
        out,
        fileset_id="BENCH",
        fileset_uid=generate_uid(),
        medium=medium,
        readme_text="bench",
        verify=verify,
    )
    done = time.perf_counter()
    return {"headers_s": headers - start, "build_s": done - headers, "image_bytes": built.bytes}


def run_dcmtk(src: Path, out: Path) -> dict[str, float]:
    start = time.perf_counter()
    subprocess.run(["dcmmkdir", "+r", "DICOM"], cwd=src, check=True, capture_output=True)
    dicomdir = time.perf_counter()
    subprocess.run(["genisoimage", "-quiet", "-o", str(out), str(src)], check=True)
    done = time.perf_counter()
    # genisoimage leaves the image in the page cache; trialship's is on disk when it is marked
    # ready. The flush is timed apart: the "dcmtk + fsync" row adds it.
    fd = os.open(out, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    flush = time.perf_counter() - done
    (src / "DICOMDIR").unlink()
    return {
        "headers_s": dicomdir - start,
        "build_s": done - dicomdir,
        "image_bytes": out.stat().st_size,
        "flush_s": flush,
    }


def child(args: argparse.Namespace) -> None:
    if args.one != "dcmtk":
        # Imported before the clock starts (about 0.3 s): the figures compare the work, as
        # the dcmtk variant's clock starts with its tools' processes.
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        import trialship.services.media_build  # noqa: F401
    start = time.perf_counter()
    before = _usage()
    if args.one == "dcmtk":
        result = run_dcmtk(args.src, args.out)
    else:
        result = run_trialship(args.src, args.out, verify=args.one == "trialship")
    after = _usage()
    result.update(
        total_s=time.perf_counter() - start - result.get("flush_s", 0.0),
        peak_rss_mb=max(after[1], after[2]) / 1024,
        cpu_s=after[0] - before[0],
    )
    print(json.dumps(result))


def _usage() -> tuple[float, int, int]:
    """CPU seconds of this process (all threads) and its children (dcmtk's tools, trialship's
    hashing processes), and the peak RSS in kB of this process and of its largest child."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    return cpu, own.ru_maxrss, children.ru_maxrss


VARIANTS = ("trialship", "trialship-noverify", "dcmtk")


def main(args: list[str] | None = None) -> None:
    opts = _setup_argparser(args)
    if opts.one:
        child(opts)
        return
    for tool in ("dcmmkdir", "genisoimage"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is missing: install dcmtk and genisoimage")
    work = Path(tempfile.mkdtemp(prefix="trialship-bench-", dir=opts.workdir))
    try:
        src = _source(opts, work)
        runs: dict[str, list[dict[str, float]]] = {v: [] for v in VARIANTS}
        for _ in range(opts.repeat):
            for variant in VARIANTS:
                _warm(src)
                out = work / f"{variant}.iso"
                command = [sys.executable, __file__, "--one", variant]
                proc = subprocess.run(
                    [*command, "--src", str(src), "--out", str(out)],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                runs[variant].append(json.loads(proc.stdout.strip().splitlines()[-1]))
                out.unlink()
        _report(runs)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _warm(src: Path) -> None:
    """Read every source file (untimed) so each variant starts with them in the page cache:
    the kernel may have dropped some since the last run (here DAMON reclaims idle pages)."""
    for path in src.rglob("*"):
        if path.is_file():
            with path.open("rb") as fp:
                while fp.read(1 << 22):
                    pass


def _source(opts: argparse.Namespace, work: Path) -> Path:
    src = opts.keep if opts.keep is not None else work / "src"
    t = time.perf_counter()
    if opts.keep is not None and (src / "DICOM").is_dir():
        paths = sorted(p for p in (src / "DICOM").rglob("I*") if p.is_file())
        how = "reused"
    else:
        paths = generate(src, opts.files, opts.size)
        how = "generated"
    payload = sum(p.stat().st_size for p in paths)
    print(f"{len(paths)} files, {payload / 1e6:.0f} MB, {how} in {time.perf_counter() - t:.1f} s")
    return src


def _report(runs: dict[str, list[dict[str, float]]]) -> None:
    runs["dcmtk + fsync"] = [
        {**r, "build_s": r["build_s"] + r["flush_s"], "total_s": r["total_s"] + r["flush_s"]}
        for r in runs["dcmtk"]
    ]
    best = {name: min(rs, key=lambda r: r["total_s"]) for name, rs in runs.items()}
    base = best["dcmtk"]["total_s"]
    synced = best["dcmtk + fsync"]["total_s"]
    print(
        f"{'variant (best of ' + str(len(runs['dcmtk'])) + ')':<24}{'step 1 s':>9}{'step 2 s':>9}"
        f"{'total s':>9}{'median':>8}{'spread':>13}{'CPU s':>7}{'RSS MB':>8}{'vs peers':>9}"
        f"{'vs +fsync':>10}"
    )
    for name, r in best.items():
        totals = sorted(x["total_s"] for x in runs[name])
        median = totals[len(totals) // 2]
        spread = f"{totals[0]:.2f}-{totals[-1]:.2f}"
        rss = max(x["peak_rss_mb"] for x in runs[name])
        print(
            f"{name:<24}{r['headers_s']:>9.2f}{r['build_s']:>9.2f}{r['total_s']:>9.2f}"
            f"{median:>8.2f}{spread:>13}{r['cpu_s']:>7.2f}{rss:>8.0f}{r['total_s'] / base:>8.2f}x"
            f"{r['total_s'] / synced:>9.2f}x"
        )
    print("trialship: step 1 = read every header; step 2 = DICOMDIR, SHA-256s, image (+ check)")
    print("dcmtk: step 1 = dcmmkdir +r (headers + DICOMDIR); step 2 = genisoimage (no hashes)")
    print("vs peers = best total / best total of dcmmkdir + genisoimage; RSS = the largest run")
    print("vs +fsync = the same against the peers with their image flushed to disk, as trialship's")


if __name__ == "__main__":
    main()
