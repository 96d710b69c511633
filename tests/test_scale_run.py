"""local/scale_run.sh, the scale-run harness, on a stand-in ./run.sh whose stage N runs a
python child holding 40 + 40N MB: one `time -v` row per stage, whose peak RSS is the
python child's (the harness must see the processes run.sh waits for, not run.sh alone),
the hours of audio from utt2dur, disk after the stage, and a failed stage ends the run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from helpers import ROOT, clean_env, python, run

FAKE_RUN = """#!/usr/bin/env bash
set -euo pipefail
stage=$2
mkdir -p data/train exp
[ "$stage" = 0 ] && printf 'u1 3600.0\\nu2 1800.0\\n' > data/train/utt2dur
[ "$stage" = "${FAIL_STAGE:-}" ] && exit 3
python -c 'import sys; x = bytearray(int(sys.argv[1]) << 20); x[::4096] = b"a" * len(x[::4096])' \\
  $((40 + 40 * stage)) &
wait $!
"""


def harness_tree(tmp_path: Path) -> Path:
    """The harness and what it sources in a tree of its own, with the stand-in run.sh."""
    tree = tmp_path / "tree"
    for name in ("local/scale_run.sh", "local/scale_table.py", "utils/parse_options.sh",
                 "utils/setup_env.sh", "path.sh"):
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, tree / name)
    (tree / "fhvae").symlink_to(ROOT / "fhvae")
    (tree / "run.sh").write_text(FAKE_RUN)
    (tree / "run.sh").chmod(0o755)
    return tree


@pytest.fixture
def tree(tmp_path):
    if not Path("/usr/bin/time").is_file():
        pytest.skip("GNU time (the Debian package time) is not installed")
    return harness_tree(tmp_path)


def test_a_row_per_stage_with_the_python_childs_peak_and_the_audio_hours(tree):
    proc = run(["local/scale_run.sh", "--stop-stage", "2", "out", "--nj", "2"], cwd=tree,
               env=clean_env(), timeout=120)
    assert proc.returncode == 0, proc.stderr
    table = json.loads((tree / "out" / "table.json").read_text())
    assert table["run_opts"] == "--nj 2"
    assert table["corpus"] == {"train": {"hours": 1.5, "utterances": 2}}
    stages = table["stages"]
    assert [s["stage"] for s in stages] == [0, 1, 2]
    for s in stages:
        held = 40 + 40 * s["stage"]
        assert held <= s["peak_rss_mb"] / 1.048576 < held + 80, s   # MiB held, plus python
        assert s["s_per_audio_hour"] == pytest.approx(s["wall_s"] / 1.5)
        assert set(s["disk_mb"]) == {"data", "exp"} and s["exit_status"] == 0
    assert "| 2 | segment index + MVN |" in (tree / "out" / "table.md").read_text()


def test_a_failed_stage_is_recorded_and_ends_the_run(tree):
    proc = run(["local/scale_run.sh", "out"], cwd=tree, env=clean_env(FAIL_STAGE="1"),
               timeout=120)
    assert proc.returncode == 3 and "stage 1 failed (exit 3)" in proc.stderr
    stages = json.loads((tree / "out" / "table.json").read_text())["stages"]
    assert [(s["stage"], s["exit_status"]) for s in stages] == [(0, 0), (1, 3)]


def test_compare_puts_both_sizes_side_by_side_and_marks_memory_that_grew(tmp_path):
    """local/scale_compare.py: per stage both runs measured, CPU s per audio hour and the
    peak RSS ratio, marked over --max-ratio; a run without table.json is named."""
    def table(name: str, hours: float, utts: int, rows: list[tuple[int, float, float]]):
        out = tmp_path / name
        out.mkdir()
        (out / "table.json").write_text(json.dumps({
            "corpus": {"train": {"hours": hours, "utterances": utts}},
            "stages": [{"stage": n, "what": f"stage {n}", "wall_s": cpu / 2, "cpu_s": cpu,
                        "peak_rss_mb": rss} for n, cpu, rss in rows]}))
        return out
    small = table("small", 5.0, 4000, [(0, 100.0, 70.0), (1, 40.0, 100.0), (5, 50.0, 10.0)])
    large = table("large", 50.0, 40000, [(0, 1000.0, 140.0), (1, 400.0, 120.0)])
    proc = run([python(), "local/scale_compare.py", str(small), str(large)], cwd=ROOT,
               env=clean_env(), timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == ("Audio: 5.0 h / 4,000 utterances against 50.0 h / 40,000 (10.0x).")
    assert "| 0 | stage 0 | 50 → 500 | 100 → 1000 | 20.0 → 20.0 | 70 → 140 | 2.00 **> 1.5** |" in lines
    assert "| 1 | stage 1 | 20 → 200 | 40 → 400 | 8.0 → 8.0 | 100 → 120 | 1.20 |" in lines
    assert not any(line.startswith("| 5 |") for line in lines)     # not measured at 50 h
    proc = run([python(), "local/scale_compare.py", str(small), str(tmp_path / "none")],
               cwd=ROOT, env=clean_env(), timeout=60)
    assert proc.returncode != 0
    assert proc.stderr.strip().endswith("none/table.json: no table.json (run local/scale_run.sh "
                                        "first)")
