"""Benchmark: trialship's senders against OpenSSH `sftp -b` and dcmtk `storescu`, same peers.

    python bench/transfer.py                  # 1,000 files of ~490 KB (about 490 MB)
    python bench/transfer.py --files 200      # a quicker look
    python bench/transfer.py --only sftp      # or dicom
    python bench/transfer.py --variants       # also tuning variants and a plain pynetdicom

sshd runs on 127.0.0.1 in a private mount namespace; storescp runs in a private network
namespace with TCP_NODELAY=1 (dcmtk leaves Nagle on otherwise), and storescu and trialship's
C-STORE reach it from inside that namespace. The variants run in turn, round after round
(alternating, so a busy moment on a shared machine hurts them alike), on the same files
(written back to disk first, then in the page cache); each time is the wall clock of the
whole send, trialship's including the package build (headers) and hashing, and its
journal's fsyncs. The table gives the best round and the spread (median, worst).

What the peers receive goes to --peer-storage (default /dev/shm when there is one): a real
peer's disk is not the sender's, and on one machine the peer's writeback of ~500 MB per
round would be flushed by our journal's fsync (ext4 data=ordered) and stall the next round
of whichever tool comes after. `--peer-storage WORKDIR` keeps everything on one disk.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the peers live with the tests

from tests.integration.transfer.peers import STORESCU, NetNamespace, Sshd, Storescp
from tests.integration.transfer.samples import ct_tree
from trialship.transfer import Journal, build_package, dimse, parse_destination, send, sftp

Variant = tuple[str, Callable[[], None], Callable[[], None]]  # label, clean, run


def _setup_argparser(args: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--size", type=int, default=490_000, help="approximate bytes per file")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument(
        "--peer-storage",
        type=Path,
        default=Path("/dev/shm") if Path("/dev/shm").is_dir() else None,
        help="where sshd and storescp write what they receive (default /dev/shm)",
    )
    parser.add_argument("--only", choices=["sftp", "dicom"])
    parser.add_argument("--runs", type=int, default=3, help="rounds (best and spread shown)")
    parser.add_argument("--variants", action="store_true", help="also time tuning variants")
    return parser.parse_args(args)


def rounds(variants: list[Variant], runs: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {label: [] for label, _, _ in variants}
    for _ in range(runs):
        for label, clean, run in variants:
            clean()
            start = time.perf_counter()
            run()
            times[label].append(time.perf_counter() - start)
    return times


def trialship_send(
    src: Path,
    url: str,
    journals: Path,
    call: Callable[..., Any] | None = None,
    *,
    hashed: bool = False,
    setup: Callable[[], Callable[[], None]] | None = None,
    **overrides: Any,
) -> Callable[[], None]:
    def run() -> None:
        undo = setup() if setup else None
        try:
            package = build_package([src], hashed=hashed)  # hashed=False: as `trialship send`
            destination = parse_destination(url, **overrides)
            path = journals / f"{time.monotonic_ns()}.jsonl"
            with Journal(path, destination.describe()) as journal:
                receipt = (call or (lambda f, *a: f(*a)))(send, package, destination, journal)
        finally:
            if undo:
                undo()
        if not receipt.complete:
            raise SystemExit(f"incomplete: {receipt.failed[:1]}")

    return run


def _patch(module: Any, name: str, value: Any) -> Callable[[], Callable[[], None]]:
    def setup() -> Callable[[], None]:
        saved = getattr(module, name)
        setattr(module, name, value)
        return lambda: setattr(module, name, saved)

    return setup


def sftp_variants(
    work: Path, storage: Path, src: Path, args: argparse.Namespace, server: Sshd
) -> list[Variant]:
    remote = storage / "remote"

    def clean() -> None:
        shutil.rmtree(remote, ignore_errors=True)
        remote.mkdir(parents=True)

    batch = work / "batch.txt"
    batch.write_text(f"put -r {src} {remote}/openssh\n")
    openssh = [
        "sftp", "-F", "/dev/null", "-q", "-b", str(batch), "-i", str(server.client_key),
        "-o", "IdentitiesOnly=yes", "-o", f"UserKnownHostsFile={server.known_hosts}",
        "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-P", str(server.port),
        "root@127.0.0.1",
    ]  # fmt: skip
    auth = {"identity": server.client_key, "known_hosts": server.known_hosts}
    url = server.url(remote / "trialship")
    variants: list[Variant] = [
        (
            "OpenSSH sftp -b",
            clean,
            lambda: subprocess.run(openssh, check=True, stdout=subprocess.DEVNULL),
        ),
        ("trialship SFTP", clean, trialship_send(src, url, work, **auth)),
    ]
    if args.variants:
        variants += [
            (
                "trialship SFTP, hashed before sending",
                clean,
                trialship_send(src, url, work, hashed=True, **auth),
            ),
            (
                "trialship SFTP, 32 KiB requests",
                clean,
                trialship_send(
                    src, url, work, setup=_patch(sftp, "MAX_REQUEST", sftp.DEFAULT_REQUEST), **auth
                ),
            ),
            (
                "trialship SFTP, aes128-ctr",
                clean,
                trialship_send(
                    src, url, work, setup=_patch(sftp, "CIPHERS", ("aes128-ctr",)), **auth
                ),
            ),
        ]
    return variants


def plain_pynetdicom(src: Path, url: str, call: Callable[..., Any]) -> Callable[[], None]:
    """The sender before the wire: pynetdicom's send_c_store of each file (chunked, no decode)."""
    from pynetdicom import _config

    def run() -> None:
        package = build_package([src])
        destination = parse_destination(url)
        assert isinstance(destination, dimse.DicomDestination)

        def store() -> None:
            _config.STORE_SEND_CHUNKED_DATASET = True
            assoc = dimse.associate(destination, dimse._pairs(package.files))
            try:
                with dimse._reactor_paused(assoc):
                    for item in package.files:
                        if "Status" not in assoc.send_c_store(item.path):
                            raise SystemExit("pynetdicom: no status")
            finally:
                assoc.release()
                _config.STORE_SEND_CHUNKED_DATASET = False

        call(store)

    return run


def dicom_variants(
    work: Path, src: Path, args: argparse.Namespace, ns: NetNamespace, scp: Storescp
) -> list[Variant]:
    def clean() -> None:
        shutil.rmtree(scp.received, ignore_errors=True)
        scp.received.mkdir()

    storescu = ns.command(
        "env", "TCP_NODELAY=1", STORESCU, "-aet", "TRIALSHIP", "-aec", scp.aet, "+sd", "+r",
        "127.0.0.1", str(scp.port), str(src),
    )  # fmt: skip
    url = scp.url()
    variants: list[Variant] = [
        ("dcmtk storescu", clean, lambda: subprocess.run(storescu, check=True)),
        ("trialship C-STORE", clean, trialship_send(src, url, work, ns.call)),
    ]
    if args.variants:
        variants += [
            (
                "trialship C-STORE, hashed before sending",
                clean,
                trialship_send(src, url, work, ns.call, hashed=True),
            ),
            (
                "trialship C-STORE, 2 associations",
                clean,
                trialship_send(src, url, work, ns.call, associations=2),
            ),
            ("plain pynetdicom C-STORE (before)", clean, plain_pynetdicom(src, url, ns.call)),
        ]
    return variants


def table(times: dict[str, list[float]], total: int) -> None:
    baseline = {"SFTP": "OpenSSH sftp -b", "C-STORE": "dcmtk storescu"}
    best = {label: min(values) for label, values in times.items()}
    print(
        "\n| variant | best s | MB/s | x reference (best) | median s | worst s |"
        "\n|---|---|---|---|---|---|"
    )
    for label, values in times.items():
        ref = next((best[b] for k, b in baseline.items() if k in label and b in best), None)
        ratio = f"{best[label] / ref:.2f}" if ref and label not in baseline.values() else "1.00"
        print(
            f"| {label} | {best[label]:.2f} | {total / 1e6 / best[label]:.0f} | {ratio} "
            f"| {statistics.median(values):.2f} | {max(values):.2f} |"
        )


def main(argv: list[str] | None = None) -> None:
    args = _setup_argparser(argv)
    work = Path(tempfile.mkdtemp(prefix="trialship-bench-", dir=args.workdir))
    storage = Path(tempfile.mkdtemp(prefix="trialship-bench-peers-", dir=args.peer_storage))
    servers: list[Callable[[], None]] = []
    try:
        src = work / "src"
        t = time.perf_counter()
        ct_tree(src, args.files, size=args.size)
        total = sum(p.stat().st_size for p in src.rglob("*.dcm"))
        generated = time.perf_counter() - t
        os.sync()  # the tree at rest: its writeback would stall our journal's first fsyncs
        print(
            f"generated {args.files} files, {total / 1e6:.0f} MB in {generated:.1f} s "
            f"(+{time.perf_counter() - t - generated:.1f} s sync); peers write to {storage}"
        )
        t = time.perf_counter()
        build_package([src])
        print(f"(hashing + header reading alone: {time.perf_counter() - t:.2f} s)")
        t = time.perf_counter()
        build_package([src], hashed=False)
        print(f"(header reading alone: {time.perf_counter() - t:.2f} s)")
        times: dict[str, list[float]] = {}
        if args.only in (None, "sftp"):
            server = Sshd(work).start()
            servers.append(server.stop)
            times |= rounds(sftp_variants(work, storage, src, args, server), args.runs)
        if args.only in (None, "dicom"):
            ns = NetNamespace()
            servers.append(ns.close)
            scp = Storescp(ns, storage / "storescp").start()
            servers.insert(0, scp.stop)
            times |= rounds(dicom_variants(work, src, args, ns, scp), args.runs)
        table(times, total)
    finally:
        for stop in servers:
            stop()
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(storage, ignore_errors=True)


if __name__ == "__main__":
    main()
