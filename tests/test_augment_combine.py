"""utils/combine_data.sh (Kaldi's command line): a source dir and its augmented copies
combined; per-speaker CMVN statistics checked against statistics of the combined
features computed independently."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fhvae.errors import FhvaeError
from fhvae.io.combine import combine_data
from fhvae.io.feature_dir import cmvn_stats
from fhvae.io.tables import read_scp, write_table
from fhvae.io.text_table import read_dict, read_kv
from fhvae.io.validate import validate_data_dir
from helpers import run

ROOT = Path(__file__).resolve().parents[1]


def make_dir(data: Path, utts: dict[str, str], seed: int, wav: bool, ctm: bool = True) -> dict:
    """A data dir of `utts` (utt -> speaker) with random features and per-speaker cmvn."""
    rng = np.random.default_rng(seed)
    feats = {u: rng.normal(size=(rng.integers(5, 30), 3)).astype(np.float32) for u in utts}
    write_table(data / "feats.ark", data / "feats.scp", sorted(feats.items()))
    lines = lambda pairs: "".join(f"{k} {v}\n" for k, v in sorted(pairs))   # noqa: E731
    (data / "utt2spk").write_text(lines(utts.items()))
    spk2utt: dict[str, list[str]] = {}
    for u in sorted(utts):
        spk2utt.setdefault(utts[u], []).append(u)
    (data / "spk2utt").write_text(lines((s, " ".join(us)) for s, us in spk2utt.items()))
    (data / "text").write_text(lines((u, f"text {u}") for u in utts))
    if wav:
        (data / "wav.scp").write_text(lines((u, f"/a/{u}.wav") for u in utts))
    if ctm:
        (data / "ali.ctm").write_text("".join(f"{u} 1 0.0 0.1 a x\n{u} 1 0.1 0.1 b y\n"
                                              for u in sorted(utts)))
    stats = {s: sum(cmvn_stats(feats[u]) for u in us) for s, us in spk2utt.items()}
    write_table(data / "cmvn.ark", data / "cmvn.scp", sorted(stats.items()), dtype=np.float64)
    return feats


@pytest.fixture
def dirs(tmp_path):
    src = {"s1-a": "s1", "s1-b": "s1", "s2-a": "s2"}
    aug = {"s1-a-n": "s1", "s1-b-n": "s1", "s2-a-n": "s2", "s3-a-n": "s3"}
    feats = {**make_dir(tmp_path / "src", src, 0, wav=True),
             **make_dir(tmp_path / "aug", aug, 1, wav=False)}
    (tmp_path / "aug" / "utt2uniq").write_text("".join(f"{u} {u[:-2]}\n" for u in sorted(aug)))
    return tmp_path, {**src, **aug}, feats


def test_script_combines_with_summed_cmvn_from_another_directory(dirs):
    root, utt2spk, feats = dirs
    work = root / "elsewhere"
    work.mkdir()
    proc = run([str(ROOT / "utils/combine_data.sh"), "comb", "../src", "../aug"], cwd=work)
    assert proc.returncode == 0, proc.stderr
    comb = work / "comb"
    assert "not creating" in proc.stderr and "wav.scp" in proc.stderr     # aug has no audio
    assert not (comb / "wav.scp").exists()
    validate_data_dir(comb, need_wav=False, need_text=True, spk_sort=True)
    assert read_dict(comb / "utt2spk") == utt2spk
    assert read_dict(comb / "utt2uniq")["s1-a"] == "s1-a"                   # identity added
    assert read_dict(comb / "utt2uniq")["s1-a-n"] == "s1-a"
    assert len((comb / "ali.ctm").read_text().splitlines()) == 2 * len(utt2spk)
    got = dict(read_scp(comb / "cmvn.scp"))
    for spk in set(utt2spk.values()):
        x = np.concatenate([feats[u] for u in sorted(feats)
                            if utt2spk[u] == spk]).astype(np.float64)
        np.testing.assert_allclose(got[spk][0, :-1], x.sum(0), rtol=1e-6)
        np.testing.assert_allclose(got[spk][1, :-1], (x ** 2).sum(0), rtol=1e-6)
        assert got[spk][0, -1] == len(x)
    for utt, mat in read_scp(comb / "feats.scp"):
        np.testing.assert_array_equal(mat, feats[utt])


def test_duplicate_utterance_is_an_error_naming_both_files(dirs):
    root, _, _ = dirs
    with pytest.raises(FhvaeError, match=r"src/feats.scp: 's1-a' is also in .*src/feats.scp"):
        combine_data(root / "comb", [root / "src", root / "src"])


def test_extra_files_and_skip_fix(dirs):
    root, utt2spk, _ = dirs
    for d in ("src", "aug"):
        utts = sorted(read_dict(root / d / "utt2spk"))
        (root / d / "notes").write_text("".join(f"{u} note\n" for u in utts))
    proc = run([str(ROOT / "utils/combine_data.sh"), "--extra-files", "notes", "--skip-fix", "true",
                str(root / "comb"), str(root / "aug"), str(root / "src")])
    assert proc.returncode == 0, proc.stderr
    keys = [k for k, _ in read_kv(root / "comb" / "notes")]
    assert keys == sorted(utt2spk, key=str.encode)
    assert not (root / "comb" / ".backup").exists()                       # fix_data_dir skipped
