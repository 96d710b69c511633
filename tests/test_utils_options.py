"""utils/parse_options.sh sourced by a demo script under `set -euo pipefail`."""

from pathlib import Path

import pytest

import helpers

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = f"""#!/usr/bin/env bash
# Demo recipe: header line one.
# Header line two.
set -euo pipefail
stage=0
stop_stage=5          # last stage to run
use_gpu=false
label="a b"
. {ROOT}/utils/parse_options.sh
echo "stage=$stage stop_stage=$stop_stage use_gpu=$use_gpu label=$label"
printf '[%s]' "$@"; echo
"""


@pytest.fixture
def demo(tmp_path):
    path = tmp_path / "demo.sh"
    path.write_text(SCRIPT)
    path.chmod(0o755)

    def run(*args):
        return helpers.run([str(path), *args], timeout=30)
    return run


def test_values_both_forms_and_positionals_kept(demo):
    res = demo("--stage", "3", "--stop-stage=4", "--use-gpu", "true", "--label", "x y",
               "pos 1", "--stage", "9")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == "stage=3 stop_stage=4 use_gpu=true label=x y"
    assert lines[1] == "[pos 1][--stage][9]"


def test_defaults_and_double_dash(demo):
    res = demo("--", "--stage")
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == ["stage=0 stop_stage=5 use_gpu=false label=a b", "[--stage]"]


@pytest.mark.parametrize("args, message", [
    (["--no-such-opt", "1"], "unknown option --no-such-opt"),
    (["--stage"], "option --stage needs a value"),
    (["--use-gpu", "yes"], "option --use-gpu expects true or false, got 'yes'"),
])
def test_bad_options_fail_naming_the_option(demo, args, message):
    res = demo(*args)
    assert res.returncode == 1
    assert message in res.stderr
    assert res.stdout == ""


def test_help_prints_header_and_current_values(demo):
    res = demo("--stage", "2", "--help")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[:2] == ["Demo recipe: header line one.", "Header line two."]
    assert "  --stage 2" in lines
    assert any(ln.startswith("  --stop-stage 5 ") and ln.endswith("# last stage to run")
               for ln in lines)
    assert "  --use-gpu false" in lines and "  --label a b" in lines
    assert "stage=" not in res.stdout  # the script body did not run
