"""A large multi-frame file streams through: peak memory does not grow with the pixel data."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from deid_samples import instance, write

SIZE = 300 << 20

CHILD = textwrap.dedent(
    """
    import json, resource, sys
    from pathlib import Path
    from trialship.deid import parse_profile
    from trialship.services.deid_files import Assignment, DeidRun, run_deid
    from trialship.signing import load_or_create_signing_key
    src, out, profile = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = run_deid(DeidRun(
        sources=(src,), out=out, profile=parse_profile(profile.read_text()),
        signing_key=load_or_create_signing_key(out.parent / "key"),
        assign=Assignment(subject_id="ACM-0001", timepoint_id="BL"),
    ))
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"growth_kb": after - before, "rejected": len(result.rejected)}))
    """
)


def test_a_300_mb_file_needs_little_memory(tmp_path: Path) -> None:
    from deid_samples import PROFILE

    ds = instance(1, pixels=b"")
    ds.NumberOfFrames = SIZE // (8 * 8 * 2)
    path = write(ds, tmp_path / "src" / "big.dcm")
    # Grow the pixel data in place: a sparse tail, then fix the element's length.
    data = path.read_bytes()
    header_end = data.rindex(b"\xe0\x7f\x10\x00")
    with path.open("r+b") as fp:
        fp.seek(header_end + 8)
        fp.write(SIZE.to_bytes(4, "little"))
        fp.truncate(header_end + 12 + SIZE)
    profile = tmp_path / "profile.toml"
    profile.write_text(PROFILE)
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(path.parent), str(out), str(profile)],
        capture_output=True,
        text=True,
        check=True,
    )
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    assert measured["rejected"] == 0
    assert measured["growth_kb"] < 64 * 1024, measured
    output = next(out.rglob("*.dcm"))
    assert output.stat().st_size > SIZE
