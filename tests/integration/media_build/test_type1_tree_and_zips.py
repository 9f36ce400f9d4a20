"""HIRO Type 1: the same exams as a plain tree and as size-limited zips."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pydicom
from conftest import Run

from trialship.media.type1 import TreeFile, Type1Instance, plan_tree, plan_zips, safe_name


def _instance(n: int, *, series: str = "1.2.3", description: str = "AXIAL") -> Type1Instance:
    return Type1Instance(
        source=Path(f"/in/{n}.dcm"),
        size=1000,
        subject="S 001/ä",
        study_date="20240105",
        study_uid="2.25.42",
        study_description="CT chest/abdomen (contrast)",
        modality="CT",
        series_uid=series,
        series_number=2,
        series_description=description,
        instance_number=n,
        sop_instance_uid=f"2.25.{series}.{n}",
    )


def test_tree_paths_follow_the_type1_layout_with_safe_names() -> None:
    tree = plan_tree([_instance(2), _instance(1), _instance(1, series="1.2.4")])
    assert [f.path for f in tree] == [
        "S_001/20240105_2.25.42_CT_chest_abdomen_contrast/CT2_AXIAL/00001.dcm",
        "S_001/20240105_2.25.42_CT_chest_abdomen_contrast/CT2_AXIAL/00002.dcm",
        "S_001/20240105_2.25.42_CT_chest_abdomen_contrast/CT2_AXIAL_2/00001.dcm",
    ]
    assert [f.source.name for f in tree][:2] == ["1.dcm", "2.dcm"]
    assert safe_name("../..//etc") == "etc"


def test_zips_are_split_at_the_limit_and_never_split_a_file() -> None:
    files = [TreeFile(f"S/{i:05d}.dcm", Path("x"), 1000) for i in range(10)]
    parts = plan_zips(files, 3000)
    assert [len(p) for p in parts] == [2, 2, 2, 2, 2]
    assert [f for p in parts for f in p] == files
    big = [TreeFile("S/big.dcm", Path("x"), 10_000), *files[:1]]
    assert [len(p) for p in plan_zips(big, 3000)] == [1, 1]


def test_media_build_writes_the_type1_tree_and_split_zips(
    run: Run, trial_folder: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = run(
        "media", "build", str(trial_folder), "--out", str(out), "--type1", "--zip-limit", "20K"
    )
    assert result.exit_code == 0, result.output
    tree = sorted(p.relative_to(out / "TYPE1").as_posix() for p in (out / "TYPE1").rglob("*.dcm"))
    assert len(tree) == 24
    assert tree[0].startswith("S001/20240105_") and "/CT1_AXIAL_1/00001.dcm" in tree[0]
    first = pydicom.dcmread(out / "TYPE1" / tree[0])
    assert first.ClinicalTrialSubjectID == "S001" and first.InstanceNumber == 1

    zips = sorted((out / "ZIP").glob("*.zip"))
    assert len(zips) > 1 and all(z.stat().st_size <= 20_000 for z in zips)
    assert zips[0].name == "ACME_301_001.zip"
    names: list[str] = []
    for path in zips:
        with zipfile.ZipFile(path) as archive:
            assert archive.testzip() is None
            names += archive.namelist()
    assert sorted(names) == tree
    index = json.loads((out / "discs.json").read_text())
    assert index["type1"] == "TYPE1"
    assert [z["name"] for z in index["zips"]] == [z.name for z in zips]
    assert sum(z["files"] for z in index["zips"]) == 24


def test_a_bad_zip_limit_is_refused(run: Run, trial_folder: Path, tmp_path: Path) -> None:
    result = run("media", "build", str(trial_folder), "--out", str(tmp_path), "--zip-limit", "lots")
    assert result.exit_code == 2
    assert "not a size" in result.output
