"""Security hygiene by source scan: reading a user's file (checkpoint, index, statistics,
config, table) can never run code from it, and the only shell the toolkit starts is the
user's own wav.scp pipe, documented as such."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from test_reliability_data import ROOT

SCANNED = ("fhvae", "local", "egs", "utils")
# pickle between a forked child and its parent through a private os.pipe (espeak-ng state
# isolation): nothing a user supplies is unpickled.
PICKLE_ALLOWED = {"local/synthcorpus/espeak.py"}
# wav.scp entries ending in '|' are the user's own commands, run with bash as Kaldi does.
SHELL_ALLOWED = {"fhvae/io/rxfile.py"}   # open_rxfile: a wav.scp / scp "cmd |" pipe


def sources() -> dict[str, str]:
    files = sorted(p for d in SCANNED for p in (ROOT / d).rglob("*.py"))
    assert len(files) > 40, "the scan found too few files to be looking in the right place"
    return {str(p.relative_to(ROOT)): p.read_text() for p in files}


def calls(tree: ast.AST, name: str) -> list[ast.Call]:
    """Calls of `name` or `<anything>.name` (e.g. torch.load, np.load, yaml.load)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            if (isinstance(func, ast.Name) and func.id == name) or \
                    (isinstance(func, ast.Attribute) and func.attr == name):
                found.append(node)
    return found


def imports(tree: ast.AST) -> set[str]:
    """Top-level names of every imported module."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def keyword(call: ast.Call, name: str):
    for kw in call.keywords:
        if kw.arg == name:
            return ast.literal_eval(kw.value) if isinstance(kw.value, ast.Constant) else kw.value
    return None


def test_no_code_from_user_files():
    problems = []
    for path, text in sources().items():
        tree = ast.parse(text, path)
        for call in calls(tree, "eval") + calls(tree, "exec"):
            if isinstance(call.func, ast.Name):         # model.eval() is not eval()
                problems.append(f"{path}:{call.lineno}: {call.func.id}()")
        if imports(tree) & {"pickle", "cPickle", "dill", "marshal", "shelve", "joblib"} \
                and path not in PICKLE_ALLOWED:
            problems.append(f"{path}: imports a module that unpickles")
        if "allow_pickle=True" in text.replace(" ", ""):
            problems.append(f"{path}: allow_pickle=True")
        for call in calls(tree, "load"):
            owner = call.func.value.id if isinstance(call.func, ast.Attribute) and \
                isinstance(call.func.value, ast.Name) else ""
            if owner == "torch" and keyword(call, "weights_only") is not True:
                problems.append(f"{path}:{call.lineno}: torch.load without weights_only=True")
            if owner == "yaml":
                problems.append(f"{path}:{call.lineno}: yaml.load (use yaml.safe_load)")
            if owner in ("np", "numpy") and keyword(call, "allow_pickle") not in (None, False):
                problems.append(f"{path}:{call.lineno}: np.load may unpickle")
        if re.search(r"\bunsafe_load\b|\bUnsafeLoader\b|yaml\.Loader\b", text):
            problems.append(f"{path}: unsafe YAML loader")
    assert not problems, "\n".join(problems)


def test_the_only_shell_is_the_users_wav_scp_pipe():
    shells = []
    for path, text in sources().items():
        tree = ast.parse(text, path)
        for call in calls(tree, "run") + calls(tree, "Popen") + calls(tree, "system") + \
                calls(tree, "check_output") + calls(tree, "call"):
            argv = call.args[0] if call.args else None
            starts_shell = (keyword(call, "shell") is True or (
                isinstance(argv, ast.List) and argv.elts and isinstance(argv.elts[0], ast.Constant)
                and argv.elts[0].value in ("bash", "sh") and len(argv.elts) > 1
                and isinstance(argv.elts[1], ast.Constant) and argv.elts[1].value == "-c"))
            if starts_shell or (isinstance(call.func, ast.Attribute) and call.func.attr == "system"):
                shells.append(path)
    assert set(shells) == SHELL_ALLOWED, shells
    docs = (ROOT / "docs" / "clusters.md").read_text() + (ROOT / "docs" / "kaldi.md").read_text()
    assert "pipes are run with bash exactly as Kaldi runs them" in docs
    assert "weights_only=True" in docs


def test_checkpoint_with_code_is_refused(tmp_path):
    """A pickle that would run code on load is rejected by the weights-only loader."""
    import pickle  # noqa: PLC0415 - only to build the hostile file this test feeds in

    from fhvae.errors import FhvaeError
    from fhvae.training.checkpoint import load_checkpoint

    marker = tmp_path / "pwned"

    class Hostile:
        def __reduce__(self):
            return (Path.touch, (marker,))

    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"model": Hostile()}))
    with pytest.raises(FhvaeError, match="evil.pt: not a readable checkpoint"):
        load_checkpoint(evil)
    assert not marker.exists()
