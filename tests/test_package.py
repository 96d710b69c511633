"""pyproject.toml: `pip install [-e] .` gives `import fhvae` and the `fhvae` command.

Installed without dependencies and without build isolation (offline, with the setuptools
the environment has) into a fresh venv that sees the test environment's site-packages
through a .pth file, from a copy of the package (so no build output lands in the tree)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from fhvae.__main__ import COMMANDS

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(importlib.util.find_spec("setuptools") is None,
                    reason="no setuptools in this environment: cannot build offline")
@pytest.mark.parametrize("editable", [False, True])
def test_pip_install_gives_fhvae_command(tmp_path, editable):
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
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
         "--no-build-isolation", "--no-index", *(["-e"] if editable else []), str(src)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert install.returncode == 0, install.stderr

    where = subprocess.run([str(python), "-c", "import fhvae; print(fhvae.__file__)"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert where.returncode == 0, where.stderr
    package = Path(where.stdout.strip()).parent
    assert package == (src / "fhvae" if editable else site / "fhvae")

    fhvae = env_dir / "bin" / "fhvae"
    helped = subprocess.run([str(fhvae), "--help"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0 and helped.stdout.startswith("usage: fhvae "), helped.stderr
    listed = [line.split()[0] for line in helped.stdout.splitlines()
              if line.startswith("    ") and line.split()[0] in COMMANDS]
    assert listed == list(COMMANDS)
    extract = subprocess.run([str(fhvae), "extract", "--help"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=60)
    assert extract.returncode == 0 and "--svector-only" in extract.stdout, extract.stderr
    unknown = subprocess.run([str(fhvae), "nope"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=60)
    assert unknown.returncode == 2 and "invalid choice: 'nope'" in unknown.stderr


def test_commands_cover_every_stage_entry_point():
    modules = {path.stem for path in (ROOT / "fhvae" / "bin").glob("*.py")} - {"__init__", "cli"}
    assert {module.rsplit(".", 1)[1] for module, _ in COMMANDS.values()} == modules
    assert all(name == module.rsplit(".", 1)[1].replace("_", "-")
               for name, (module, _) in COMMANDS.items())
