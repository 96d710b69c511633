"""egs/builtin/asr without Kaldi: the espeak-ng lexicon, the unigram grammar, the one-line
refusal without Kaldi; with genuine Kaldi (KALDI_ROOT set), the language side through
Kaldi's own prepare_lang.sh and format_lm.sh. Kaldi is a witness, so its absence skips (and
is not one of the prerequisites that CI=true turns into failures)."""

from __future__ import annotations

import gzip
import importlib.util
import math
import os
import shutil
import sys
from pathlib import Path

import pytest

from fhvae.errors import FhvaeError
from helpers import clean_env, run

ROOT = Path(__file__).resolve().parents[1]
ASR = ROOT / "egs" / "builtin" / "asr"
sys.path.insert(0, str(ROOT / "local"))
from synthcorpus.speakers import ACCENTS  # noqa: E402
from synthcorpus.words import WORDS  # noqa: E402


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, ASR / "local" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


prepare_dict = load("prepare_dict")
prepare_lm = load("prepare_lm")


def fake_espeak(tmp_path: Path, body: str) -> str:
    """An espeak-ng stand-in: a shell script that answers per accent (-v is its 5th arg)."""
    script = tmp_path / "espeak"
    script.write_text("#!/usr/bin/env bash\n" + body)
    script.chmod(0o755)
    return str(script)


def test_clean_phones_drops_stress_and_renames_hash():
    assert prepare_dict.clean_phones("b j 'u: t# i f @L") == ["b", "j", "u:", "tH", "i", "f", "@L"]
    assert prepare_dict.clean_phones(",eI 'b @L") == ["eI", "b", "@L"]


def test_lexicon_takes_every_accents_pronunciation_once(tmp_path):
    espeak = fake_espeak(tmp_path, """
case $5 in
  en) printf "'a p @L\\nt 'eI b @L\\n" ;;
  us) printf "'a p @L\\nt 'eI b 3\\n" ;;
esac
""")
    lexicon = prepare_dict.build_lexicon(("apple", "table"), ("en", "us"), espeak)
    assert lexicon == {"apple": [("a", "p", "@L")],
                       "table": [("t", "eI", "b", "@L"), ("t", "eI", "b", "3")]}
    prepare_dict.write_dict_dir(tmp_path / "dict", lexicon)
    assert (tmp_path / "dict" / "lexicon.txt").read_text() == (
        "!SIL SIL\n<UNK> SPN\napple a p @L\ntable t eI b 3\ntable t eI b @L\n")
    assert (tmp_path / "dict" / "nonsilence_phones.txt").read_text().split() == [
        "3", "@L", "a", "b", "eI", "p", "t"]
    assert (tmp_path / "dict" / "silence_phones.txt").read_text() == "SIL\nSPN\n"
    assert (tmp_path / "dict" / "optional_silence.txt").read_text() == "SIL\n"


def test_lexicon_refuses_an_espeak_that_loses_words(tmp_path):
    espeak = fake_espeak(tmp_path, "printf \"'a p @L\\n\"\n")
    with pytest.raises(FhvaeError, match="gave 1 pronunciations for 2 words"):
        prepare_dict.build_lexicon(("apple", "table"), ("en",), espeak)
    with pytest.raises(FhvaeError, match="failed"):
        prepare_dict.build_lexicon(("apple",), ("en",), str(tmp_path / "no-such-espeak"))


def test_real_lexicon_covers_every_word_in_every_training_accent(tmp_path):
    if shutil.which("espeak-ng") is None:
        pytest.skip("no espeak-ng")
    lexicon = prepare_dict.build_lexicon(WORDS, ACCENTS)
    assert set(lexicon) == set(WORDS) and all(lexicon.values())
    phones = {p for prons in lexicon.values() for pron in prons for p in pron}
    assert not any(set(p) & set("',#") for p in phones)
    # the accents differ: more pronunciations than words, and one accent's each time
    assert len(WORDS) < sum(map(len, lexicon.values())) <= len(WORDS) * len(ACCENTS)
    assert all(len(prons) == len(set(prons)) for prons in lexicon.values())


def test_unigram_arpa_is_a_distribution_over_the_vocabulary(tmp_path):
    text = tmp_path / "text"
    text.write_text("u1 red cat\nu2 red dog red\n")
    counts, sentences = prepare_lm.read_text(text)
    arpa = prepare_lm.unigram_arpa(counts, sentences, {"red", "cat", "dog", "sun"})
    entries = {w: float(p) for p, w in (line.split("\t") for line in arpa.splitlines()
                                        if "\t" in line)}
    assert "ngram 1=6" in arpa and entries["<s>"] == -99.0
    # add-one counts: red 3+1, cat 1+1, dog 1+1, sun 0+1, </s> 2+1: total 12
    assert 10 ** entries["red"] == pytest.approx(4 / 12, rel=1e-5)
    assert 10 ** entries["sun"] == pytest.approx(1 / 12, rel=1e-5)
    assert sum(10 ** p for w, p in entries.items() if w != "<s>") == pytest.approx(1, abs=1e-5)
    with pytest.raises(FhvaeError, match="not in the vocabulary, e.g. 'dog'"):
        prepare_lm.unigram_arpa(counts, sentences, {"red", "cat"})
    text.write_text("u1 red\n\n")
    with pytest.raises(FhvaeError, match=f"{text}:2: empty line"):
        prepare_lm.read_text(text)


def test_prepare_lm_cli_writes_gzipped_arpa(tmp_path):
    (tmp_path / "lexicon.txt").write_text("!SIL SIL\n<UNK> SPN\ncat k a t\nred r E d\n")
    (tmp_path / "text").write_text("u1 red cat\n")
    assert prepare_lm.main(["--vocab", str(tmp_path / "lexicon.txt"), str(tmp_path / "text"),
                            str(tmp_path / "lm" / "g.arpa.gz")]) == 0
    arpa = gzip.open(tmp_path / "lm" / "g.arpa.gz", "rt").read()
    assert "\\1-grams:" in arpa and "\tcat" in arpa and "<UNK>" not in arpa
    assert math.isclose(sum(10 ** float(line.split("\t")[0]) for line in arpa.splitlines()
                            if "\t" in line and not line.endswith("<s>")), 1, abs_tol=1e-5)
    assert not list((tmp_path / "lm").glob(".*tmp"))


@pytest.mark.parametrize("kaldi_root, says", [
    (None, "needs Kaldi: set KALDI_ROOT"),
    ("/nonexistent/kaldi", "KALDI_ROOT=/nonexistent/kaldi has no steps/ and utils/"),
])
def test_recipe_without_kaldi_stops_with_one_line(kaldi_root, says):
    env = clean_env(drop=("KALDI_ROOT",))
    if kaldi_root:
        env["KALDI_ROOT"] = kaldi_root
    proc = run(["./run.sh", "--stage", "0"], cwd=ASR, env=env, timeout=120)
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and says in lines[0], proc.stderr


def test_recipe_names_missing_kaldi_tools(tmp_path):
    """A KALDI_ROOT with the scripts but without the GMM binaries: the line names them."""
    for d in ("steps", "utils"):
        (tmp_path / "egs/wsj/s5" / d).mkdir(parents=True)
    (tmp_path / "egs/wsj/s5/steps/train_sat.sh").touch()
    (tmp_path / "egs/wsj/s5/utils/prepare_lang.sh").touch()
    env = clean_env(KALDI_ROOT=str(tmp_path), PATH="/usr/bin:/bin")
    proc = run(["local/check_kaldi.sh"], cwd=ASR, env=env, timeout=60)
    assert proc.returncode == 1 and "lacks Kaldi's GMM tools: compute-mfcc-feats" in proc.stderr


def test_stage_6_names_missing_nnet3_tools(tmp_path):
    """A KALDI_ROOT with every GMM tool but no nnet3bin: the recipe's check passes, and with
    --nnet3 (stage 6) it stops with one line naming the nnet3 tools and the build option."""
    kaldi = tmp_path / "kaldi"
    for d in ("steps", "utils"):
        (kaldi / "egs/wsj/s5" / d).mkdir(parents=True)
    (kaldi / "egs/wsj/s5/steps/train_sat.sh").touch()
    (kaldi / "egs/wsj/s5/utils/prepare_lang.sh").touch()
    script = (ASR / "local/check_kaldi.sh").read_text()
    gmm_tools = script.split('tools="', 1)[1].split('"', 1)[0].split()
    (kaldi / "bin").mkdir()
    for tool in gmm_tools + ["nnet3-init"]:
        (kaldi / "bin" / tool).write_text("#!/bin/sh\n")
        (kaldi / "bin" / tool).chmod(0o755)
    work = asr_copy(tmp_path)
    env = clean_env(KALDI_ROOT=str(kaldi), PATH="/usr/bin:/bin")
    assert run(["local/check_kaldi.sh"], cwd=work, env=env, timeout=60).returncode == 0
    proc = run(["local/check_kaldi.sh", "--nnet3"], cwd=work, env=env, timeout=60)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert "lacks Kaldi's nnet3 tools (stage 6): nnet3-am-init nnet3-get-egs" in lines[0]
    assert "nnet3-init " not in lines[0] and "build_kaldi.sh --nnet3" in lines[0]


def kaldi_root() -> Path:
    root = os.environ.get("KALDI_ROOT")
    if not root or not (Path(root) / "bin" / "gmm-init-mono").exists() and not (
            Path(root) / "src" / "gmmbin" / "gmm-init-mono").exists():
        pytest.skip("no genuine Kaldi with GMM tools at $KALDI_ROOT (a witness, not a dependency)")
    return Path(root)


def asr_copy(tmp_path: Path) -> Path:
    """The recipe copied to <tmp>/a/b/asr, without its data and exp; the project's own
    scripts, which it reaches through ../../.., linked into <tmp>."""
    for name in ("utils", "path.sh", "fhvae", "local"):
        (tmp_path / name).symlink_to(ROOT / name)
    work = tmp_path / "a" / "b" / "asr"
    shutil.copytree(ASR, work, ignore=shutil.ignore_patterns("data", "exp", "steps", "utils"))
    return work


def test_language_side_through_genuine_kaldi(tmp_path):
    """Stage 0 with genuine Kaldi: prepare_lang.sh validates the espeak dict, format_lm.sh
    compiles the unigram into G.fst (Kaldi's own checks run inside both)."""
    kaldi_root()
    work = asr_copy(tmp_path)
    main = tmp_path / "main"
    (main / "data" / "train").mkdir(parents=True)
    (main / "data" / "train" / "text").write_text("u1 red apple\nu2 apple green tree\n")
    proc = run(["./run.sh", "--stage", "0", "--stop-stage", "0", "--main", str(main)],
               cwd=work, env=clean_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lang = work / "data/lang_test"
    assert (lang / "G.fst").stat().st_size > 0
    words = (lang / "words.txt").read_text().split()
    assert all(w in words for w in ("apple", "zero", "<UNK>", "#0"))


def test_pasted_features_are_the_parts_side_by_side_through_genuine_kaldi(tmp_path):
    """local/paste_feats.sh (a '<a>+<b>' feature type) through Kaldi's paste-feats: each
    frame is the two parts' frames concatenated, with CMVN stats of the joint vector; a
    second call with nothing newer keeps it (resume)."""
    kaldi_root()
    import kaldiio
    import numpy as np
    work = asr_copy(tmp_path)
    proc = run(["local/check_kaldi.sh"], cwd=work, env=clean_env(), timeout=60)
    assert proc.returncode == 0, proc.stderr
    rng = np.random.default_rng(0)
    parts = {}
    for name, dim in (("a", 13), ("b", 32)):
        d = work / "data" / name
        d.mkdir(parents=True)
        parts[name] = {u: rng.normal(size=(n, dim)).astype(np.float32)
                       for u, n in (("s1-u1", 50), ("s1-u2", 61), ("s2-u1", 47))}
        kaldiio.save_ark(str(d / "feats.ark"), parts[name], scp=str(d / "feats.scp"))
        (d / "utt2spk").write_text("".join(f"{u} {u[:2]}\n" for u in parts[name]))
        (d / "spk2utt").write_text("s1 s1-u1 s1-u2\ns2 s2-u1\n")
    paste = ["local/paste_feats.sh", "--nj", "1", "data/a+b", "data/a", "data/b"]
    proc = run(paste, cwd=work, env=clean_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    pasted = dict(kaldiio.load_scp(str(work / "data/a+b/feats.scp")))
    assert sorted(pasted) == sorted(parts["a"])
    for utt, feats in pasted.items():
        np.testing.assert_allclose(feats, np.hstack([parts["a"][utt], parts["b"][utt]]), rtol=1e-6)
    cmvn = dict(kaldiio.load_scp(str(work / "data/a+b/cmvn.scp")))
    np.testing.assert_allclose(cmvn["s2"][0, :-1], pasted["s2-u1"].sum(0), rtol=1e-4)
    assert cmvn["s2"][0, -1] == 47
    stamp = (work / "data/a+b/cmvn.scp").stat().st_mtime_ns
    proc = run(paste, cwd=work, env=clean_env(), timeout=300)
    assert proc.returncode == 0 and (work / "data/a+b/cmvn.scp").stat().st_mtime_ns == stamp


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_recipe_end_to_end_with_genuine_kaldi(tmp_path):
    """A tiny main recipe (8 training speakers, the clean twin, a tiny FHVAE), then every
    stage of egs/builtin/asr with genuine Kaldi on mfcc and z1, both training conditions:
    the WER tables exist per condition, with Kaldi's own counts (score_decode checks them)."""
    kaldi_root()
    from test_run_e2e import TINY, recipe_env, repo_copy
    root = repo_copy(tmp_path)
    main = ["./run.sh", "--num-train-spk", "8", "--num-dev-spk", "4", "--num-test-spk", "4",
            "--num-unseen-spk", "4", "--num-dev-unseen-spk", "2", "--utts-per-spk", "4",
            "--train-clean", "true", "--stop-stage", "3", "--ivector", "false",
            "--fhvae-config", str(TINY.relative_to(ROOT))]
    proc = run(main, cwd=root, env=recipe_env(), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    asr = ["./run.sh", "--feats", "mfcc fhvae_z1", "--fhvae-models", "fhvae:exp/fhvae:none",
           "--final", "tri1", "--mono-gauss", "100", "--tri-leaves", "60", "--tri-gauss", "300",
           "--bootstrap", "50"]
    proc = run(asr, cwd=root / "egs/builtin/asr", env=clean_env(KALDI_ROOT=os.environ["KALDI_ROOT"]),
               timeout=1700)
    assert proc.returncode == 0, proc.stderr[-3000:]
    import json
    for train in ("train", "train_clean"):
        out = root / f"egs/builtin/asr/RESULTS_{train}"
        summary = json.loads(out.with_suffix(".json").read_text())
        assert set(summary) == {f"{train}/{s}" for s in ("dev", "test", "test_unseen")}
        for table in summary.values():
            assert set(table) == {f"{train}_mfcc", f"{train}_fhvae_z1"}
            for system in table.values():
                assert 0 <= system["all"]["wer"] < 200 and system["all"]["words"] > 0
                assert len(system) > 2          # 'all' and at least two conditions
        assert "(dev: every choice is made here)" in out.with_suffix(".md").read_text()
