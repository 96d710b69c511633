"""./run.sh itself, stages 0-5, on a tiny built-in corpus and tests/conf/fhvae_tiny.yaml
(only run.sh's own options make it small), in a copy of the repository so data/, fbank/
and exp/ land in tmp. Every output a user relies on is read back with readers independent
of fhvae's (kaldiio's scp loader, torch.load, PIL, sklearn): the Kaldi tables, the
checkpoints, the trials and scores, eer.txt (against the scores), results.md and
summary.json (against eer.txt) for the test set and the unseen-conditions set, and the
figures. Then, on the same data: `./run.sh --stage 3` with a larger step budget resumes the
training and ends exactly where an uninterrupted run ends, and utils/sweep_fhvae.sh skips
the settings it has already evaluated."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import shutil
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from sklearn.metrics import roc_curve

from helpers import clean_env, python_bin, run

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "conf" / "fhvae_tiny.yaml"
SETS = {"train": 8, "dev": 2, "test": 6}      # speakers per set
UTTS_PER_SPK = 3
EXP = "exp/fhvae"
EVALS = ("eval_test", "eval_test_unseen")      # the plain evaluations of run.sh
SEED = 5

# The recipe: ~30 s on 2 idle cores (its limit stays below the 900 s of the test that
# pays for it); the resumed stage 3 and the sweep take seconds each.
pytestmark = [pytest.mark.timeout(900), pytest.mark.slow]


def repo_copy(dst: Path) -> Path:
    """The working tree's files that git does not ignore, as they are now, plus a .venv that
    runs the tests' interpreter with the stamp of the current requirements (the recipe's
    set-up step finds it up to date and installs nothing; no .venv needed in the checkout)."""
    files = run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                cwd=ROOT, text=False, check=True, timeout=60).stdout.decode().split("\0")
    for name in filter(None, files):
        src = ROOT / name
        if src.is_symlink() or src.is_file():
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / name, follow_symlinks=False)
    python_bin(dst / ".venv" / "bin")
    pins = (dst / "requirements.txt").read_bytes() + (dst / "requirements-test.txt").read_bytes()
    (dst / ".venv" / ".requirements.sha256").write_text(hashlib.sha256(pins).hexdigest() + "\n")
    return dst


def recipe_env() -> dict[str, str]:
    """The caller's environment without its launchers (train_cmd...), one thread per job."""
    return clean_env(OMP_NUM_THREADS="1")


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    """(repository copy, completed ./run.sh process)."""
    root = repo_copy(tmp_path_factory.mktemp("repo"))
    args = ["./run.sh", "--num-train-spk", SETS["train"], "--num-dev-spk", SETS["dev"],
            "--num-test-spk", SETS["test"], "--utts-per-spk", UTTS_PER_SPK, "--nj", 2,
            "--fhvae-config", TINY.relative_to(ROOT), "--seed", SEED,
            "--adapt-eval", "test_unseen:dev_unseen"]
    for var in re.findall(r"^num_(\w+)_spk=", (root / "run.sh").read_text(), re.M):
        if var not in SETS:                   # a set added to the recipe later: keep it tiny
            args += [f"--num-{var.replace('_', '-')}-spk", 2]
    proc = run(list(map(str, args)), cwd=root, env=recipe_env(), timeout=840)
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


def test_every_evaluation_compares_four_systems(recipe):
    """s-vector, i-vector (stage 3 trained it, stage 4 extracted it for every set, the
    adaptation set included), mean+std and mean FBank, each under three back-ends, compared
    per baseline, back-end and trial list with Holm-adjusted p-values."""
    root, proc = recipe
    assert (root / "exp" / "ivector" / "extractor.npz").is_file()
    assert "stage 3: i-vector extractor on data/train" in proc.stderr
    for name in (*EVALS, "eval_test_unseen_adapt_dev_unseen"):
        record = json.loads((root / EXP / name / "summary.json").read_text())
        embeddings = {system.split("_")[0] for system in record["systems"]}
        assert embeddings == {"svector", "ivector", "fbank-meanstd", "fbank-mean"}, name
        assert len(record["systems"]) == 4 * 3 * len(record["num_trials"]), name
        assert len(record["comparisons"]) == 3 * 3 * len(record["num_trials"]), name
        assert all(c["p_holm"] >= c["p_value"] for c in record["comparisons"].values())


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


def read_eer_txt(path: Path) -> dict[str, tuple[str, str]]:
    """eer.txt: system -> (EER in %, minDCF) as written."""
    systems = {}
    for line in path.read_text().splitlines():
        m = re.fullmatch(r"(\S+) EER ([\d.]+)% minDCF\(p_target=[\d.]+\) ([\d.]+)", line)
        assert m, line
        systems[m.group(1)] = (m.group(2), m.group(3))
    return systems


def eval_set(name: str) -> str:
    return name.removeprefix("eval_")


@pytest.mark.parametrize("name", EVALS)
def test_results_md_eer_and_probe_tables(recipe, name):
    root, proc = recipe
    results = root / EXP / name / "results.md"
    text = results.read_text()
    assert str(results.relative_to(root)) in proc.stdout   # stage 5 printed where it wrote
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


@pytest.mark.parametrize("name", EVALS)
def test_results_md_and_summary_json_report_the_eer_txt_values(recipe, name):
    """The numbers a reader copies from results.md are eer.txt's, system by system (the
    all-trials table, the best system, the differences of the comparison table), and
    summary.json holds the same values unrounded."""
    root, _ = recipe
    out = root / EXP / name
    written = read_eer_txt(out / "eer.txt")
    text = (out / "results.md").read_text()
    header, table = next((header, body) for header, body in parse_tables(text)
                         if header[0] == "system" and "EER (%)" in header)   # all trials
    col = {h: i for i, h in enumerate(header)}
    dcf = next(h for h in header if h.startswith("minDCF"))
    shown = {row[0]: (row[col["EER (%)"]], row[col[dcf]]) for row in table}
    assert shown == written
    summary = json.loads((out / "summary.json").read_text())["systems"]
    for system, (eer, min_dcf) in written.items():
        assert f"{summary[system]['eer']:.2f}" == eer and f"{summary[system]['min_dcf']:.4f}" == min_dcf
        low, high = summary[system]["eer_interval"]
        interval = next(row[header.index("95% interval")] for row in table if row[0] == system)
        assert interval == f"{low:.2f} … {high:.2f}", system
    best = re.search(r"^- Best verification system: (\S+), EER ([\d.]+)%\.$", text, re.M)
    assert best and written[best.group(1)][0] == best.group(2)
    assert float(best.group(2)) == min(float(eer) for eer, _ in written.values())
    compared = 0
    for header, body in parse_tables(text):
        if header[:3] != ["trials", "comparison", "EER difference (points)"]:
            continue
        for row in body:
            if row[0] == "all":
                a, b = row[1].split(" − ")
                diff = summary[a]["eer"] - summary[b]["eer"]
                assert row[2] == f"{diff:+.2f}", row
                compared += 1
    assert compared > 0, "no comparison of all trials in results.md"


def eer_bounds(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """The EER (%) of scores written with 6 decimals: rounding may have tied scores that
    were not tied, so the EER of the unrounded scores lies between the EERs of the ties
    broken for and against the targets (ROC crossing interpolated, sklearn's ROC)."""
    eers = []
    for sign in (1.0, -1.0):
        fpr, tpr, _ = roc_curve(labels, scores + sign * 1e-9 * labels, drop_intermediate=False)
        eers.append(100.0 * float(np.interp(0.0, fpr - (1.0 - tpr), fpr)))
    return min(eers), max(eers)


@pytest.mark.parametrize("name", EVALS)
def test_eer_txt_trials_and_scores(recipe, name):
    root, _ = recipe
    out = root / EXP / name
    utt2spk = read_dict(root / "data" / eval_set(name) / "utt2spk")
    trial_lists = {}                               # trials, and any other list next to it
    for path in sorted(out.glob("trials*")):
        trials = [line.split() for line in path.read_text().splitlines()]
        assert trials and all(len(t) == 3 and t[0] in utt2spk and t[1] in utt2spk
                              for t in trials), path
        assert all((utt2spk[e] == utt2spk[t]) == (kind == "target") for e, t, kind in trials)
        trial_lists[path.name] = trials
    assert "trials" in trial_lists
    systems = read_eer_txt(out / "eer.txt")
    assert all(0.0 <= float(dcf) <= 1.0 + 1e-9 for _, dcf in systems.values())  # trivial: 1
    assert any("svector" in s for s in systems) and any("fbank" in s for s in systems)
    for system, (eer, _) in systems.items():
        lines = [line.split() for line in (out / f"scores_{system}").read_text().splitlines()]
        pairs = [s[:2] for s in lines]
        scored = [t for t in trial_lists.values() if [x[:2] for x in t] == pairs]
        assert scored, f"scores_{system} does not follow any trials list"
        trials = scored[0]
        scores = np.array([float(s[2]) for s in lines])
        labels = np.array([t[2] == "target" for t in trials])
        low, high = eer_bounds(labels, scores)
        assert low - 0.006 <= float(eer) <= high + 0.006, (system, eer, low, high)  # 2 decimals


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


def metric_rows(exp: Path) -> list[str]:
    """train_metrics.tsv without the wall-clock column."""
    return [line.rsplit("\t", 1)[0] for line in (exp / "train_metrics.tsv").read_text()
            .splitlines()]


def test_run_sh_stage_3_resumes_with_a_larger_budget(recipe, tmp_path):
    """`./run.sh --stage 3` with a larger max_steps continues the finished training from
    ckpt/last.pt (in a copy of exp/fhvae) and ends bit for bit where an uninterrupted run
    of the larger budget ends."""
    from fhvae.data.index import SegmentIndex
    from fhvae.features.mvn import MVN
    from fhvae.training.checkpoint import load_checkpoint
    from fhvae.training.config import TrainConfig
    from fhvae.training.loop import train
    root, _ = recipe
    tiny = yaml.safe_load(TINY.read_text())
    budget = tiny["max_steps"] + tiny["dev_every"]
    conf = root / "conf" / "fhvae_tiny_more.yaml"
    conf.write_text(yaml.safe_dump({**tiny, "max_steps": budget}, sort_keys=False))
    more = root / "exp" / "fhvae_more"
    shutil.copytree(root / EXP, more, ignore=shutil.ignore_patterns("latents_*", "eval_*"))
    proc = run(["./run.sh", "--stage", "3", "--stop-stage", "3", "--seed", str(SEED),
                "--fhvae-config", str(conf.relative_to(root)), "--exp", "exp/fhvae_more"],
               cwd=root, env=recipe_env(), timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = (more / "log" / "train.log").read_text()
    assert f"resumed from exp/fhvae_more/ckpt/last.pt at step {tiny['max_steps']}" in log, log
    rows, before = metric_rows(more), metric_rows(root / EXP)
    assert rows[:len(before)] == before and int(rows[-1].split("\t")[0]) == budget
    assert int(before[-1].split("\t")[0]) == tiny["max_steps"] and len(rows) > len(before)

    # The same budget uninterrupted, in this process (one thread, as the recipe's job).
    data = root / "data"
    cfg = dataclasses.replace(TrainConfig.load(conf), seed=SEED)
    train(cfg, SegmentIndex.load(data / "train/fhvae/seg_index.npz"),
          SegmentIndex.load(data / "dev/fhvae/seg_index.npz"),
          MVN.load(data / "train/fhvae/mvn.npz"), tmp_path / "full")
    assert metric_rows(tmp_path / "full") == rows
    for name in ("ckpt/last.pt", "final.pt"):
        want, got = load_checkpoint(tmp_path / "full" / name), load_checkpoint(more / name)
        assert want["step"] == got["step"], name
        for key, value in want["model"].items():
            assert torch.equal(value, got["model"][key]), (name, key)


def sweep(root: Path, *settings: str):
    """utils/sweep_fhvae.sh on the recipe's data, with the tiny config, 20 resamples."""
    command = ["utils/sweep_fhvae.sh", "--config", str(TINY.relative_to(ROOT)), "--seed",
               str(SEED), "--bootstrap", "20", "--title", "T", "data/train", "data/dev",
               "exp/sweep", *settings]
    return run(["bash", "-c", '. ./path.sh && "$@"', "sweep", *command], cwd=root,
               env=recipe_env(), timeout=240)


def test_sweep_is_resumable(recipe):
    """A sweep run again with one more setting evaluates only the new one: the finished
    setting is skipped (its model and evaluation untouched), and sweep.md has both rows,
    the old one unchanged."""
    root, _ = recipe
    first = sweep(root, "a=--set max_steps=10")
    assert first.returncode == 0, first.stderr[-3000:]
    table = (root / "exp/sweep/sweep.md").read_text()
    a = root / "exp/sweep/a"
    stamps = {p: p.stat().st_mtime_ns for p in (a / "final.pt", a / "eval_dev/summary.json")}
    second = sweep(root, "a=--set max_steps=10", "b=--set max_steps=20")
    assert second.returncode == 0, second.stderr[-3000:]
    assert "a: already evaluated, skipped" in second.stderr
    assert "b: training" in second.stderr and "a: training" not in second.stderr
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    rows = lambda text: {ln.split("|")[1].strip(): ln for ln in text.splitlines()  # noqa: E731
                         if ln.startswith("| ") and "---" not in ln}
    before, after = rows(table), rows((root / "exp/sweep/sweep.md").read_text())
    assert before["a"] == after["a"] and "b" in after and "b" not in before
    assert load_checkpoint_step(root / "exp/sweep/b/final.pt") <= 20


def load_checkpoint_step(path: Path) -> int:
    return int(torch.load(path, map_location="cpu", weights_only=True)["step"])


def test_input_norm_utt_cmvn_trains_on_normalised_copies_keeps_baselines_on_fbank(recipe):
    """`./run.sh --stage 1 --input-norm utt-cmvn`: stage 1 writes data/<set>_cmvn, each
    utterance's FBank minus its own mean over its own standard deviation (numpy on
    data/<set>/feats.scp, here), the FHVAE trains and extracts on those copies, and the FBank
    baselines still read data/<set>: their EERs are those of the default run."""
    root, _ = recipe
    args = ["./run.sh", "--stage", 1, "--input-norm", "utt-cmvn", "--exp", "exp/fhvae_cmvn",
            "--nj", 2, "--fhvae-config", TINY.relative_to(ROOT), "--seed", SEED,
            "--num-dev-unseen-spk", 2, "--adapt-eval", "test_unseen:dev_unseen"]
    proc = run(list(map(str, args)), cwd=root, env=recipe_env(), timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    for name in ("train", "test", "dev_unseen"):
        fbank = load_scp(root / "data" / name / "feats.scp")
        normalised = load_scp(root / "data" / f"{name}_cmvn" / "feats.scp")
        assert sorted(normalised) == sorted(fbank), name
        for utt, x in fbank.items():
            x = x.astype(np.float64)
            want = (x - x.mean(axis=0)) / x.std(axis=0)
            np.testing.assert_allclose(normalised[utt], want, atol=1e-4, err_msg=utt)
    config = torch.load(root / "exp/fhvae_cmvn/final.pt", map_location="cpu",
                        weights_only=True)
    assert np.allclose(config["mvn_mean"].numpy(), 0.0, atol=1e-3)   # trained on the copies
    assert "fhvae_pipeline.sh: stage 4: latents of data/test" in proc.stderr
    assert (root / "exp/fhvae_cmvn/latents_test/z1.scp").is_file()
    # the second model's data dirs sit beside the default's (issue 33: they replaced them)
    for name, exp in (("test_z1", EXP), ("test_fhvae_cmvn_z1", "exp/fhvae_cmvn")):
        owner = (root / "data" / name / "fhvae_model").read_text().strip()
        assert owner == str((root / exp / "final.pt").resolve()), name
        feats = (root / "data" / name / "feats.scp").read_text()
        assert f"{exp}/latents_test/" in feats, name
    for name in (*EVALS, "eval_test_unseen_adapt_dev_unseen"):
        default = json.loads((root / EXP / name / "summary.json").read_text())["systems"]
        cmvn = json.loads((root / "exp/fhvae_cmvn" / name / "summary.json").read_text())["systems"]
        baselines = [s for s in default if s.startswith("fbank-")]
        assert baselines and all(cmvn[s]["eer"] == default[s]["eer"] for s in baselines), name
