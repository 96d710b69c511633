"""python -m fhvae apply-utt-cmvn: a data dir copy whose features are normalised by each
utterance's own mean and standard deviation (checked with numpy and kaldiio, not fhvae's
readers), every other table carried, bad input refused before anything is written, and
whole progress lines in a redirected log."""

from __future__ import annotations

import subprocess
from pathlib import Path

import kaldiio
import numpy as np

from helpers import python, run


def make_data_dir(root: Path) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    feats = {f"s{s}-u{u}": (rng.normal(5.0 * s, 1.0 + u, size=(30 + 7 * u, 4)) + 3.0)
             .astype(np.float32) for s in (1, 2) for u in (1, 2)}
    data = root / "src"
    data.mkdir()
    kaldiio.save_ark(str(root / "raw.ark"), feats, scp=str(data / "feats.scp"))
    (data / "utt2spk").write_text("".join(f"{u} {u.split('-')[0]}\n" for u in sorted(feats)))
    (data / "spk2utt").write_text("s1 s1-u1 s1-u2\ns2 s2-u1 s2-u2\n")
    (data / "text").write_text("".join(f"{u} word {u}\n" for u in sorted(feats)))
    return feats


def apply(root: Path, *args: str):
    return run([python(), "-m", "fhvae", "apply-utt-cmvn", *args], cwd=root)


def test_features_are_normalised_per_utterance_and_tables_carried(tmp_path):
    feats = make_data_dir(tmp_path)
    proc = apply(tmp_path, "src", "out/src_cmvn", "fb")
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "out" / "src_cmvn"
    got = dict(kaldiio.load_scp(str(out / "feats.scp")))
    assert sorted(got) == sorted(feats)
    for utt, x in feats.items():
        x = x.astype(np.float64)
        np.testing.assert_allclose(got[utt], (x - x.mean(0)) / x.std(0), atol=1e-5)
        assert abs(got[utt].mean()) < 1e-5 and np.allclose(got[utt].std(0), 1.0, atol=1e-4)
    for name in ("utt2spk", "spk2utt", "text"):
        assert (out / name).read_text() == (tmp_path / "src" / name).read_text(), name
    frames = dict(line.split() for line in (out / "utt2num_frames").read_text().splitlines())
    assert {u: int(n) for u, n in frames.items()} == {u: len(x) for u, x in feats.items()}
    stats = dict(kaldiio.load_scp(str(out / "cmvn.scp")))      # per speaker, Kaldi's layout
    s1 = np.concatenate([got["s1-u1"], got["s1-u2"]]).astype(np.float64)
    np.testing.assert_allclose(stats["s1"][0, :-1], s1.sum(0), atol=1e-3)
    assert stats["s1"][0, -1] == len(s1)
    # The features' scp names the ark by its absolute path: readable from anywhere.
    assert all(Path(line.split()[1].rsplit(":", 1)[0]).is_absolute()
               for line in (out / "feats.scp").read_text().splitlines())


def test_bad_input_is_one_line_and_writes_nothing(tmp_path):
    make_data_dir(tmp_path)
    missing = apply(tmp_path, "nowhere", "out/x", "fb")
    assert missing.returncode != 0
    assert "nowhere/feats.scp: not found" in missing.stderr.strip().splitlines()[-1]
    (tmp_path / "src" / "utt2spk").write_text("s1-u1 s1\ns1-u2 s1\ns2-u1 s2\n")   # no s2-u2
    unknown = apply(tmp_path, "src", "out/src_cmvn", "fb")
    assert unknown.returncode != 0
    last = unknown.stderr.strip().splitlines()[-1]
    assert "src/utt2spk" in last and "'s2-u2'" in last, unknown.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_redirected_log_gets_whole_progress_lines(tmp_path):
    """`... > log 2>&1`, as recipes run on a cluster: no carriage-return redraws, a line at
    the start and at the end of the loop."""
    make_data_dir(tmp_path)
    log = tmp_path / "apply.log"
    with open(log, "w") as handle:
        proc = run([python(), "-m", "fhvae", "apply-utt-cmvn", "src", "out/src_cmvn", "fb"],
                   cwd=tmp_path, stdout=handle, stderr=subprocess.STDOUT)
    text = log.read_bytes().decode()        # read_text() would turn a "\r" into "\n"
    assert proc.returncode == 0 and "\r" not in text, text
    lines = [line for line in text.splitlines() if line.startswith("utt_cmvn_src_cmvn: ")]
    assert [line.rsplit(",", 1)[0] for line in lines] == ["utt_cmvn_src_cmvn: 0 utt",
                                                          "utt_cmvn_src_cmvn: 4 utt"], text
