"""Training loop: learning, exact resume, untouched RNG streams during evaluation,
non-finite loss handling, flat == hierarchical when K = M, config errors, the CLI."""

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import fhvae.training.loop as train_mod
from fhvae.bin.train import main as train_main
from fhvae.errors import FhvaeError
from fhvae.model import ModelConfig
from fhvae.training.checkpoint import RunState, load_checkpoint, load_model
from fhvae.training.config import TrainConfig
from fhvae.training.loop import Trainer, train
from test_train_data import index_mvn, make_index

TINY = dict(hidden=16, num_layers=1, z1_dim=4, z2_dim=4)


def tiny_config(**overrides) -> TrainConfig:
    base = dict(model=ModelConfig(**TINY), seq_batch_size=5, batch_size=16, max_steps=10,
                dev_every=1000, log_every=1, ckpt_every=4, device="cpu")
    base.update(overrides)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """24 utterance sequences of 16-dim features, and a dev set of the same speakers."""
    root = tmp_path_factory.mktemp("small")
    train_index = make_index(root / "train", feat_dim=16)
    dev_index = make_index(root / "dev", feat_dim=16, utts_per_spk=1, utt_seed=1)
    return train_index, dev_index, index_mvn(train_index)


def read_tsv(path):
    lines = path.read_text().splitlines()
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"))) for line in lines[1:]]


def test_training_raises_dev_bound_and_discriminates(tmp_path):
    train_index = make_index(tmp_path / "train", seq_unit="spk")          # 6 x 4 utts, 80-dim
    dev_index = make_index(tmp_path / "dev", seq_unit="spk", utts_per_spk=2, utt_seed=1)
    cfg = tiny_config(model=ModelConfig(hidden=32, num_layers=1, z1_dim=8, z2_dim=8),
                      seq_batch_size=4, batch_size=32, max_steps=120, dev_every=40,
                      log_every=20, ckpt_every=40, patience=1000)
    final = train(cfg, train_index, dev_index, index_mvn(train_index), tmp_path / "exp")
    rows = read_tsv(tmp_path / "exp" / "train_metrics.tsv")
    dev = [float(r["dev_lb"]) for r in rows if r["dev_lb"]]
    assert len(dev) == 3 and dev[-1] > dev[0] + 100, dev
    assert float(rows[-1]["acc"]) >= 0.9
    assert float(rows[-1]["lb"]) > float(rows[0]["lb"]) + 100
    model, mvn, payload = load_model(final)
    assert payload["step"] == 120 and model.cfg.num_seqs == 4 and model.cfg.feat_dim == 80
    assert (tmp_path / "exp" / "loss.png").stat().st_size > 1000
    saved = yaml.safe_load((tmp_path / "exp" / "config.yaml").read_text())
    assert saved["model"]["num_seqs"] == 4 and saved["max_steps"] == 120


def _assert_same_run(full_dir, cut_dir):
    full = load_checkpoint(full_dir / "ckpt" / "last.pt")
    cut = load_checkpoint(cut_dir / "ckpt" / "last.pt")
    assert full["step"] == cut["step"] == 11
    assert (cut["seq_batch"], cut["inner"]) == (full["seq_batch"], full["inner"])
    for name, value in full["model"].items():
        assert torch.equal(value, cut["model"][name]), name
    rows = [[{k: v for k, v in r.items() if k != "elapsed"}
             for r in read_tsv(d / "train_metrics.tsv")] for d in (full_dir, cut_dir)]
    assert rows[0] == rows[1] and len(rows[0]) == 11


def test_resume_reproduces_the_uninterrupted_run(small, tmp_path, monkeypatch):
    train_index, _, mvn = small
    train(tiny_config(max_steps=11), train_index, None, mvn, tmp_path / "full")
    # Stopped after step 5 (inside a sequence batch), then resumed by a new Trainer.
    train(tiny_config(max_steps=5), train_index, None, mvn, tmp_path / "cut")
    torch.manual_seed(999)                     # the resumed run must not depend on this
    np.random.seed(999)
    train(tiny_config(max_steps=11), train_index, None, mvn, tmp_path / "cut")
    _assert_same_run(tmp_path / "full", tmp_path / "cut")
    # Crashed at step 7: last.pt is from step 4; steps 5-6 are redone (and re-logged).
    with monkeypatch.context() as patch:
        patch.setattr(train_mod, "fhvae_loss", _nan_at(7))
        with pytest.raises(FhvaeError):
            train(tiny_config(max_steps=11), train_index, None, mvn, tmp_path / "crash")
    train(tiny_config(max_steps=11), train_index, None, mvn, tmp_path / "crash")
    _assert_same_run(tmp_path / "full", tmp_path / "crash")


def test_dev_evaluation_leaves_training_untouched(small, tmp_path):
    train_index, dev_index, mvn = small
    train(tiny_config(max_steps=8), train_index, None, mvn, tmp_path / "nodev")
    train(tiny_config(max_steps=8, dev_every=3), train_index, dev_index, mvn, tmp_path / "dev")
    a = load_checkpoint(tmp_path / "nodev" / "ckpt" / "last.pt")["model"]
    b = load_checkpoint(tmp_path / "dev" / "ckpt" / "last.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    dev = [r["dev_lb"] for r in read_tsv(tmp_path / "dev" / "train_metrics.tsv") if r["dev_lb"]]
    assert len(dev) == 2
    # Deterministic: the same parameters give the same dev bound.
    trainer = Trainer(tiny_config(max_steps=8, dev_every=3), train_index, dev_index, mvn,
                      tmp_path / "dev")
    again = [train_mod.evaluate(trainer.model, trainer.dev_loader, dev_index, 16,
                                trainer._amp) for _ in range(2)]
    assert again[0] == again[1] and math.isfinite(again[0])


def _nan_at(call_number):
    calls = {"n": 0}
    original = train_mod.fhvae_loss

    def patched(*args, **kwargs):
        loss, metrics = original(*args, **kwargs)
        calls["n"] += 1
        return (loss * float("nan"), metrics) if calls["n"] == call_number else (loss, metrics)
    return patched


def test_nonfinite_loss_stops_naming_the_step(small, tmp_path, monkeypatch):
    train_index, dev_index, mvn = small
    monkeypatch.setattr(train_mod, "fhvae_loss", _nan_at(7))
    with pytest.raises(FhvaeError, match=r"^non-finite loss at step 7 \(sequence batch"):
        train(tiny_config(dev_every=4), train_index, dev_index, mvn, tmp_path / "exp")
    last = load_checkpoint(tmp_path / "exp" / "ckpt" / "last.pt")
    assert last["step"] == 4
    assert all(torch.isfinite(v).all() for v in last["model"].values())
    assert load_checkpoint(tmp_path / "exp" / "ckpt" / "best.pt")["step"] == 4
    assert not (tmp_path / "exp" / "final.pt").exists()


def test_skip_nonfinite_counts_and_continues(small, tmp_path, monkeypatch):
    train_index, _, mvn = small
    monkeypatch.setattr(train_mod, "fhvae_loss", _nan_at(3))
    train(tiny_config(max_steps=6, skip_nonfinite=True), train_index, None, mvn, tmp_path / "e")
    last = load_checkpoint(tmp_path / "e" / "ckpt" / "last.pt")
    assert last["step"] == 6 and last["skipped"] == 1
    assert all(torch.isfinite(v).all() for v in last["model"].values())


def test_flat_equals_hierarchical_when_k_is_m(tmp_path):
    index = make_index(tmp_path / "d", seq_unit="spk", feat_dim=16)   # M = 6 sequences
    mvn = index_mvn(index)
    for mode in ("flat", "hierarchical"):
        train(tiny_config(mode=mode, seq_batch_size=6, max_steps=4), index, None, mvn,
              tmp_path / mode)
    flat = read_tsv(tmp_path / "flat" / "train_metrics.tsv")
    hier = read_tsv(tmp_path / "hierarchical" / "train_metrics.tsv")
    assert [r["seq_batch"] for r in hier] == ["0"] * 4        # one sequence batch covers all
    for key in ("loss", "lb", "log_qy"):
        np.testing.assert_allclose([float(r[key]) for r in flat],
                                   [float(r[key]) for r in hier], rtol=1e-5, atol=2e-4)
    a = load_checkpoint(tmp_path / "flat" / "ckpt" / "last.pt")
    b = load_checkpoint(tmp_path / "hierarchical" / "ckpt" / "last.pt")
    assert a["model_config"]["num_seqs"] == b["model_config"]["num_seqs"] == 6
    for name in a["model"]:
        if name != "mu2":     # same rows, listed in a different order
            torch.testing.assert_close(a["model"][name], b["model"][name], rtol=1e-4, atol=1e-5)


def test_configuration_errors(small, tmp_path):
    train_index, _, mvn = small
    with pytest.raises(FhvaeError, match=r"K=30 exceeds the 24 training sequences"):
        train(tiny_config(seq_batch_size=30), train_index, None, mvn, tmp_path / "k")
    train(tiny_config(max_steps=2), train_index, None, mvn, tmp_path / "exp")
    other = tiny_config(model=ModelConfig(**{**TINY, "hidden": 8}), max_steps=4)
    with pytest.raises(FhvaeError, match=r"last\.pt: model config differs.*hidden: 16 -> 8"):
        train(other, train_index, None, mvn, tmp_path / "exp")
    with pytest.raises(FhvaeError, match=r"c\.yaml: reset_shift must be >= 0, got -1"):
        TrainConfig.from_dict({"reset_shift": -1}, "c.yaml")
    with pytest.raises(FhvaeError, match=r"c\.yaml: amp must be none, bf16, fp16 or auto, got "
                                         r"'bfloat16'$"):
        TrainConfig.from_dict({"amp": "bfloat16"}, "c.yaml")


def test_cli_resolves_overrides_and_rejects_unknown_keys(small, tmp_path):
    train_index, dev_index, mvn = small
    train_index.save(tmp_path / "train.npz")
    dev_index.save(tmp_path / "dev.npz")
    mvn.save(tmp_path / "mvn.npz")
    conf = tmp_path / "conf.yaml"
    conf.write_text(yaml.safe_dump({**tiny_config().to_dict(), "device": "auto"}))
    args = ["--config", str(conf), "--train-index", str(tmp_path / "train.npz"),
            "--dev-index", str(tmp_path / "dev.npz"), "--mvn", str(tmp_path / "mvn.npz"),
            "--seq-batch-size", "3", "--max-steps", "3", "--device", "cpu", "--seed", "5",
            "--set", "model.hidden=8", "--set", "dev_every=3"]
    assert train_main(args + [str(tmp_path / "exp")]) == 0
    saved = TrainConfig.load(tmp_path / "exp" / "config.yaml")
    assert (saved.seq_batch_size, saved.model.num_seqs, saved.model.hidden) == (3, 3, 8)
    assert (saved.seed, saved.max_steps, saved.model.feat_dim, saved.device) == (5, 3, 16, "cpu")
    assert load_checkpoint(tmp_path / "exp" / "final.pt")["step"] == 3
    with pytest.raises(FhvaeError, match="unknown option 'no_such'"):
        train_main(args + ["--set", "no_such=1", str(tmp_path / "exp2")])


def test_training_reads_device_names_as_extraction_does(small, tmp_path):
    """--device goes through fhvae.device: cuda:N is no longer refused by argparse, and a
    bad name or an absent GPU is the resolver's one-line error."""
    train_index, _, mvn = small
    with pytest.raises(FhvaeError, match=r"unknown device 'cuda:x' \(auto, cpu, cuda or cuda:N\)"):
        train(tiny_config(device="cuda:x"), train_index, None, mvn, tmp_path / "x")
    if not torch.cuda.is_available():
        with pytest.raises(FhvaeError, match="device 'cuda:0' requested but torch sees no CUDA"):
            train(tiny_config(device="cuda:0"), train_index, None, mvn, tmp_path / "y")


def test_table_reset_rows_are_the_extractors_svectors(small):
    """Default reset (non-overlapping windows) = extract's s-vector of each sequence; with
    reset_shift = seg_shift it averages every training window as Algorithm 1 writes it."""
    from fhvae.data.loader import SequenceBatchLoader
    from fhvae.data.sampler import HierarchicalSampler
    from fhvae.inference import ExtractOptions, extract_latents
    from fhvae.model import FHVAE
    from fhvae.objective import map_mu2
    train_index, _, mvn = small
    torch.manual_seed(0)
    model = FHVAE(ModelConfig(**TINY, feat_dim=16, seg_len=20, num_seqs=5)).eval()
    batch = HierarchicalSampler(train_index, 5, seg_shift=8, seed=3).seq_batch(0)
    loader = SequenceBatchLoader(train_index, mvn, torch.device("cpu"), prefetch=False)
    buf = loader.load(batch)
    opt = torch.optim.Adam([model.mu2])

    train_mod.reset_table(model, opt, train_mod.reset_windows(train_index, buf, 20))
    keys = [train_index.utt_ids[u] for u in batch.seqs]            # seq_unit utt: seq = utt
    feats = [(k, train_index.read_utt(int(u))) for k, u in zip(keys, batch.seqs)]
    svectors = {k: lat.svector for k, lat in extract_latents(
        model, mvn, feats, torch.device("cpu"), ExtractOptions(svector_only=True))}
    for row, key in enumerate(keys):
        np.testing.assert_allclose(model.mu2[row].detach().numpy(), svectors[key],
                                   rtol=1e-5, atol=1e-6)

    train_mod.reset_table(model, opt, train_mod.reset_windows(train_index, buf, 8))
    for row, (key, x) in enumerate(feats):
        starts = np.arange(0, x.shape[0] - 20 + 1, 8)
        windows = torch.from_numpy(np.stack([mvn.apply(x)[s:s + 20] for s in starts]))
        with torch.no_grad():
            z2_mu, _ = model.encode_z2(windows)
        want = map_mu2(z2_mu.sum(0, keepdim=True), torch.tensor([len(starts)]), 0.25)[0]
        torch.testing.assert_close(model.mu2[row].detach(), want, rtol=1e-5, atol=1e-6)
    loader.close()


def test_train_log_is_one_line_per_logged_step_without_carriage_returns(small, tmp_path):
    """stderr into a file, as utils/parallel/launch.py writes log/train.log: one `step N/M`
    line per log_every steps with the rate, loss, lb and acc, and the dev bound where it was
    computed; no progress-bar redraws."""
    from helpers import clean_env, python, run
    train_index, dev_index, mvn = small
    train_index.save(tmp_path / "train.npz")
    dev_index.save(tmp_path / "dev.npz")
    mvn.save(tmp_path / "mvn.npz")
    conf = tmp_path / "conf.yaml"
    conf.write_text(yaml.safe_dump(tiny_config(max_steps=6, log_every=2, dev_every=4).to_dict()))
    log = tmp_path / "train.log"
    with open(log, "w") as handle:
        done = run([python(), "-m", "fhvae.bin.train", "--config", str(conf),
                    "--train-index", str(tmp_path / "train.npz"), "--dev-index",
                    str(tmp_path / "dev.npz"), "--mvn", str(tmp_path / "mvn.npz"),
                    "--num-threads", "1", str(tmp_path / "exp")],
                   env=clean_env(), capture_output=False, stdout=handle, stderr=handle)
    text = log.read_bytes().decode()        # read_text() would turn a "\r" into "\n"
    assert done.returncode == 0, text[-3000:]
    assert "\r" not in text
    lines = [ln for ln in text.splitlines() if " fhvae.training.progress INFO step " in ln]
    assert [re.search(r"step (\d+)/6: ", ln).group(1) for ln in lines] == ["2", "4", "6"], text
    assert all(re.search(r": [\d.]+ steps/s, loss -?[\d.]+, lb -?[\d.]+, acc [\d.]+, "
                         r"lr 0\.001(,|$)", ln) for ln in lines), lines
    assert [bool(re.search(r", dev lb -?[\d.]+ \(best -?[\d.]+ at step 4\)$", ln))
            for ln in lines] == [False, True, False], lines
    assert [r["step"] for r in read_tsv(tmp_path / "exp" / "train_metrics.tsv")] == ["2", "4", "6"]


# ----------------------------------------------------------------- early stopping, final.pt
def _scripted_dev_bounds(monkeypatch, values):
    """The dev evaluations return `values` in turn (and fail the test if asked once more)."""
    queue = list(values)
    monkeypatch.setattr(train_mod, "evaluate", lambda *args, **kwargs: queue.pop(0))
    return queue


def test_early_stopping_and_final_is_the_best_dev_checkpoint(small, tmp_path, monkeypatch):
    train_index, dev_index, mvn = small
    # Dev at steps 2, 4, ...: best (-5) at step 4; at step 10 six steps brought nothing.
    queue = _scripted_dev_bounds(monkeypatch, [-10.0, -5.0, -7.0, -6.0, -8.0])
    cfg = tiny_config(max_steps=40, dev_every=2, patience=6)
    final = train(cfg, train_index, dev_index, mvn, tmp_path / "exp")
    assert queue == []
    rows = read_tsv(tmp_path / "exp" / "train_metrics.tsv")
    assert int(rows[-1]["step"]) == 10
    assert [float(r["dev_lb"]) for r in rows if r["dev_lb"]] == [-10, -5, -7, -6, -8]
    last = load_checkpoint(tmp_path / "exp" / "ckpt" / "last.pt")
    best = load_checkpoint(tmp_path / "exp" / "ckpt" / "best.pt")
    assert (last["step"], last["stopped"], last["best_step"]) == (10, True, 4)
    assert (best["step"], best["dev_lb"]) == (4, -5.0)
    written = load_checkpoint(final)
    assert written["step"] == 4
    assert all(torch.equal(v, best["model"][k]) for k, v in written["model"].items())
    assert not all(torch.equal(v, last["model"][k]) for k, v in written["model"].items())
    # A stopped run stays stopped: running it again trains and evaluates no further.
    train(cfg, train_index, dev_index, mvn, tmp_path / "exp")
    assert load_checkpoint(tmp_path / "exp" / "ckpt" / "last.pt")["step"] == 10
    assert load_checkpoint(final)["step"] == 4


def _train_on_a_step_clock(monkeypatch, cfg, *args) -> Path:
    """Train with a wall clock that says 10 s per training step, however often (or seldom)
    the code reads it."""
    trainer = Trainer(cfg, *args)
    monkeypatch.setattr(train_mod.time, "time", lambda: 10.0 * trainer.run.step)
    try:
        return trainer.train()
    finally:
        monkeypatch.undo()


def test_time_budget_stops_evaluates_and_resumes_with_a_larger_budget(small, tmp_path,
                                                                     monkeypatch):
    train_index, dev_index, mvn = small
    cfg = tiny_config(max_steps=40, dev_every=100, log_every=3, max_minutes=1.0)
    queue = _scripted_dev_bounds(monkeypatch, [-9.0, -3.0, -4.0])
    final = _train_on_a_step_clock(monkeypatch, cfg, train_index, dev_index, mvn,
                                   tmp_path / "exp")
    rows = read_tsv(tmp_path / "exp" / "train_metrics.tsv")
    # 10 s per step: 60 s at step 6, the first multiple of log_every there; the step
    # that stops is evaluated on dev (dev_every alone would not have) and becomes final.pt.
    assert int(rows[-1]["step"]) == 6 and rows[-1]["dev_lb"] == "-9.0000"
    assert [float(r["elapsed"]) for r in rows] == [30.0, 60.0]
    assert load_checkpoint(final)["step"] == 6
    last = load_checkpoint(tmp_path / "exp" / "ckpt" / "last.pt")
    assert (last["step"], last["stopped"], last["elapsed"]) == (6, False, 60.0)
    # A larger budget continues the same run (elapsed counts across runs) to its end.
    queue = _scripted_dev_bounds(monkeypatch, queue)
    _train_on_a_step_clock(monkeypatch, tiny_config(max_steps=40, dev_every=100, log_every=3,
                                                    max_minutes=2.0),
                           train_index, dev_index, mvn, tmp_path / "exp")
    assert load_checkpoint(tmp_path / "exp" / "ckpt" / "last.pt")["step"] == 12
    assert load_checkpoint(final)["step"] == 12 and queue == [-4.0]


def test_final_is_the_last_model_without_a_dev_set(small, tmp_path):
    train_index, _, mvn = small
    final = load_checkpoint(train(tiny_config(max_steps=6), train_index, None, mvn, tmp_path))
    last = load_checkpoint(tmp_path / "ckpt" / "last.pt")
    assert final["step"] == 6 and not (tmp_path / "ckpt" / "best.pt").exists()
    assert all(torch.equal(v, last["model"][k]) for k, v in final["model"].items())


# ----------------------------------------------------------------- resume
def test_resume_with_a_dev_set_reproduces_the_uninterrupted_run(small, tmp_path):
    train_index, dev_index, mvn = small
    cfg = lambda steps: tiny_config(max_steps=steps, dev_every=3)      # noqa: E731
    train(cfg(11), train_index, dev_index, mvn, tmp_path / "full")
    train(cfg(5), train_index, dev_index, mvn, tmp_path / "cut")
    train(cfg(11), train_index, dev_index, mvn, tmp_path / "cut")
    _assert_same_run(tmp_path / "full", tmp_path / "cut")   # dev_lb column included
    full, cut = (load_checkpoint(tmp_path / d / "ckpt" / "best.pt") for d in ("full", "cut"))
    assert full["step"] == cut["step"] and full["dev_lb"] == cut["dev_lb"]
    assert all(torch.equal(v, cut["model"][k]) for k, v in full["model"].items())


@pytest.mark.parametrize("key, value, was", [("batch_size", 8, 16), ("seed", 3, 0),
                                             ("seg_shift", 4, 8), ("num_seg_batches", 2, 0)])
def test_resume_refuses_other_sampler_settings(small, tmp_path, key, value, was):
    train_index, _, mvn = small
    train(tiny_config(max_steps=4), train_index, None, mvn, tmp_path)
    with pytest.raises(FhvaeError, match=rf"last\.pt: {key} was {was}, now {value}; "
                                         r"cannot resume the same run"):
        train(tiny_config(max_steps=8, prefetch=False, **{key: value}), train_index, None, mvn,
              tmp_path)


def test_resume_refuses_another_world_size_and_flat_mode_refuses_ranks(small, tmp_path):
    from fhvae.training.checkpoint import save_checkpoint
    train_index, _, mvn = small
    train(tiny_config(max_steps=4), train_index, None, mvn, tmp_path)
    last = tmp_path / "ckpt" / "last.pt"
    payload = load_checkpoint(last)
    payload["world"] = 2
    save_checkpoint(last, payload)
    with pytest.raises(FhvaeError, match=r"last\.pt: written by 2 process\(es\), resuming "
                                         r"with 1$"):
        train(tiny_config(max_steps=8, prefetch=False), train_index, None, mvn, tmp_path)
    with pytest.raises(FhvaeError, match=r"^mode flat .* runs in one process only$"):
        train_mod.resolve_config(tiny_config(mode="flat"), train_index, world=2)
    assert train_mod.resolve_config(tiny_config(mode="flat"), train_index, 1).model.num_seqs == 24


# ----------------------------------------------------------------- segment batches, AMP
def test_num_seg_batches_sets_the_steps_per_sequence_batch(small, tmp_path):
    train_index, _, mvn = small
    train(tiny_config(max_steps=9, num_seg_batches=3), train_index, None, mvn, tmp_path / "3")
    rows = read_tsv(tmp_path / "3" / "train_metrics.tsv")
    assert [r["seq_batch"] for r in rows] == list("000111222")
    # 0: one pass, i.e. floor(segments / batch_size) steps; segments of the K=5 sequences
    # of sequence batch 0 counted from their lengths (windows of 20 frames every 8).
    train(tiny_config(max_steps=8), train_index, None, mvn, tmp_path / "0")
    seqs = load_checkpoint(tmp_path / "0" / "ckpt" / "last.pt")
    from fhvae.data.sampler import HierarchicalSampler
    utts = HierarchicalSampler(train_index, 5, 8, seed=0).seq_batch(0).utts
    segments = sum((int(n) - 20) // 8 + 1 for n in train_index.num_frames[utts])
    first = [r for r in read_tsv(tmp_path / "0" / "train_metrics.tsv") if r["seq_batch"] == "0"]
    assert len(first) == segments // 16 and seqs["step"] == 8 and seqs["seq_batch"] > 0


BF16_RUN = """
import json, logging, sys
import torch
torch.set_num_threads(1)
logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(message)s")
from fhvae.data.index import SegmentIndex
from fhvae.features.mvn import MVN
from fhvae.model import ModelConfig
from fhvae.training.config import TrainConfig
from fhvae.training.loop import train
root = sys.argv[1]
rows = {}
for amp in ("none", "bf16"):
    cfg = TrainConfig(model=ModelConfig(hidden=16, num_layers=1, z1_dim=4, z2_dim=4),
                      seq_batch_size=5, batch_size=16, max_steps=6, dev_every=3, log_every=1,
                      ckpt_every=4, device="cpu", amp=amp)
    train(cfg, SegmentIndex.load(f"{root}/train.npz"), SegmentIndex.load(f"{root}/dev.npz"),
          MVN.load(f"{root}/mvn.npz"), f"{root}/{amp}")
print(json.dumps(torch.backends.cpu.get_cpu_capability()))
"""
# A plain bf16 LSTM forward and backward under CPU autocast: whether this host (as the
# subprocess sees it) has bf16 kernels, found without the code under test.
BF16_PROBE = ("import torch; lstm = torch.nn.LSTM(2, 2)\n"
              "with torch.autocast('cpu', dtype=torch.bfloat16): out, _ = lstm(torch.ones(2, 1, 2))\n"
              "out.float().sum().backward()")
NO_BF16 = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}   # an AVX2-only CPU


@pytest.mark.slow
@pytest.mark.parametrize("cpu", ["native", "avx2-only"])
def test_bf16_autocast_trains_on_cpu_or_falls_back_to_float32(small, tmp_path, cpu):
    """amp: bf16 on CPU: where oneDNN has bf16 kernels it autocasts; where it has not
    (emulated with ONEDNN_MAX_CPU_ISA=AVX2), the run is the float32 one, with one warning
    naming the CPU, instead of oneDNN's "could not create a primitive descriptor"."""
    from helpers import clean_env, python, run
    train_index, dev_index, mvn = small
    train_index.save(tmp_path / "train.npz")
    dev_index.save(tmp_path / "dev.npz")
    mvn.save(tmp_path / "mvn.npz")
    env = clean_env(NO_BF16 if cpu == "avx2-only" else {})
    capable = run([python(), "-c", BF16_PROBE], env=env, timeout=60).returncode == 0
    if cpu == "avx2-only":
        assert not capable, "ONEDNN_MAX_CPU_ISA=AVX2 no longer hides the bf16 kernels"
    elif not capable:
        pytest.skip("this CPU has no bf16 kernels: the native case is the avx2-only one")
    done = run([python(), "-c", BF16_RUN, str(tmp_path)], env=env, timeout=200)
    assert done.returncode == 0, done.stderr[-3000:]
    warnings = [ln for ln in done.stderr.splitlines() if "bfloat16" in ln]
    rows = {amp: read_tsv(tmp_path / amp / "train_metrics.tsv") for amp in ("none", "bf16")}
    last = load_checkpoint(tmp_path / "bf16" / "ckpt" / "last.pt")
    assert all(v.dtype == torch.float32 and torch.isfinite(v).all()
               for v in last["model"].values())
    dev = [float(r["dev_lb"]) for r in rows["bf16"] if r["dev_lb"]]
    assert len(dev) == 2 and all(math.isfinite(v) for v in dev)
    if cpu == "native":
        assert warnings == [], warnings
        first = [float(rows[amp][0]["loss"]) for amp in ("none", "bf16")]
        # Same weights and batch at step 1: bf16 rounding moves the loss, but only a little.
        assert first[0] != first[1] and first[1] == pytest.approx(first[0], rel=2e-2)
    else:
        capability = json.loads(done.stdout.splitlines()[-1])
        assert warnings == [f"WARNING amp bf16: this CPU ({capability}) cannot run the model "
                            "in bfloat16 (could not create a primitive descriptor for the "
                            "LSTM forward propagation primitive); training in float32"]
        strip = lambda rs: [{k: v for k, v in r.items() if k != "elapsed"} for r in rs]  # noqa
        assert strip(rows["bf16"]) == strip(rows["none"])        # exactly the float32 run


# ----------------------------------------------------------------- shipped configs
def test_shipped_configs_load_and_build_a_working_model(small):
    from fhvae.model import FHVAE
    root = Path(__file__).resolve().parents[1]
    train_index, _, _ = small
    x = torch.tensor(train_index.read_utt(0)[:20][None])            # one 20-frame segment
    for name in ("conf/fhvae_cpu.yaml", "conf/fhvae_cpu_9k.yaml", "conf/fhvae_cpu_long.yaml",
                 "conf/fhvae.yaml", "tests/conf/fhvae_tiny.yaml"):
        cfg = train_mod.resolve_config(TrainConfig.load(root / name), train_index, 1)
        assert cfg.model.num_seqs == cfg.seq_batch_size and cfg.model.feat_dim == 16
        torch.manual_seed(0)
        out = FHVAE(cfg.model).eval()(x)
        assert out.z1.shape == (1, cfg.model.z1_dim) and out.z2.shape == (1, cfg.model.z2_dim)
        assert out.x_mu.shape == x.shape and torch.isfinite(out.x_mu).all(), name
    cpu = yaml.safe_load((root / "conf" / "fhvae_cpu.yaml").read_text())
    tiny = yaml.safe_load((root / "tests" / "conf" / "fhvae_tiny.yaml").read_text())
    # The end-to-end test's config is the CPU recipe's, shrunk: same options, same mode.
    assert tiny.keys() == cpu.keys() and tiny["model"].keys() == cpu["model"].keys()
    assert tiny["mode"] == cpu["mode"]


def test_run_state_round_trips_through_last_pt(small, tmp_path):
    """Every RunState field is saved in last.pt and put back by a resume, as one unit."""
    train_index, dev_index, mvn = small
    cfg = tiny_config(max_steps=5, dev_every=2)
    done = Trainer(cfg, train_index, dev_index, mvn, tmp_path / "exp")
    done.train()
    done.run.skipped = 3         # a value training did not reach, to see it come back
    done.save_last()
    resumed = Trainer(cfg, train_index, dev_index, mvn, tmp_path / "exp")
    assert resumed.run == done.run != RunState()
    assert (resumed.run.step, resumed.run.skipped, resumed.run.best_step) == (5, 3, 4)
    assert resumed.run.elapsed > 0 and resumed.run.best_dev > -math.inf


# ----------------------------------------------------------------- learning-rate schedule
TINY_YAML = Path(__file__).resolve().parent / "conf" / "fhvae_tiny.yaml"


def tiny_yaml_config(**overrides) -> TrainConfig:
    """tests/conf/fhvae_tiny.yaml through the YAML loader's checks, with `overrides`."""
    return TrainConfig.from_dict({**yaml.safe_load(TINY_YAML.read_text()), **overrides},
                                 "fhvae_tiny.yaml")


def test_resume_with_a_cosine_schedule_and_warmup_reproduces_the_uninterrupted_run(
        small, tmp_path, monkeypatch):
    """Crashed at step 7, resumed from last.pt of step 4: bit-identical parameters and
    metric rows (the lr column included). Adam's saved param_groups hold step 4's lr,
    not step 5's: a resume that kept them would train step 5 at the wrong lr."""
    from fhvae.training.lr_schedule import decay_progress, lr_at
    train_index, _, mvn = small
    cfg = tiny_yaml_config(lr_schedule="cosine", warmup_steps=3, lr_floor=0.1, max_steps=11,
                           ckpt_every=4, log_every=1, dev_every=1000)
    train(cfg, train_index, None, mvn, tmp_path / "full")
    with monkeypatch.context() as patch:
        patch.setattr(train_mod, "fhvae_loss", _nan_at(7))
        with pytest.raises(FhvaeError, match="non-finite loss at step 7"):
            train(cfg, train_index, None, mvn, tmp_path / "cut")
    saved = load_checkpoint(tmp_path / "cut" / "ckpt" / "last.pt")
    want = [lr_at(cfg, n, decay_progress(cfg, n)) for n in range(1, 12)]
    assert saved["step"] == 4
    assert saved["net_opt"]["param_groups"][0]["lr"] == want[3] != want[4]
    assert saved["rank_states"][0]["table_opt"]["param_groups"][0]["lr"] == want[3]
    torch.manual_seed(999)                     # the resumed run must not depend on this
    train(cfg, train_index, None, mvn, tmp_path / "cut")
    _assert_same_run(tmp_path / "full", tmp_path / "cut")
    rows = read_tsv(tmp_path / "full" / "train_metrics.tsv")
    assert [float(r["lr"]) for r in rows] == pytest.approx(want, rel=1e-5)
    # warm-up 1e-3 x 1/3, 2/3, 1; then cosine to 0.1 x 1e-3 at step 11
    assert want[:3] == pytest.approx([1e-3 / 3, 2e-3 / 3, 1e-3])
    assert want[-1] == pytest.approx(1e-4) and want[6] == pytest.approx(0.55e-3)
    full = load_checkpoint(tmp_path / "full" / "ckpt" / "last.pt")
    assert full["net_opt"]["param_groups"][0]["lr"] == want[-1]


def test_resume_in_bf16_reproduces_the_uninterrupted_run(small, tmp_path, monkeypatch):
    """amp bf16 on a CPU with bf16 kernels: crashed at step 7, resumed from last.pt of
    step 4, the run is bit for bit the uninterrupted one. A resume that came back in
    float32, or cast the saved float32 master weights to bf16, would differ from step 5."""
    from fhvae.training.runtime import cpu_bf16_error
    if why := cpu_bf16_error():
        pytest.skip(f"this CPU has no bf16 kernels ({why}): amp bf16 trains in float32 "
                    "here, which the float32 resume tests cover")
    train_index, _, mvn = small
    cfg = tiny_yaml_config(amp="bf16", max_steps=11, ckpt_every=4, log_every=1,
                           dev_every=1000)
    train(cfg, train_index, None, mvn, tmp_path / "full")
    with monkeypatch.context() as patch:
        patch.setattr(train_mod, "fhvae_loss", _nan_at(7))
        with pytest.raises(FhvaeError, match="non-finite loss at step 7"):
            train(cfg, train_index, None, mvn, tmp_path / "cut")
    assert load_checkpoint(tmp_path / "cut" / "ckpt" / "last.pt")["step"] == 4
    torch.manual_seed(999)                     # the resumed run must not depend on this
    train(cfg, train_index, None, mvn, tmp_path / "cut")
    _assert_same_run(tmp_path / "full", tmp_path / "cut")
    fp32 = tiny_yaml_config(amp="none", max_steps=11, log_every=1, dev_every=1000)
    train(fp32, train_index, None, mvn, tmp_path / "fp32")
    losses = {d: [r["loss"] for r in read_tsv(tmp_path / d / "train_metrics.tsv")]
              for d in ("full", "fp32")}
    assert losses["full"] != losses["fp32"]   # bf16 really ran: its rounding moves the loss


def test_amp_auto_is_bf16_only_where_the_cpu_multiplies_bf16_natively(small, tmp_path,
                                                                     monkeypatch, caplog):
    """amp: auto runs the bf16 training, bit for bit, on a CPU with AMX or AVX-512 BF16
    whose oneDNN runs the model in bf16, and the float32 one everywhere else; the log
    names the path that ran."""
    from fhvae.training import runtime
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    flags = set()
    if Path("/proc/cpuinfo").is_file():
        flags = set(re.search(r"^flags\s*:(.*)$", Path("/proc/cpuinfo").read_text(),
                              re.M).group(1).split())
    assert (runtime.native_bf16() is not None) == bool({"amx_tile", "avx512_bf16"} & flags)
    with monkeypatch.context() as patch:
        patch.setattr(runtime, "native_bf16", lambda: None)
        assert runtime.runnable_amp("auto", cpu) == "none"
        patch.setattr(runtime, "native_bf16", lambda: "AMX")
        patch.setattr(runtime, "cpu_bf16_error", lambda: None)
        assert runtime.runnable_amp("auto", cpu) == "bf16"
        assert runtime.runnable_amp("auto", cuda) == "none"     # GPUs: bf16 is asked for
        assert runtime.compute_path("auto", "bf16", cpu).endswith(
            "threads), bf16 autocast (AMX) (amp: auto)")
        patch.setattr(runtime, "cpu_bf16_error", lambda: "could not create a primitive")
        assert runtime.runnable_amp("auto", cpu) == "none"
    assert runtime.compute_path("fp16", "fp16", cpu).endswith(
        "float32 (fp16 autocast is GPU only) (amp: fp16)")              # autocast() says so
    assert runtime.compute_path("none", "none", cpu) == (
        f"compute: cpu ({torch.backends.cpu.get_cpu_capability()} kernels, "
        f"{torch.get_num_threads()} threads), float32 (amp: none)")
    train_index, _, mvn = small
    native = runtime.runnable_amp("auto", cpu)
    for amp in ("auto", native):
        with caplog.at_level("INFO", logger="fhvae.training.loop"):
            train(tiny_yaml_config(amp=amp, max_steps=5, log_every=1, dev_every=1000),
                  train_index, None, mvn, tmp_path / amp)
    paths = [r.getMessage() for r in caplog.records if r.getMessage().startswith("compute:")]
    assert len(paths) == 2 and paths[0].endswith("(amp: auto)")
    assert ("bf16 autocast" in paths[0]) == (native == "bf16")
    rows = {amp: [{k: v for k, v in r.items() if k != "elapsed"}
                  for r in read_tsv(tmp_path / amp / "train_metrics.tsv")]
            for amp in ("auto", native)}
    assert rows["auto"] == rows[native] and len(rows["auto"]) == 5


def test_a_time_budget_drives_the_decay_read_at_each_budget_check(small, tmp_path,
                                                                   monkeypatch):
    """max_minutes 1, 10 s per step: the cosine decay follows the share of the minute used
    as seen at the last check (every log_every = 2 steps), not the far-off max_steps."""
    train_index, _, mvn = small
    cfg = tiny_config(max_steps=1000, log_every=2, max_minutes=1.0, lr_schedule="cosine",
                      lr_floor=0.1)
    _train_on_a_step_clock(monkeypatch, cfg, train_index, None, mvn, tmp_path / "exp")
    rows = read_tsv(tmp_path / "exp" / "train_metrics.tsv")
    assert [r["step"] for r in rows] == ["2", "4", "6"]
    # Steps 2, 4, 6 ran with the time seen after steps 0, 2, 4: 0, 20 and 40 s of 60.
    cosine = lambda p: 1e-3 * (0.1 + 0.9 * (1 + math.cos(math.pi * p)) / 2)  # noqa: E731
    want = [cosine(2 / 1000), cosine(1 / 3), cosine(2 / 3)]
    assert [float(r["lr"]) for r in rows] == pytest.approx(want, rel=1e-5)
    last = load_checkpoint(tmp_path / "exp" / "ckpt" / "last.pt")
    assert (last["step"], last["budget_elapsed"]) == (6, 60.0)


def test_metrics_written_before_the_lr_column_still_plot_and_resume(small, tmp_path):
    """A train_metrics.tsv without `lr` (older runs): loss.png is drawn from it, and a
    resume moves its rows under the new header with an empty lr cell."""
    from fhvae.training.checkpoint import save_checkpoint
    from fhvae.training.metrics import TSV_COLUMNS, plot_metrics
    train_index, _, mvn = small
    exp = tmp_path / "exp"
    train(tiny_config(max_steps=4), train_index, None, mvn, exp)
    tsv = exp / "train_metrics.tsv"
    old = [[v for k, v in r.items() if k != "lr"] for r in read_tsv(tsv)]
    tsv.write_text("".join("\t".join(r) + "\n" for r in
                           [[c for c in TSV_COLUMNS if c != "lr"], *old]))
    plot_metrics(tsv, tmp_path / "old.png")
    assert (tmp_path / "old.png").stat().st_size > 1000
    last = load_checkpoint(exp / "ckpt" / "last.pt")
    del last["budget_elapsed"]                  # a checkpoint from before the field
    save_checkpoint(exp / "ckpt" / "last.pt", last)
    train(tiny_config(max_steps=6), train_index, None, mvn, exp)
    rows = read_tsv(tsv)
    assert tsv.read_text().splitlines()[0].split("\t") == list(TSV_COLUMNS)
    assert [r["lr"] for r in rows] == ["", "", "", "", "0.001", "0.001"]
    assert [r["step"] for r in rows] == ["1", "2", "3", "4", "5", "6"]
