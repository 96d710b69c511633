"""pyproject.toml: `pip install [-e] .` gives `import fhvae` and the `fhvae` command.

Installed without dependencies and without build isolation (offline, with the setuptools
the environment has) into a fresh venv that sees the test environment's site-packages
through a .pth file, from a copy of the package (so no build output lands in the tree)."""

from __future__ import annotations

import importlib.util
import shutil
import re
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from fhvae.__main__ import COMMANDS
from helpers import clean_env, run, skip_unless_ci

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("editable", [False, True])
def test_pip_install_gives_fhvae_command(tmp_path, editable):
    if importlib.util.find_spec("setuptools") is None:
        skip_unless_ci("no setuptools in this environment: cannot build offline")
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy2(ROOT / "pyproject.toml", src)
    shutil.copy2(ROOT / "README.md", src)
    shutil.copytree(ROOT / "fhvae", src / "fhvae", ignore=shutil.ignore_patterns("__pycache__"))
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    site = Path(sysconfig.get_path("purelib", vars={"base": str(env_dir)}))
    (site / "_test_deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    python = env_dir / "bin" / "python"
    env = clean_env(drop=("PYTHONPATH",))
    install = run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
         "--no-build-isolation", "--no-index", *(["-e"] if editable else []), str(src)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert install.returncode == 0, install.stderr

    where = run([str(python), "-c", "import fhvae; print(fhvae.__file__)"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert where.returncode == 0, where.stderr
    package = Path(where.stdout.strip()).parent
    assert package == (src / "fhvae" if editable else site / "fhvae")

    fhvae = env_dir / "bin" / "fhvae"
    helped = run([str(fhvae), "--help"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0 and helped.stdout.startswith("usage: fhvae "), helped.stderr
    listed = [line.split()[0] for line in helped.stdout.splitlines()
              if line.startswith("    ") and line.split()[0] in COMMANDS]
    assert listed == list(COMMANDS)
    extract = run([str(fhvae), "extract", "--help"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=60)
    assert extract.returncode == 0 and "--svector-only" in extract.stdout, extract.stderr
    unknown = run([str(fhvae), "nope"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=60)
    assert unknown.returncode == 2 and "invalid choice: 'nope'" in unknown.stderr


def test_commands_cover_every_stage_entry_point():
    modules = {path.stem for path in (ROOT / "fhvae" / "bin").glob("*.py")} - {"__init__", "cli"}
    assert {module.rsplit(".", 1)[1] for module, _ in COMMANDS.values()} == modules
    assert all(name == module.rsplit(".", 1)[1].replace("_", "-")
               for name, (module, _) in COMMANDS.items())


def _requirements(*names: str) -> dict[str, str]:
    pins = {}
    for name in names:
        for line in (ROOT / name).read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line and not line.startswith("-r"):
                package, version = line.split("==")
                pins[package.lower().replace("_", "-")] = version
    return pins


def test_pyproject_minimum_versions_are_the_tested_pins():
    """`pip install .` must not accept versions nobody tested: each dependency's minimum is
    its requirements pin (torch>=2.1 would allow a torch without CPU fused Adam)."""
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {}
    for spec in project["dependencies"] + project["optional-dependencies"]["test"]:
        package, version = re.fullmatch(r"([A-Za-z0-9_.-]+)>=([\w.]+)", spec).groups()
        declared[package.lower().replace("_", "-")] = version
    pins = _requirements("requirements.txt", "requirements-test.txt")
    assert declared == pins
