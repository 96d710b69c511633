"""./run.sh itself, stages 0-5, on a tiny built-in corpus and tests/conf/fhvae_tiny.yaml
(only run.sh's own options make it small), in a copy of the repository so data/, fbank/
and exp/ land in tmp. Every output a user relies on is read back with readers independent
of fhvae's (kaldiio's scp loader, torch.load, PIL, sklearn): the Kaldi tables, the
checkpoints, the trials and scores, eer.txt, results.md and the figures."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from sklearn.metrics import roc_curve

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "conf" / "fhvae_tiny.yaml"
SETS = {"train": 8, "dev": 2, "test": 6}      # speakers per set
UTTS_PER_SPK = 3
EXP = "exp/fhvae"

pytestmark = pytest.mark.timeout(900)          # ~30 s on 2 idle cores; leave room for load


def repo_copy(dst: Path) -> Path:
    """The working tree's files that git does not ignore, as they are now, plus .venv (a
    link: the recipe's setup step finds it up to date and installs nothing)."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           cwd=ROOT, capture_output=True, check=True, timeout=60,
                           ).stdout.decode().split("\0")
    for name in filter(None, files):
        src = ROOT / name
        if src.is_symlink() or src.is_file():
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / name, follow_symlinks=False)
    (dst / ".venv").symlink_to(ROOT / ".venv")
    return dst


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    """(repository copy, completed ./run.sh process)."""
    root = repo_copy(tmp_path_factory.mktemp("repo"))
    env = {k: v for k, v in os.environ.items() if k not in ("train_cmd", "extract_cmd")}
    args = ["./run.sh", "--num-train-spk", SETS["train"], "--num-dev-spk", SETS["dev"],
            "--num-test-spk", SETS["test"], "--utts-per-spk", UTTS_PER_SPK, "--nj", 2,
            "--fhvae-config", TINY.relative_to(ROOT), "--seed", 5,
            "--adapt-eval", "test_unseen:dev_unseen"]
    for var in re.findall(r"^num_(\w+)_spk=", (root / "run.sh").read_text(), re.M):
        if var not in SETS:                   # a set added to the recipe later: keep it tiny
            args += [f"--num-{var.replace('_', '-')}-spk", 2]
    proc = subprocess.run(list(map(str, args)), cwd=root, env=env, capture_output=True,
                          text=True, timeout=840)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return root, proc


def read_dict(path: Path) -> dict[str, str]:
    return dict(line.split(maxsplit=1) for line in path.read_text().splitlines())


def load_scp(path: Path) -> dict[str, np.ndarray]:
    return {k: np.asarray(v) for k, v in kaldiio.load_scp(str(path)).items()}


def test_every_stage_ran(recipe):
    _, proc = recipe
    for stage in range(6):
        assert re.search(rf"stage {stage}:", proc.stderr), f"stage {stage} not logged"
    assert "train_fhvae.sh: done" in proc.stderr


@pytest.mark.parametrize("name", SETS)
def test_data_dirs_and_features(recipe, name):
    root, _ = recipe
    data = root / "data" / name
    utt2spk = read_dict(data / "utt2spk")
    assert len(utt2spk) == SETS[name] * UTTS_PER_SPK
    assert len(set(utt2spk.values())) == SETS[name]
    frames = {k: int(v) for k, v in read_dict(data / "utt2num_frames").items()}
    feats = load_scp(data / "feats.scp")
    assert set(feats) == set(frames) == set(utt2spk)
    for key, mat in feats.items():
        assert mat.shape == (frames[key], 80) and np.isfinite(mat).all(), key
    assert (data / "fhvae" / "seg_index.npz").is_file()


def test_training_outputs(recipe):
    root, _ = recipe
    exp = root / EXP
    tiny = yaml.safe_load(TINY.read_text())
    saved = yaml.safe_load((exp / "config.yaml").read_text())
    assert saved["max_steps"] == tiny["max_steps"] and saved["seed"] == 5
    assert {k: saved["model"][k] for k in tiny["model"]} == tiny["model"]
    rows = [line.split("\t") for line in (exp / "train_metrics.tsv").read_text().splitlines()]
    col = {name: i for i, name in enumerate(rows[0])}
    dev = {int(r[0]): float(r[col["dev_lb"]]) for r in rows[1:] if r[col["dev_lb"]]}
    assert sorted(dev) == list(range(tiny["dev_every"], tiny["max_steps"] + 1, tiny["dev_every"]))
    load = lambda p: torch.load(exp / p, map_location="cpu", weights_only=True)  # noqa: E731
    final, last = load("final.pt"), load("ckpt/last.pt")
    assert last["step"] == tiny["max_steps"]
    assert final["step"] == max(dev, key=dev.get)           # the best dev step, not the last
    for key, value in load("ckpt/best.pt")["model"].items():
        assert torch.equal(value, final["model"][key]), key
    assert final["model_config"]["z1_dim"] == tiny["model"]["z1_dim"]


def test_latent_tables(recipe):
    root, _ = recipe
    model = yaml.safe_load(TINY.read_text())["model"]
    exp = root / EXP
    # train and the adaptation set dev_unseen: s-vectors only (run.sh)
    for name, full in (("test", True), ("train", False), ("dev_unseen", False)):
        latents = exp / f"latents_{name}"
        data = root / "data" / name
        frames = {k: int(v) for k, v in read_dict(data / "utt2num_frames").items()}
        svectors = load_scp(latents / "svector.scp")
        assert set(svectors) == set(frames)
        assert all(v.shape == (model["z2_dim"],) and np.isfinite(v).all()
                   for v in svectors.values())
        spk2utt = {k: v.split() for k, v in read_dict(data / "spk2utt").items()}
        spk = load_scp(latents / "spk_svector.scp")
        assert set(spk) == set(spk2utt)
        for speaker, utts in spk2utt.items():     # speaker mean of its s-vectors
            np.testing.assert_allclose(spk[speaker], np.mean([svectors[u] for u in utts], 0),
                                       rtol=1e-4, atol=1e-5)
        assert (latents / "z1.scp").is_file() == full
        if full:
            for z in ("z1", "z2"):
                table = load_scp(latents / f"{z}.scp")
                assert {k: v.shape for k, v in table.items()} == {
                    k: (n, model[f"{z}_dim"]) for k, n in frames.items()}


def parse_tables(markdown: str) -> list[tuple[list[str], list[list[str]]]]:
    """Every markdown table as (header cells, body rows of cells)."""
    tables, block = [], []
    for line in markdown.splitlines() + [""]:
        if line.startswith("|"):
            block.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif block:
            if len(block) >= 3:
                tables.append((block[0], block[2:]))
            block = []
    return tables


def test_results_md_eer_and_probe_tables(recipe):
    root, proc = recipe
    results = root / EXP / "eval_test" / "results.md"
    text = results.read_text()
    assert "results.md" in proc.stdout                    # stage 5 printed where it wrote
    eers = {}
    for header, body in parse_tables(text):
        column = [i for i, h in enumerate(header) if re.fullmatch(r"EER( \(%\))?", h)]
        for row in body if column else []:
            eers[row[0]] = float(row[column[0]])
    assert any("svector" in s for s in eers) and any("fbank" in s for s in eers), eers
    assert all(0.0 <= v <= 100.0 for v in eers.values()), eers
    probes = []
    for header, body in parse_tables(text):
        accuracy = [i for i, h in enumerate(header) if re.search(r"\bz[12]\b", h)]
        probes += [[row[i] for i in accuracy] for row in body
                   if len(accuracy) == 2 and row[0].startswith("speaker")]
    assert probes, "no probe table (speaker accuracy from z1 and z2) in results.md"
    assert all(0.0 <= float(c.rstrip("%")) <= 100.0 for c in probes[0]), probes


def test_eer_txt_trials_and_scores(recipe):
    root, _ = recipe
    out = root / EXP / "eval_test"
    utt2spk = read_dict(root / "data" / "test" / "utt2spk")
    trial_lists = {}                               # trials, and any other list next to it
    for path in sorted(out.glob("trials*")):
        trials = [line.split() for line in path.read_text().splitlines()]
        assert trials and all(len(t) == 3 and t[0] in utt2spk and t[1] in utt2spk
                              for t in trials), path
        assert all((utt2spk[e] == utt2spk[t]) == (kind == "target") for e, t, kind in trials)
        trial_lists[path.name] = trials
    assert "trials" in trial_lists
    systems = {}
    for line in (out / "eer.txt").read_text().splitlines():
        m = re.fullmatch(r"(\S+) EER ([\d.]+)% minDCF\(p_target=[\d.]+\) ([\d.]+)", line)
        assert m, line
        systems[m.group(1)] = float(m.group(2))
        assert 0.0 <= float(m.group(3)) <= 1.0 + 1e-9      # normalised: trivial system is 1
    assert any("svector" in s for s in systems) and any("fbank" in s for s in systems)
    for system, eer in systems.items():
        lines = [line.split() for line in (out / f"scores_{system}").read_text().splitlines()]
        pairs = [s[:2] for s in lines]
        scored = [t for t in trial_lists.values() if [x[:2] for x in t] == pairs]
        assert scored, f"scores_{system} does not follow any trials list"
        trials = scored[0]
        scores = np.array([float(s[2]) for s in lines])
        labels = np.array([t[2] == "target" for t in trials])
        fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
        reference = 100.0 * np.interp(0.0, fpr - (1.0 - tpr), fpr)
        assert eer == pytest.approx(reference, abs=0.006), system   # eer.txt has 2 decimals


def test_figures_are_valid_pngs(recipe):
    root, _ = recipe
    figures = sorted((root / EXP).rglob("*.png"))
    names = {p.name for p in figures}
    assert "loss.png" in names and any(n.startswith("tsne") for n in names), names
    for png in figures:
        with Image.open(png) as image:
            assert image.format == "PNG" and min(image.size) >= 100, png
            image.load()                                  # decodes every pixel


def test_adapted_evaluation_of_the_unseen_set(recipe):
    root, proc = recipe
    out = root / EXP / "eval_test_unseen_adapt_dev_unseen"
    results = (out / "results.md").read_text()
    assert ("- Back-ends lda-plda adapted to `data/dev_unseen` (6 utterances, speaker labels "
            "unused)") in results
    assert "adapted to data/dev_unseen (mean + PLDA)" in results
    assert "back-ends adapted to data/dev_unseen" in proc.stderr
    assert json.loads((out / "summary.json").read_text())["adaptation"]["set"] == \
        "data/dev_unseen"
