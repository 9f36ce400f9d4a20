"""Output files written with O_DIRECT hold exactly the bytes written, whatever their sizes and
the pieces they come in; without O_DIRECT, after a short write, or on an error, they behave as
ordinary files do."""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from trialship.intake import output_file
from trialship.intake.output_file import BLOCK, BUFFER, OutputFile

SIZES = [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, BUFFER - 1, BUFFER, BUFFER + 1, 3 * BUFFER + 123]


_BASE = bytes((index * 7) % 251 for index in range(251))


def _content(size: int, seed: int = 0) -> bytes:
    """`size` bytes of a pattern that repeats only every 251 bytes (never on a block's size),
    different for each `seed`."""
    turn = seed % 251
    base = _BASE[turn:] + _BASE[:turn]
    return (base * (size // 251 + 1))[:size]


def _write_in_pieces(target: OutputFile, data: bytes) -> None:
    # Odd piece sizes, in each type a caller passes: a header, pixel data, a trailing element.
    view, start = memoryview(data), 0
    for number, piece in enumerate((132, 5000, BUFFER + 17, 1, 3 * BLOCK)):
        part = view[start : start + piece]
        target.write(bytes(part) if number % 2 else part)
        start += piece
    target.write(bytearray(view[start:]))


def _written_through_the_cache(tmp_path: Path, size: int) -> None:
    """A file of `size` bytes written in pieces ends without O_DIRECT, and holds every byte."""
    data = _content(size)
    with OutputFile(tmp_path / "out.dcm") as target:
        _write_in_pieces(target, data)
        assert not target.direct
    assert (tmp_path / "out.dcm").read_bytes() == data


@pytest.mark.parametrize("size", SIZES)
def test_the_file_holds_every_byte_written(tmp_path: Path, size: int) -> None:
    data = _content(size)
    path = tmp_path / "out.dcm"
    with OutputFile(path) as target:
        _write_in_pieces(target, data)
        assert target.direct  # (ext4 and tmpfs on this project's machines take O_DIRECT)
    assert path.read_bytes() == data


@pytest.mark.parametrize("size", SIZES)
def test_a_file_closed_through_the_cache_holds_every_byte_written(
    tmp_path: Path, size: int
) -> None:
    data = _content(size, seed=5)
    path = tmp_path / "out.dcm"
    target = OutputFile(path)
    _write_in_pieces(target, data)
    target.close(through_cache=True)
    assert not target.direct or size % BUFFER == 0  # (nothing left gathered: nothing to write)
    assert path.read_bytes() == data


def test_a_file_system_without_o_direct_gets_buffered_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = os.open

    def no_direct(path: Any, flags: int, mode: int = 0o777) -> int:
        if flags & os.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real(path, flags, mode)

    monkeypatch.setattr(output_file.os, "open", no_direct)
    _written_through_the_cache(tmp_path, BUFFER + 4321)


def test_a_short_direct_write_sends_the_rest_through_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real, calls = os.write, []

    def short_once(fd: int, data: Any) -> int:
        calls.append(len(data))
        if len(calls) == 1:
            return real(fd, memoryview(data)[:BLOCK])  # (what a nearly full disk may do)
        return real(fd, data)

    monkeypatch.setattr(output_file.os, "write", short_once)
    _written_through_the_cache(tmp_path, 2 * BUFFER + 99)


def test_an_error_while_writing_leaves_the_rest_unwritten_and_the_file_closed(
    tmp_path: Path,
) -> None:
    path = tmp_path / "out.dcm"
    with pytest.raises(RuntimeError), OutputFile(path) as target:
        target.write(_content(BLOCK + 10))
        raise RuntimeError("the encoder failed")
    assert path.stat().st_size == 0  # (nothing gathered is written after the error)
    target.close()  # (closing again does nothing)


def test_a_full_device_is_the_callers_error() -> None:
    with pytest.raises(OSError) as raised, OutputFile("/dev/full") as target:
        target.write(_content(BUFFER + 1))
    assert raised.value.errno == errno.ENOSPC


def test_threads_writing_at_once_each_keep_their_own_bytes(tmp_path: Path) -> None:
    def write(number: int) -> None:
        with OutputFile(tmp_path / f"{number}.dcm") as target:
            for piece in range(5):
                target.write(_content(BUFFER // 2 + 3, seed=number * 10 + piece))

    threads = [threading.Thread(target=write, args=(number,)) for number in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for number in range(4):
        expected = b"".join(_content(BUFFER // 2 + 3, seed=number * 10 + p) for p in range(5))
        assert (tmp_path / f"{number}.dcm").read_bytes() == expected


def test_processes_forked_after_a_write_each_gather_into_their_own_buffer(tmp_path: Path) -> None:
    # The parent writes first (its thread then has a buffer), then forks two writers at once:
    # a buffer shared across the fork would mix their bytes.
    import multiprocessing

    with OutputFile(tmp_path / "parent.dcm") as target:
        target.write(_content(BLOCK * 3 + 5))
    fork = multiprocessing.get_context("fork")
    start = fork.Barrier(2)

    def child(number: int) -> None:
        start.wait()
        for round_ in range(20):
            with OutputFile(tmp_path / f"{number}-{round_}.dcm") as target:
                for piece in range(3):
                    target.write(_content(BUFFER // 3 + 7, seed=number * 50 + piece))

    children = [fork.Process(target=child, args=(number,)) for number in (1, 2)]
    for process in children:
        process.start()
    for process in children:
        process.join(60)
        assert process.exitcode == 0
    for number in (1, 2):
        expected = b"".join(_content(BUFFER // 3 + 7, seed=number * 50 + p) for p in range(3))
        for round_ in range(20):
            assert (tmp_path / f"{number}-{round_}.dcm").read_bytes() == expected


def test_a_direct_write_refused_as_invalid_goes_through_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fcntl

    real = os.write

    def no_direct_writes(fd: int, data: Any) -> int:
        if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real(fd, data)

    monkeypatch.setattr(output_file.os, "write", no_direct_writes)
    _written_through_the_cache(tmp_path, 2 * BUFFER + 77)
