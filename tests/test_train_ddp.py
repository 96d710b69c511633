"""Two-process data-parallel training on CPU (gloo) through torchrun."""

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
    root = sys.argv[1]
    cfg = TrainConfig(model=ModelConfig(hidden=16, num_layers=1, z1_dim=4, z2_dim=4),
                      seq_batch_size=4, batch_size=16, max_steps=6, dev_every=3,
                      log_every=1, ckpt_every=3, device="cpu", seed=1)
    trainer = Trainer(cfg, SegmentIndex.load(f"{root}/train.npz"),
                      SegmentIndex.load(f"{root}/dev.npz"), MVN.load(f"{root}/mvn.npz"),
                      f"{root}/exp")
    trainer.train()
    torch.save(trainer.model.state_dict(), f"{root}/rank{os.environ['RANK']}.pt")
""")


def test_two_rank_gloo_training(tmp_path):
    train_index = make_index(tmp_path / "train", feat_dim=16)
    dev_index = make_index(tmp_path / "dev", feat_dim=16, utts_per_spk=1, utt_seed=1)
    train_index.save(tmp_path / "train.npz")
    dev_index.save(tmp_path / "dev.npz")
    index_mvn(train_index).save(tmp_path / "mvn.npz")
    (tmp_path / "worker.py").write_text(WORKER)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         str(tmp_path / "worker.py"), str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    final = load_checkpoint(tmp_path / "exp" / "final.pt")
    last = load_checkpoint(tmp_path / "exp" / "ckpt" / "last.pt")
    assert last["world"] == 2 and len(last["rank_states"]) == 2 and last["step"] == 6
    assert final["step"] in (3, 6)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    for name, value in ranks[0].items():
        if name != "mu2":
            assert torch.equal(value, ranks[1][name]), name
    # Each rank has its own table (its own shard of sequences) and the checkpoint keeps both.
    assert not torch.equal(ranks[0]["mu2"], ranks[1]["mu2"])
    assert torch.equal(last["rank_states"][1]["mu2"], ranks[1]["mu2"])
