"""Two-process data-parallel training on CPU (gloo) through torchrun: replicas agree, each
rank keeps its own table, final.pt is the best dev checkpoint, an interrupted run resumed
with docs/training.md's `python -m torch.distributed.run ... -m fhvae.bin.train` command ends
exactly where the uninterrupted one does, and the decisions one rank makes alone (a
non-finite loss, its own clock running past max_minutes) or rank 0 makes for all (early
stopping on its dev bound) stop or skip on every rank at the same step.

A rank that disagrees with the others runs into mismatched collectives: the run then hangs
until the command's time limit or fails, and the test fails either way."""

import json
import re
import textwrap
from pathlib import Path

import pytest
import torch
import yaml

from fhvae.training.checkpoint import load_checkpoint
from helpers import clean_env, python, run
from test_train_data import index_mvn, make_index

ROOT = Path(__file__).resolve().parents[1]
TORCHRUN_S = 90          # one torchrun launch (~13 s on 2 idle cores); 3 of them < 300 s
MODEL = dict(hidden=16, num_layers=1, z1_dim=4, z2_dim=4)
SETTINGS = dict(seq_batch_size=4, batch_size=16, dev_every=3, log_every=1, ckpt_every=3,
                device="cpu", seed=1)

pytestmark = pytest.mark.slow

WORKER = textwrap.dedent("""
    import os, sys, torch
    torch.set_num_threads(1)
    from fhvae.data.index import SegmentIndex
    from fhvae.features.mvn import MVN
    from fhvae.model import ModelConfig
    from fhvae.training.config import TrainConfig
    from fhvae.training.loop import Trainer
    root, exp, max_steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
    cfg = TrainConfig(model=ModelConfig(**MODEL), max_steps=max_steps, **SETTINGS)
    trainer = Trainer(cfg, SegmentIndex.load(f"{root}/train.npz"),
                      SegmentIndex.load(f"{root}/dev.npz"), MVN.load(f"{root}/mvn.npz"), exp)
    trainer.train()
    torch.save(trainer.model.state_dict(), f"{exp}/rank{os.environ['RANK']}.pt")
""").replace("**MODEL", f"**{MODEL!r}").replace("**SETTINGS", f"**{SETTINGS!r}")


def torchrun(*args: str, timeout: float = TORCHRUN_S) -> str:
    """`python -m torch.distributed.run --standalone --nproc_per_node=2 <args>`; its stderr."""
    proc = run([python(), "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                *args], env=clean_env(OMP_NUM_THREADS="1"), timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stderr


def read_rows(path):
    """train_metrics.tsv without the wall-clock column."""
    return [line.rsplit("\t", 1)[0] for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    train_index = make_index(root / "train", feat_dim=16)
    dev_index = make_index(root / "dev", feat_dim=16, utts_per_spk=1, utt_seed=1)
    train_index.save(root / "train.npz")
    dev_index.save(root / "dev.npz")
    index_mvn(train_index).save(root / "mvn.npz")
    return root


def documented_torchrun_words() -> list[str]:
    """docs/training.md's multi-node command, `python -m torch.distributed.run --nnodes ... -m
    fhvae.bin.train ...`: the words around its `...`."""
    text = " ".join((ROOT / "docs" / "training.md").read_text().split())
    command = re.search(r"`(python -m torch\.distributed\.run [^`]*-m fhvae\.bin\.train[^`]*)`",
                        text)
    assert command, ("docs/training.md: no `python -m torch.distributed.run ... -m "
                     "fhvae.bin.train` line")
    words = command.group(1).split()
    assert words[:3] == ["python", "-m", "torch.distributed.run"]
    return words


def test_two_rank_gloo_training_and_resume_through_the_documented_command(data, tmp_path):
    (tmp_path / "worker.py").write_text(WORKER)
    full = tmp_path / "full"
    torchrun(str(tmp_path / "worker.py"), str(data), str(full), "6")
    final = load_checkpoint(full / "final.pt")
    last = load_checkpoint(full / "ckpt" / "last.pt")
    assert last["world"] == 2 and len(last["rank_states"]) == 2 and last["step"] == 6
    header, *rows = [r.split("\t") for r in read_rows(full / "train_metrics.tsv")]
    dev = {int(r[0]): float(r[header.index("dev_lb")]) for r in rows if r[header.index("dev_lb")]}
    assert sorted(dev) == [3, 6] and final["step"] == max(dev, key=dev.get)
    ranks = [torch.load(full / f"rank{r}.pt", weights_only=True) for r in range(2)]
    for name, value in ranks[0].items():
        if name != "mu2":
            assert torch.equal(value, ranks[1][name]), name
    # Each rank has its own table (its own shard of sequences) and the checkpoint keeps both.
    assert not torch.equal(ranks[0]["mu2"], ranks[1]["mu2"])
    assert torch.equal(last["rank_states"][1]["mu2"], ranks[1]["mu2"])

    # The documented command line (the trainer's CLI under torchrun, here on one node), stopped
    # after step 4 (between checkpoints), then resumed by the same command.
    words = documented_torchrun_words()
    module = words.index("-m", 3)
    conf = tmp_path / "conf.yaml"
    conf.write_text(yaml.safe_dump({"model": MODEL, **SETTINGS}))
    cut = tmp_path / "cut"
    cli = [*words[module:module + 2], "--config", str(conf), "--train-index",
           str(data / "train.npz"), "--dev-index", str(data / "dev.npz"), "--mvn",
           str(data / "mvn.npz"), "--num-threads", "1", str(cut)]
    torchrun(*cli, "--max-steps", "4")
    log = torchrun(*cli, "--max-steps", "6")
    assert re.search(r"resumed from \S+ at step 4\b", log), log[-3000:]
    resumed = load_checkpoint(cut / "ckpt" / "last.pt")
    for key, value in last["model"].items():
        assert torch.equal(value, resumed["model"][key]), key
    for mine, theirs in zip(last["rank_states"], resumed["rank_states"]):
        assert torch.equal(mine["mu2"], theirs["mu2"])
    assert read_rows(cut / "train_metrics.tsv") == read_rows(full / "train_metrics.tsv")
    assert load_checkpoint(cut / "final.pt")["step"] == final["step"]


# Two runs in one torchrun launch (the process group outlives a Trainer). Rank-dependent
# events are scripted in the worker: a non-finite loss on rank 1 only, dev bounds on rank 0
# (the only rank that evaluates), a clock that runs 25 s per step on rank 1 only.
AGREE_WORKER = textwrap.dedent("""
    import json, logging, os, sys, time, torch
    torch.set_num_threads(1)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import fhvae.training.loop as train_mod
    from fhvae.data.index import SegmentIndex
    from fhvae.features.mvn import MVN
    from fhvae.model import ModelConfig
    from fhvae.training.config import TrainConfig
    from fhvae.training.loop import Trainer
    root, out = sys.argv[1], sys.argv[2]
    rank = int(os.environ["RANK"])
    load = lambda: (SegmentIndex.load(f"{root}/train.npz"), SegmentIndex.load(f"{root}/dev.npz"),
                    MVN.load(f"{root}/mvn.npz"))

    def result(trainer, **more):
        state = {k: v for k, v in trainer.model.state_dict().items() if k != "mu2"}
        torch.save(state, f"{trainer.exp}/net{rank}.pt")
        return dict(step=trainer.run.step, stopped=trainer.run.stopped, skipped=trainer.run.skipped,
                    best_step=trainer.run.best_step, **more)

    # Run 1: skip_nonfinite, rank 1's loss at step 2 is NaN; early stopping on scripted dev
    # bounds (best at step 4, nothing better for patience=4 steps: stop at step 8).
    loss_fn, calls = train_mod.fhvae_loss, [0]
    def nan_on_rank1(*args, **kwargs):
        loss, metrics = loss_fn(*args, **kwargs)
        calls[0] += 1
        return (loss * float("nan") if rank == 1 and calls[0] == 2 else loss), metrics
    train_mod.fhvae_loss = nan_on_rank1
    bounds = [-10.0, -5.0, -7.0, -8.0]
    train_mod.evaluate = lambda *args, **kwargs: bounds.pop(0)
    cfg = TrainConfig(model=ModelConfig(**MODEL), max_steps=40, dev_every=2, patience=4,
                      skip_nonfinite=True, **SETTINGS_NO_DEV)
    trainer = Trainer(cfg, *load(), f"{out}/early")
    trainer.train()
    results = {"early": result(trainer, bounds_left=len(bounds))}

    # Run 2: max_minutes 1; rank 1's clock says 25 s per step, so it alone is out of time
    # after step 3 (log_every 1), rank 0's real clock has hardly moved.
    train_mod.fhvae_loss = loss_fn
    train_mod.evaluate = lambda *args, **kwargs: -1.0
    cfg = TrainConfig(model=ModelConfig(**MODEL), max_steps=40, dev_every=100,
                      max_minutes=1.0, **SETTINGS_NO_DEV)
    trainer = Trainer(cfg, *load(), f"{out}/budget")
    if rank == 1:
        real, start = time.time, time.time()
        train_mod.time.time = lambda: start + 25.0 * trainer.run.step
    trainer.train()
    if rank == 1:
        train_mod.time.time = real
    results["budget"] = result(trainer)
    with open(f"{out}/rank{rank}.json", "w") as handle:
        json.dump(results, handle)
""").replace("**MODEL", f"**{MODEL!r}").replace(
    "**SETTINGS_NO_DEV", f"**{ {k: v for k, v in SETTINGS.items() if k != 'dev_every'}!r}")


def test_ranks_agree_on_skipping_early_stopping_and_the_time_budget(data, tmp_path):
    (tmp_path / "worker.py").write_text(AGREE_WORKER)
    log = torchrun(str(tmp_path / "worker.py"), str(data), str(tmp_path))
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]

    early = [r["early"] for r in ranks]
    assert early[0] == {"step": 8, "stopped": True, "skipped": 1, "best_step": 4,
                        "bounds_left": 0}
    assert {**early[1], "bounds_left": 0} == early[0]    # rank 1 learnt rank 0's bounds
    assert len(re.findall(r"non-finite loss at step 2: batch skipped \(1 so far\)", log)) == 2
    last = load_checkpoint(tmp_path / "early" / "ckpt" / "last.pt")
    assert (last["step"], last["stopped"], last["best_step"], last["skipped"]) == (8, True, 4, 1)
    assert load_checkpoint(tmp_path / "early" / "final.pt")["step"] == 4

    budget = [r["budget"] for r in ranks]
    assert budget[0] == budget[1] and budget[0]["step"] == 3 and not budget[0]["stopped"]
    assert load_checkpoint(tmp_path / "budget" / "ckpt" / "last.pt")["step"] == 3
    assert len(re.findall(r"time budget: stopping after .* at step 3\n", log)) == 2

    for run_dir in ("early", "budget"):                  # the replicas stayed identical
        nets = [torch.load(tmp_path / run_dir / f"net{r}.pt", weights_only=True)
                for r in range(2)]
        assert all(torch.equal(v, nets[1][k]) for k, v in nets[0].items()), run_dir
