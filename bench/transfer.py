"""Benchmark: trialship's senders against OpenSSH `sftp -b` and dcmtk `storescu`, same peers.

    python bench/transfer.py                  # 1,000 files of ~490 KB (about 490 MB)
    python bench/transfer.py --files 200      # a quicker look
    python bench/transfer.py --only sftp      # or dicom

sshd runs on 127.0.0.1 in a private mount namespace; storescp runs in a private network
namespace with TCP_NODELAY=1 (dcmtk leaves Nagle on otherwise), and storescu and trialship's
C-STORE reach it from inside that namespace. Each variant runs in turn on the same files
(warm page cache); times are wall clock of the whole send, trialship's including hashing.
"""

from __future__ import annotations

import argparse
import shutil
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


def _setup_argparser(args: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--size", type=int, default=490_000, help="approximate bytes per file")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--only", choices=["sftp", "dicom"])
    parser.add_argument("--runs", type=int, default=2, help="runs per variant (best is kept)")
    parser.add_argument("--variants", action="store_true", help="also time tuning variants")
    return parser.parse_args(args)


def timed(func: Callable[[], Any], runs: int, before: Callable[[], None]) -> float:
    best = float("inf")
    for _ in range(runs):
        before()
        start = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - start)
    return best


def trialship_send(
    src: Path, url: str, journals: Path, call: Callable[..., Any] | None = None, **overrides: Any
) -> Callable[[], None]:
    def run() -> None:
        package = build_package([src], hashed=False)  # as `trialship send` does
        destination = parse_destination(url, **overrides)
        path = journals / f"{time.monotonic_ns()}.jsonl"
        with Journal(path, destination.describe()) as journal:
            receipt = (call or (lambda f, *a: f(*a)))(send, package, destination, journal)
        if not receipt.complete:
            raise SystemExit(f"incomplete: {receipt.failed[:1]}")

    return run


def bench_sftp(
    work: Path, src: Path, args: argparse.Namespace, rows: list[tuple[str, float]]
) -> None:
    server = Sshd(work).start()
    remote = work / "remote"
    try:

        def clean() -> None:
            shutil.rmtree(remote, ignore_errors=True)
            remote.mkdir()

        batch = work / "batch.txt"
        batch.write_text(f"put -r {src} {remote}/openssh\n")
        openssh = [
            "sftp",
            "-F",
            "/dev/null",
            "-q",
            "-b",
            str(batch),
            "-i",
            str(server.client_key),
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            f"UserKnownHostsFile={server.known_hosts}",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            "-P",
            str(server.port),
            "root@127.0.0.1",
        ]
        rows.append(
            (
                "OpenSSH sftp -b",
                timed(
                    lambda: subprocess.run(openssh, check=True, stdout=subprocess.DEVNULL),
                    args.runs,
                    clean,
                ),
            )
        )
        auth = {"identity": server.client_key, "known_hosts": server.known_hosts}
        run = trialship_send(src, server.url(remote / "trialship"), work, **auth)
        rows.append(("trialship SFTP", timed(run, args.runs, clean)))
        if args.variants:
            saved = sftp.MAX_REQUEST
            sftp.MAX_REQUEST = sftp.DEFAULT_REQUEST
            rows.append(("trialship SFTP, 32 KiB requests", timed(run, args.runs, clean)))
            sftp.MAX_REQUEST = saved
            ciphers = sftp.CIPHERS
            sftp.CIPHERS = ("aes128-ctr",)
            rows.append(("trialship SFTP, aes128-ctr", timed(run, args.runs, clean)))
            sftp.CIPHERS = ciphers
    finally:
        server.stop()


def bench_dicom(
    work: Path, src: Path, args: argparse.Namespace, rows: list[tuple[str, float]]
) -> None:
    ns = NetNamespace()
    scp = Storescp(ns, work / "storescp").start()
    try:

        def clean() -> None:
            shutil.rmtree(scp.received, ignore_errors=True)
            scp.received.mkdir()

        storescu = ns.command(
            "env",
            "TCP_NODELAY=1",
            STORESCU,
            "-aet",
            "TRIALSHIP",
            "-aec",
            scp.aet,
            "+sd",
            "+r",
            "127.0.0.1",
            str(scp.port),
            str(src),
        )
        rows.append(
            (
                "dcmtk storescu",
                timed(lambda: subprocess.run(storescu, check=True), args.runs, clean),
            )
        )
        run = trialship_send(src, scp.url(), work, ns.call)
        rows.append(("trialship C-STORE", timed(run, args.runs, clean)))
        if args.variants:
            for label, overrides in [
                ("trialship C-STORE, 2 associations", {"associations": 2}),
                ("trialship C-STORE, max PDU 16 KiB", {"max_pdu": 16382}),
            ]:
                run = trialship_send(src, scp.url(), work, ns.call, **overrides)
                rows.append((label, timed(run, args.runs, clean)))
            delay = dimse.REACTOR_DELAY
            dimse.REACTOR_DELAY = 0.001
            run = trialship_send(src, scp.url(), work, ns.call)
            rows.append(("trialship C-STORE, pynetdicom 1 ms poll", timed(run, args.runs, clean)))
            dimse.REACTOR_DELAY = delay
    finally:
        scp.stop()
        ns.close()


def main(argv: list[str] | None = None) -> None:
    args = _setup_argparser(argv)
    work = Path(tempfile.mkdtemp(prefix="trialship-bench-", dir=args.workdir))
    try:
        src = work / "src"
        t = time.perf_counter()
        ct_tree(src, args.files, size=args.size)
        total = sum(p.stat().st_size for p in src.rglob("*.dcm"))
        print(
            f"generated {args.files} files, {total / 1e6:.0f} MB in {time.perf_counter() - t:.1f} s"
        )
        t = time.perf_counter()
        build_package([src])
        print(f"(hashing + header reading alone: {time.perf_counter() - t:.2f} s)")
        t = time.perf_counter()
        build_package([src], hashed=False)
        print(f"(header reading alone: {time.perf_counter() - t:.2f} s)")
        rows: list[tuple[str, float]] = []
        if args.only in (None, "sftp"):
            bench_sftp(work, src, args, rows)
        if args.only in (None, "dicom"):
            bench_dicom(work, src, args, rows)
        baseline = {"SFTP": "OpenSSH sftp -b", "C-STORE": "dcmtk storescu"}
        times = dict(rows)
        print("\n| variant | s | MB/s | x reference |\n|---|---|---|---|")
        for label, seconds in rows:
            ref = next((times[b] for k, b in baseline.items() if k in label and b in times), None)
            ratio = f"{seconds / ref:.2f}" if ref and "trialship" in label else "1.00"
            print(f"| {label} | {seconds:.2f} | {total / 1e6 / seconds:.0f} | {ratio} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
