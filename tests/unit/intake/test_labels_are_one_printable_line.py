"""A label names an input to the user: one printable line of valid UTF-8 whatever the name
holds, while the path it stands for still opens the file."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from tests.unit.intake.odd_inputs import NOT_UTF8
from trialship.intake.sources import (
    SourceItem,
    SourceRejection,
    iter_sources,
    local_file,
    printable_label,
)


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("plain/scan 1.dcm", "plain/scan 1.dcm"),
        ("Müller-Lüdenscheidt/Zoë.dcm", "Müller-Lüdenscheidt/Zoë.dcm"),
        (f"{NOT_UTF8}.dcm", "bad\\xff\\xfename.dcm"),
        (
            "evil.txt\nrejected: forged.dcm: forged reason",
            "evil.txt\\nrejected: forged.dcm: forged reason",
        ),
        ("tab\tcr\rnul\0", "tab\\tcr\\rnul\\x00"),
        ("esc\x1b[31mred\x7f", "esc\\x1b[31mred\\x7f"),
        ("\u202egnp.exe", "\\u202egnp.exe"),
        ("back\\slash 'quoted'", "back\\slash 'quoted'"),
    ],
)
def test_a_name_is_shown_printable_escaped_as_repr_does(name: str, label: str) -> None:
    assert printable_label(name) == label
    assert label.isprintable() and label.encode("utf-8")


def test_files_with_odd_names_keep_their_real_path(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / f"{NOT_UTF8}.dcm").write_bytes(b"not utf-8")
    (src / "evil.txt\nrejected: forged.dcm: forged reason").write_bytes(b"newline")
    items = [item for item in iter_sources([src]) if isinstance(item, SourceItem)]
    labels = {Path(item.label).name: item for item in items}
    assert sorted(labels) == [
        "bad\\xff\\xfename.dcm",
        "evil.txt\\nrejected: forged.dcm: forged reason",
    ]
    for item in items:
        assert item.label.isprintable() and item.label == printable_label(str(item.path))
    assert labels["bad\\xff\\xfename.dcm"].path.read_bytes() == b"not utf-8"


def test_a_missing_source_with_an_odd_name_is_named_printably(tmp_path: Path) -> None:
    (missing,) = list(iter_sources([tmp_path / "gone\n.dcm"]))
    assert isinstance(missing, SourceRejection)
    assert missing.label == f"{tmp_path}/gone\\n.dcm"


def test_zip_entry_names_with_control_characters_are_escaped(tmp_path: Path) -> None:
    archive = tmp_path / "exam.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("s1/scan\nrejected: x: y.dcm", b"newline")
        zf.writestr("s1/\x1b[2Jclear.dcm", b"escape")
        zf.writestr("s1/Zoë.dcm", b"utf-8")
    items = list(iter_sources([archive]))
    assert [item.label for item in items] == [
        f"{archive}!s1/scan\\nrejected: x: y.dcm",
        f"{archive}!s1/\\x1b[2Jclear.dcm",
        f"{archive}!s1/Zoë.dcm",
    ]
    read = []
    for item in items:
        assert isinstance(item, SourceItem)
        with local_file(item, tmp_path / "scratch") as path:
            read.append(path.read_bytes())
    assert read == [b"newline", b"escape", b"utf-8"]


def test_a_zip_whose_names_claim_utf8_falsely_is_refused_not_a_crash(tmp_path: Path) -> None:
    archive = tmp_path / "liar.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("é.dcm", b"x")  # (a name that is not ASCII is flagged as UTF-8)
    archive.write_bytes(archive.read_bytes().replace("é".encode(), b"\xff\xfe"))
    (refused,) = list(iter_sources([archive]))
    assert isinstance(refused, SourceRejection)
    assert refused.reason == "unreadable zip file (UnicodeDecodeError)"
