"""Streamed, parallel, resumable i-vector training (fhvae/ivector/{training,em,resume}.py,
utils/train_ivector.sh): the jobs' accumulators add up to one job's, blocks of statistics
do not change them, and a run killed mid-iteration resumes to the model of an
uninterrupted one."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import kaldiio
import numpy as np
import pytest

from fhvae.io.datadir import DataDir
from fhvae.io.split import split_data_dir
from fhvae.ivector import training
from fhvae.ivector.em import EmAccumulators, EmOptions, accumulate
from fhvae.ivector.features import FrontEndConfig
from fhvae.ivector.reader import processed_feats
from fhvae.ivector.resume import resume_point
from fhvae.ivector.stats import stats_blocks
from fhvae.ivector.system import IvectorConfig, IvectorSystem
from helpers import ROOT, clean_env, run

NUM_BINS = 12
CFG = IvectorConfig(front_end=FrontEndConfig(num_ceps=8), num_gauss=4, ivector_dim=3,
                    ubm_iters=3, em_iters=3, em=EmOptions(min_count=0))
WRAPPER_OPTS = "--num-gauss 4 --ivector-dim 3 --num-iters 3 --ubm-iters 3 --num-ceps 8 " \
               "--gaussian-min-count 0"


def write_data_dir(path: Path, num_spk: int = 4, utts_per_spk: int = 6) -> DataDir:
    """Speakers with their own spectral offset, 60-160 frames per utterance."""
    rng = np.random.default_rng(11)
    path.mkdir(parents=True)
    utts = {}
    for s in range(num_spk):
        offset = rng.normal(0, 2, NUM_BINS)
        for u in range(utts_per_spk):
            frames = int(rng.integers(60, 160))
            utts[f"spk{s}-utt{u}"] = (rng.normal(0, 1, (frames, NUM_BINS)) + offset + 8
                                      ).astype(np.float32)
    with kaldiio.WriteHelper(f"ark,scp:{path / 'feats.ark'},{path / 'feats.scp'}") as writer:
        for utt in sorted(utts):
            writer(utt, utts[utt])
    (path / "utt2spk").write_text("".join(f"{u} {u.split('-')[0]}\n" for u in sorted(utts)))
    return DataDir(path)


def assert_accumulators_close(got: EmAccumulators, want: EmAccumulators) -> None:
    assert got.num_utts == want.num_utts
    for f in dataclasses.fields(EmAccumulators):
        if f.name != "seconds":
            np.testing.assert_allclose(getattr(got, f.name), getattr(want, f.name),
                                       rtol=1e-11, atol=1e-9, err_msg=f.name)


def assert_same_system(got: IvectorSystem, want: IvectorSystem) -> None:
    for part in ("ubm", "extractor"):
        for name, value in vars(getattr(want, part)).items():
            np.testing.assert_array_equal(getattr(getattr(got, part), name), value,
                                          err_msg=f"{part}.{name}")


def test_two_jobs_accumulators_sum_to_one_jobs(tmp_path):
    """Each job's accumulator file (what ivector-acc-stats writes for split<2>/JOB),
    loaded and summed, equals one job's over the whole set; so do the updated models."""
    data = write_data_dir(tmp_path / "data")
    system = training.init_system(data, CFG)
    whole = training.accumulate_data(system, data)
    split_data_dir(data.path, 2)
    for job in (1, 2):
        training.accumulate_data(system, DataDir(data.path / "split2" / str(job))).save(
            tmp_path / f"acc.{job}.npz")
    summed = EmAccumulators.load(tmp_path / "acc.1.npz")
    summed += EmAccumulators.load(tmp_path / "acc.2.npz")
    assert 0 < EmAccumulators.load(tmp_path / "acc.1.npz").num_utts < whole.num_utts == 24
    assert_accumulators_close(summed, whole)
    one, two = training.update_system(system, [whole]), training.update_system(system, [summed])
    for name, value in vars(one.extractor).items():
        np.testing.assert_allclose(getattr(two.extractor, name), value, rtol=1e-9, atol=1e-12)


def test_blocks_of_statistics_do_not_change_the_accumulators(tmp_path):
    """The E-step sees blocks of utterances (one held at a time): blocks of 5 must give
    what all 24 utterances in one block give."""
    data = write_data_dir(tmp_path / "data")
    system = training.init_system(data, CFG)

    def accumulated(block_size: int) -> EmAccumulators:
        feats = processed_feats(data, CFG.front_end, system.input_dim, np.float32)
        blocks = stats_blocks(system.ubm, feats, CFG.min_post, CFG.num_gselect, True,
                              block_size)
        return accumulate(system.extractor, blocks, CFG.em.update_means)

    assert_accumulators_close(accumulated(5), accumulated(24))


@pytest.mark.parametrize("max_frames", [0, 10**6, 300])   # the set has 561
def test_ubm_frames_are_those_the_whole_set_gives(tmp_path, max_frames):
    """Streamed, capped or not: the frames of every utterance subsampled, concatenated,
    then (over the cap) ubm_max_frames of them drawn as before streaming."""
    data = write_data_dir(tmp_path / "data")
    cfg = dataclasses.replace(CFG, ubm_max_frames=max_frames)
    frames = np.concatenate([x[::cfg.ubm_subsample] for _, x in processed_feats(
        data, cfg.front_end, NUM_BINS, np.float32)])
    if frames.shape[0] > max_frames > 0:
        rng = np.random.default_rng(cfg.seed + 1)
        frames = frames[np.sort(rng.choice(frames.shape[0], max_frames, replace=False))]
    np.testing.assert_array_equal(training.ubm_frames(data, None, cfg, NUM_BINS), frames)


def test_ubm_reads_a_seeded_subset_only_beyond_the_cap():
    cfg = dataclasses.replace(CFG, ubm_max_utts=100)
    assert training.ubm_rows(100, cfg) is None
    assert training.ubm_rows(10**6, dataclasses.replace(cfg, ubm_max_utts=0)) is None
    rows = training.ubm_rows(1000, cfg)
    assert len(rows) == 100 and rows <= set(range(1000))
    assert rows == training.ubm_rows(1000, cfg) != training.ubm_rows(
        1000, dataclasses.replace(cfg, seed=1))
    assert IvectorConfig().ubm_max_utts > 2400          # data/train: the whole of it


def test_resume_after_a_killed_iteration_gives_the_same_model(tmp_path, monkeypatch):
    data = write_data_dir(tmp_path / "data")
    want = training.train_ivector_system(data, CFG, tmp_path / "whole")
    calls = 0
    add = EmAccumulators.add

    def dies_in_the_third_iteration(self, model, stats):
        nonlocal calls
        calls += 1
        if calls == 3:                      # one block per iteration: the third's
            raise KeyboardInterrupt
        add(self, model, stats)

    monkeypatch.setattr(EmAccumulators, "add", dies_in_the_third_iteration)
    with pytest.raises(KeyboardInterrupt):
        training.train_ivector_system(data, CFG, tmp_path / "killed")
    monkeypatch.setattr(EmAccumulators, "add", add)
    assert sorted(p.name for p in (tmp_path / "killed").iterdir()) == ["extractor.2.npz"]

    def no_ubm(*_):
        raise AssertionError("resumed training must not start again")

    monkeypatch.setattr(training, "init_system", no_ubm)
    got = training.train_ivector_system(data, CFG, tmp_path / "killed")
    assert sorted(p.name for p in (tmp_path / "killed").iterdir()) == ["extractor.npz"]
    assert_same_system(got, want)
    assert_same_system(IvectorSystem.load(tmp_path / "killed" / "extractor.npz"), want)


def test_resume_only_from_the_same_options_and_data(tmp_path):
    data = write_data_dir(tmp_path / "data")
    exp = tmp_path / "exp"
    system = training.init_system(data, CFG)
    system.save(exp / "extractor.1.npz")
    (exp / ".acc.1.2.npz.tmp999").write_bytes(b"half")
    (exp / "acc.1.1.npz").write_bytes(b"stale")
    assert resume_point(exp, data, dataclasses.replace(CFG, num_threads=2)) == 1
    assert sorted(p.name for p in exp.iterdir()) == ["extractor.1.npz"]
    assert resume_point(exp, data, dataclasses.replace(CFG, ivector_dim=2)) is None
    assert not list(exp.iterdir())
    system.save(exp / "extractor.1.npz")
    data.feats_scp.touch()                     # the data changed after the model
    assert resume_point(exp, data, CFG) is None


KILLING_LAUNCHER = """#!/usr/bin/env bash
# run_local.sh, except that the accumulation jobs of EM iteration 1 are killed
case "$*" in *acc.1.JOB.log*) echo "job killed" >&2; exit 137 ;; esac
exec run_local.sh "$@"
"""


@pytest.mark.timeout(600)
def test_wrapper_resumes_after_a_killed_job(tmp_path):
    """utils/train_ivector.sh, 2 jobs: killed in iteration 1 (jobs lost, a half-written
    temporary left), re-run: it resumes from extractor.1.npz and ends with the model of
    an uninterrupted run."""
    data = write_data_dir(tmp_path / "data")
    launcher = tmp_path / "killing_cmd.sh"
    launcher.write_text(KILLING_LAUNCHER)
    launcher.chmod(0o755)

    def wrapper(cmd: str, exp: str):
        return run([str(ROOT / "utils" / "train_ivector.sh"), "--nj", "2", "--cmd", cmd,
                    "--extra-opts", WRAPPER_OPTS, str(data.path), str(tmp_path / exp)],
                   cwd=tmp_path, env=clean_env())

    assert wrapper("run_local.sh", "whole").returncode == 0
    killed = wrapper(str(launcher), "killed")
    assert killed.returncode != 0 and "accumulation failed on iteration 1" in killed.stderr
    assert (tmp_path / "killed" / "extractor.1.npz").is_file()
    (tmp_path / "killed" / ".acc.1.1.npz.tmp4242").write_bytes(b"half-written")
    resumed = wrapper("run_local.sh", "killed")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming after EM iteration 1 of 3" in resumed.stderr
    assert sorted(p.name for p in (tmp_path / "killed").iterdir()) == ["extractor.npz", "log"]
    assert_same_system(IvectorSystem.load(tmp_path / "killed" / "extractor.npz"),
                       IvectorSystem.load(tmp_path / "whole" / "extractor.npz"))
    again = wrapper("run_local.sh", "killed")
    assert again.returncode == 0 and "already trained" in again.stderr
