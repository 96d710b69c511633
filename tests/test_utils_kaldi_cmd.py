"""The project's scripts call `$cmd` only as Kaldi's run.pl/queue.pl/slurm.pl expect:
make_fbank.sh, extract_latents.sh and train_fhvae.sh run under a stand-in run.pl written
here (run.pl's interface: options, JOB=a:b, JOB in the log name and the joined command)."""

import os
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import soundfile
import torch

from fhvae.io.tables import write_table
from fhvae.model import FHVAE, ModelConfig
from fhvae.training.checkpoint import save_checkpoint
import helpers
from helpers import clean_env, python_bin

ROOT = Path(__file__).resolve().parents[1]

# Mimics Kaldi's utils/run.pl: skips queue options, expands JOB=a:b (or JOB=n), joins the
# words (whitespace-free as is, others in double quotes, or single if they hold a '"'),
# substitutes JOB in the log name and the joined command, runs it with `bash -c`.
FAKE_RUN_PL = r"""#!/usr/bin/env bash
echo "$*" >> "$RUNPL_RECORD"
while [[ $# -ge 2 && $1 == -* ]]; do shift 2; done
var= first=1 last=1
if [[ $1 =~ ^([A-Za-z_][A-Za-z0-9_]*)=([0-9]+)(:([0-9]+))?$ ]]; then
  var=${BASH_REMATCH[1]} first=${BASH_REMATCH[2]} last=${BASH_REMATCH[4]:-${BASH_REMATCH[2]}}
  shift
fi
log=$1; shift
cmd=
for w in "$@"; do
  if [[ $w =~ ^[^[:space:]]+$ ]]; then cmd+="$w "
  elif [[ $w == *\"* ]]; then cmd+="'$w' "
  else cmd+="\"$w\" "; fi
done
rc=0
for ((j = first; j <= last; j++)); do
  l=$log c=$cmd
  if [ -n "$var" ]; then l=${l//$var/$j}; c=${c//$var/$j}; fi
  mkdir -p "$(dirname "$l")"
  echo "# $c" > "$l"
  bash -c "$c" >> "$l" 2>&1 || rc=1
done
exit $rc
"""


@pytest.fixture
def run_pl(tmp_path):
    path = tmp_path / "run.pl"
    path.write_text(FAKE_RUN_PL)
    path.chmod(0o755)
    record = tmp_path / "run.pl.args"
    env = clean_env(RUNPL_RECORD=str(record), LC_ALL="C",
                    PATH=f"{python_bin(tmp_path / 'pybin')}:{os.environ['PATH']}")
    return path, record, env


def run(argv, cwd, env):
    return helpers.run(argv, cwd=cwd, env=env, timeout=120)   # <= 2 per test: < 300 s


def test_make_fbank_under_kaldi_run_pl(tmp_path, run_pl):
    cmd, record, env = run_pl
    for name in ("utils", "conf", "path.sh"):
        (tmp_path / name).symlink_to(ROOT / name)
    (tmp_path / "wav").mkdir()
    rng = np.random.default_rng(0)
    wavs = []
    for i, seconds in enumerate([0.5, 0.3, 0.8]):
        soundfile.write(tmp_path / "wav" / f"r{i}.wav",
                        0.1 * rng.standard_normal(int(16000 * seconds)), 16000, subtype="PCM_16")
        wavs.append(f"r{i} {tmp_path}/wav/r{i}.wav\n")
    feats = {}
    for launcher in (str(cmd), "utils/parallel/run_local.sh"):
        data = tmp_path / "data" / Path(launcher).name
        data.mkdir(parents=True)
        (data / "wav.scp").write_text("".join(wavs))
        res = run(["utils/make_fbank.sh", "--nj", "2", "--cmd", launcher, f"data/{data.name}",
                   f"exp/make_fbank/{data.name}", f"fbank_{data.name}"], tmp_path, env)
        assert res.returncode == 0, res.stderr
        feats[launcher] = dict(kaldiio.load_scp(str(data / "feats.scp")))
    call = record.read_text().splitlines()
    assert len(call) == 1 and call[0].startswith(
        "JOB=1:2 exp/make_fbank/run.pl/make_fbank.JOB.log python -m fhvae.bin.compute_fbank ")
    for j in (1, 2):
        log = (tmp_path / f"exp/make_fbank/run.pl/make_fbank.{j}.log").read_text()
        assert f"raw_fbank_run.pl.{j}.ark" in log.splitlines()[0]
    ours, kaldis = feats["utils/parallel/run_local.sh"], feats[str(cmd)]
    assert sorted(kaldis) == sorted(ours) == ["r0", "r1", "r2"]
    for utt in ours:
        np.testing.assert_array_equal(kaldis[utt], ours[utt])


@pytest.mark.slow
def test_extract_latents_under_kaldi_run_pl(tmp_path, run_pl):
    cmd, record, env = run_pl
    cfg = ModelConfig(feat_dim=80, hidden=16, z1_dim=4, z2_dim=6, num_seqs=4)
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "model.pt", {
        "model_config": cfg.to_dict(), "model": FHVAE(cfg).state_dict(),
        "mvn_mean": torch.zeros(80), "mvn_std": torch.ones(80), "train_config": {}, "step": 0})
    data = tmp_path / "data"
    data.mkdir()
    lengths = {"spkA-u1": 25, "spkA-u2": 30, "spkB-u1": 22}
    rng = np.random.default_rng(1)
    write_table(data / "feats.ark", data / "feats.scp",
                [(u, rng.normal(size=(n, 80)).astype(np.float32)) for u, n in lengths.items()])
    (data / "utt2num_frames").write_text("".join(f"{u} {n}\n" for u, n in lengths.items()))
    (data / "utt2spk").write_text("".join(f"{u} {u.split('-')[0]}\n" for u in lengths))
    svectors = {}
    for launcher, nj in ((str(cmd), 2), ("run_local.sh", 1)):
        out = tmp_path / f"out_{nj}"
        res = run(["utils/extract_latents.sh", "--nj", str(nj), "--cmd", launcher,
                   "--device", "cpu", "--svector-only", "true", str(tmp_path / "model.pt"),
                   str(data), str(out)], ROOT, env)
        assert res.returncode == 0, res.stderr + res.stdout
        svectors[nj] = dict(kaldiio.load_scp(str(out / "svector.scp")))
    call = record.read_text().splitlines()
    assert len(call) == 1 and call[0].startswith(
        f"JOB=1:2 {tmp_path}/out_2/log/extract.JOB.log python -m fhvae.bin.extract --job JOB ")
    assert (tmp_path / "out_2/log/extract.2.log").read_text().startswith(
        "# python -m fhvae.bin.extract --job 2 ")
    assert sorted(svectors[2]) == sorted(lengths)
    for utt in lengths:
        np.testing.assert_allclose(svectors[2][utt], svectors[1][utt], rtol=1e-5, atol=1e-6)


# Stand-in for a launcher: records its argv, "trains" by writing <exp>/final.pt.
RECORDING_CMD = """#!/usr/bin/env bash
echo "$*" >> "$RUNPL_RECORD"
exp=${!#}
touch "$exp/final.pt"
"""


@pytest.mark.parametrize("options, config_device, expected", [
    ([], "cpu", "exp/log/train.log python -m fhvae.bin.train "),
    ([], "cuda", "--gpu 1 exp/log/train.log python -m fhvae.bin.train "),
    (["--nproc-per-node", "2", "--extra-opts", "--set device=cuda"], "cpu",
     "--gpu 2 exp/log/train.log python -m torch.distributed.run --standalone "
     "--nproc_per_node=2 -m fhvae.bin.train "),
    (["--gpu", "3", "--extra-opts", "--device cpu"], "cpu",
     "--gpu 3 exp/log/train.log python -m fhvae.bin.train "),
    (["--gpu", "0"], "cuda", "exp/log/train.log python -m fhvae.bin.train "),
])
def test_train_fhvae_runs_through_cmd_with_kaldi_gpu_option(tmp_path, run_pl, options,
                                                            config_device, expected):
    _, record, env = run_pl
    launcher = tmp_path / "cmd.sh"
    launcher.write_text(RECORDING_CMD)
    launcher.chmod(0o755)
    (tmp_path / "utils").symlink_to(ROOT / "utils")
    (tmp_path / "data/fhvae").mkdir(parents=True)
    for name in ("train_index.npz", "heldout_index.npz", "mvn.npz"):
        (tmp_path / "data/fhvae" / name).write_bytes(b"")
    (tmp_path / "c.yaml").write_text(f"max_steps: 3\ndevice: {config_device}   # comment\n")
    res = run(["utils/train_fhvae.sh", "--cmd", str(launcher), "--config", "c.yaml", *options,
               "data", "-", "exp"], tmp_path, env)
    assert res.returncode == 0, res.stderr
    call = record.read_text()
    assert call.startswith(expected), call
    assert " --config c.yaml --seed 0 --train-index data/fhvae/train_index.npz " in call
    assert call.rstrip().endswith(" exp")
