"""Two-process data-parallel training on CPU (gloo) through torchrun: replicas agree, each
rank keeps its own table, final.pt is the best dev checkpoint, and an interrupted run
resumed under torchrun (with its dev set) ends exactly where the uninterrupted one does."""

import os
import subprocess
import sys
import textwrap

import torch

from fhvae.checkpoint import load_checkpoint
from test_train_data import index_mvn, make_index

WORKER = textwrap.dedent("""
    import os, sys, torch
    torch.set_num_threads(1)
    from fhvae.data.index import SegmentIndex
    from fhvae.features.mvn import MVN
    from fhvae.model import ModelConfig
    from fhvae.train import TrainConfig, Trainer
    root, exp, max_steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
    cfg = TrainConfig(model=ModelConfig(hidden=16, num_layers=1, z1_dim=4, z2_dim=4),
                      seq_batch_size=4, batch_size=16, max_steps=max_steps, dev_every=3,
                      log_every=1, ckpt_every=3, device="cpu", seed=1)
    trainer = Trainer(cfg, SegmentIndex.load(f"{root}/train.npz"),
                      SegmentIndex.load(f"{root}/dev.npz"), MVN.load(f"{root}/mvn.npz"), exp)
    trainer.train()
    torch.save(trainer.model.state_dict(), f"{exp}/rank{os.environ['RANK']}.pt")
""")


def torchrun(tmp_path, exp: str, max_steps: int) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         str(tmp_path / "worker.py"), str(tmp_path), str(tmp_path / exp), str(max_steps)],
        env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]


def read_rows(path):
    """train_metrics.tsv without the wall-clock column."""
    return [line.rsplit("\t", 1)[0] for line in path.read_text().splitlines()]


def test_two_rank_gloo_training_and_resume(tmp_path):
    train_index = make_index(tmp_path / "train", feat_dim=16)
    dev_index = make_index(tmp_path / "dev", feat_dim=16, utts_per_spk=1, utt_seed=1)
    train_index.save(tmp_path / "train.npz")
    dev_index.save(tmp_path / "dev.npz")
    index_mvn(train_index).save(tmp_path / "mvn.npz")
    (tmp_path / "worker.py").write_text(WORKER)
    torchrun(tmp_path, "full", 6)
    full = tmp_path / "full"
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

    # Stopped after step 4 (between checkpoints), then resumed by the same command.
    torchrun(tmp_path, "cut", 4)
    torchrun(tmp_path, "cut", 6)
    cut = tmp_path / "cut"
    resumed = load_checkpoint(cut / "ckpt" / "last.pt")
    for key, value in last["model"].items():
        assert torch.equal(value, resumed["model"][key]), key
    for mine, theirs in zip(last["rank_states"], resumed["rank_states"]):
        assert torch.equal(mine["mu2"], theirs["mu2"])
    assert read_rows(cut / "train_metrics.tsv") == read_rows(full / "train_metrics.tsv")
    assert load_checkpoint(cut / "final.pt")["step"] == final["step"]
