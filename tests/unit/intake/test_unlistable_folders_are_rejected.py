"""A folder that cannot be listed is named with its reason, as an unreadable file is: never
passed over in silence."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from tests.unit.intake.odd_inputs import as_a_user, unlistable
from trialship.intake.sources import SourceItem, SourceRejection, iter_sources

LISTING = """\
import json, sys
from pathlib import Path
from trialship.intake.sources import iter_sources
found = iter_sources([Path(arg) for arg in sys.argv[1:]])
print(json.dumps([[type(e).__name__, e.label, getattr(e, "reason", "")] for e in found]))
"""


def test_a_folder_gone_before_it_is_listed_is_named_and_the_walk_goes_on(tmp_path: Path) -> None:
    for name in ("a/1.dcm", "b/2.dcm", "c/3.dcm"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    found: list[SourceItem | SourceRejection] = []
    for entry in iter_sources([tmp_path]):
        found.append(entry)
        if entry.label.endswith("1.dcm"):
            shutil.rmtree(tmp_path / "b")  # (seen by the walk of the top folder, not yet listed)
    assert [(type(e).__name__, e.label) for e in found] == [
        ("SourceItem", str(tmp_path / "a" / "1.dcm")),
        ("SourceRejection", str(tmp_path / "b")),
        ("SourceItem", str(tmp_path / "c" / "3.dcm")),
    ]
    assert isinstance(found[1], SourceRejection)
    assert found[1].reason == "cannot list: No such file or directory"


def test_a_folder_without_permission_is_rejected_with_its_reason(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "locked").mkdir(parents=True)
    (src / "locked" / "inside.dcm").write_bytes(b"x")
    (src / "z.dcm").write_bytes(b"y")
    with unlistable(src / "locked"):
        listed = as_a_user([sys.executable, "-c", LISTING, str(src), str(src / "locked" / "in")])
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == [
        ["SourceItem", str(src / "z.dcm"), ""],  # (a folder's files come before its folders)
        ["SourceRejection", str(src / "locked"), "cannot list: Permission denied"],
        # (named under a folder that cannot be searched: refused, not a crash)
        ["SourceRejection", str(src / "locked" / "in"), "cannot read: Permission denied"],
    ]


def test_a_source_folder_that_cannot_be_listed_is_itself_rejected(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    with unlistable(tmp_path / "src"):
        listed = as_a_user([sys.executable, "-c", LISTING, str(tmp_path / "src")])
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == [
        ["SourceRejection", str(tmp_path / "src"), "cannot list: Permission denied"]
    ]
