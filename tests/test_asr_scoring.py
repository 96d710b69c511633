"""fhvae.asr: word errors against an independent edit distance, per-condition sums, the paired
speaker bootstrap, Kaldi's scoring files read back, and the per-condition WER tables."""

from __future__ import annotations

import itertools
import json
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

from fhvae.asr.kaldi_decode import best_on, read_hypotheses, read_wer_file
from fhvae.asr.report import (EvalSet, build_report, gap_closed, gap_lines, score_decode,
                              write_report)
from fhvae.asr.wer import (Errors, align_errors, correct_family, speaker_bootstrap, sum_by,
                           utterance_errors)
from fhvae.errors import FhvaeError


def edit_distance(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    """Levenshtein distance by plain recursion: the reference for align_errors' totals."""
    @lru_cache(maxsize=None)
    def d(i: int, j: int) -> int:
        if i == 0 or j == 0:
            return i + j
        return min(d(i - 1, j) + 1, d(i, j - 1) + 1, d(i - 1, j - 1) + (a[i - 1] != b[j - 1]))
    return d(len(a), len(b))


@pytest.mark.parametrize("ref, hyp, want", [
    ("a b c", "a b c", (0, 0, 0)),
    ("a b c", "a x c", (1, 0, 0)),
    ("a b c", "a c", (0, 1, 0)),
    ("a b c", "a b c d", (0, 0, 1)),
    ("a b c", "", (0, 3, 0)),
    ("", "a b", (0, 0, 2)),
    ("the cat sat", "cat sat on mat", (0, 1, 2)),   # not 3 substitutions and an insertion
    ("a b", "b a", (2, 0, 0)),                      # ties: substitutions first
])
def test_align_errors_by_hand(ref, hyp, want):
    e = align_errors(ref.split(), hyp.split())
    assert (e.sub, e.dele, e.ins) == want and e.words == len(ref.split())


def test_align_errors_total_is_the_edit_distance():
    rng = np.random.default_rng(0)
    for _ in range(300):
        ref = tuple(rng.choice(list("abcd"), size=rng.integers(0, 7)))
        hyp = tuple(rng.choice(list("abcde"), size=rng.integers(0, 7)))
        e = align_errors(ref, hyp)
        assert e.total == edit_distance(ref, hyp)
        assert e.sub + e.dele <= len(ref) and e.dele - e.ins == len(ref) - len(hyp)


def test_missing_hypothesis_is_all_deleted_and_extra_one_is_an_error():
    refs = {"u1": ["a", "b"], "u2": ["c"]}
    errors = utterance_errors(refs, {"u1": ["a", "b"]})
    assert errors["u2"] == Errors(0, 1, 0, 1) and errors["u1"].total == 0
    with pytest.raises(FhvaeError, match="'u9' has no reference"):
        utterance_errors(refs, {"u9": ["a"]}, where="decode/x")


def test_sum_by_condition_and_wer():
    errors = {"u1": Errors(1, 0, 0, 4), "u2": Errors(0, 1, 1, 6), "u3": Errors(0, 0, 0, 10)}
    sums = sum_by(errors, {"u1": "babble/far", "u2": "babble/far", "u3": "clean/close"})
    assert list(sums) == ["babble/far", "clean/close"]
    assert sums["babble/far"] == Errors(1, 1, 1, 10) and sums["babble/far"].wer == 30.0
    assert sums["clean/close"].wer == 0.0
    with pytest.raises(FhvaeError, match="'u3'"):
        sum_by(errors, {"u1": "x", "u2": "x"})


def _two_systems(num_spk: int = 30, worse_by: int = 0):
    rng = np.random.default_rng(1)
    a, b, spk, cond = {}, {}, {}, {}
    for s, u in itertools.product(range(num_spk), range(4)):
        utt = f"s{s:02d}-{u}"
        words = 10
        errs = int(rng.integers(0, 5))
        a[utt] = Errors(errs + worse_by, 0, 0, words)
        b[utt] = Errors(errs, 0, 0, words)
        spk[utt], cond[utt] = f"s{s:02d}", ("noisy" if u % 2 else "clean")
    return a, b, spk, cond


def test_bootstrap_identical_systems_differ_by_zero():
    a, _, spk, cond = _two_systems()
    diffs = speaker_bootstrap(a, a, spk, cond, 200, seed=3)
    assert [d.group for d in diffs] == ["clean", "noisy"]
    for d in diffs:
        assert d.difference == 0 and d.interval == (0.0, 0.0) and d.p_value == 1.0


def test_bootstrap_finds_a_real_difference_and_its_value():
    a, b, spk, cond = _two_systems(worse_by=1)      # a: one more error in every utterance
    diffs = speaker_bootstrap(a, b, spk, cond, 500, seed=3)
    for d in diffs:
        assert d.difference == pytest.approx(10.0)  # 1 error per 10 words, in every resample
        assert d.interval == pytest.approx((10.0, 10.0)) and d.p_value < 0.01
    correct_family(diffs)
    assert all(d.p_holm < 0.05 and d.corrected_interval[0] > 0 for d in diffs)


def test_bootstrap_resamples_speakers_not_utterances():
    """One speaker holds all of a's extra errors: resamples that leave that speaker out
    show no difference, so the interval reaches 0 (an utterance bootstrap would not)."""
    a, b, spk, cond = _two_systems(num_spk=10)
    for u in range(4):
        a[f"s00-{u}"] = Errors(a[f"s00-{u}"].sub + 5, 0, 0, 10)
    diffs = speaker_bootstrap(a, b, spk, {u: "all" for u in a}, 1000, seed=5)
    lo, hi = diffs[0].interval
    assert diffs[0].difference == pytest.approx(100 * 20 / 400)
    assert lo == pytest.approx(0.0) and hi > diffs[0].difference
    # share of resamples without speaker s00: (1 - 1/10)^10 ~ 0.35
    assert np.mean(diffs[0].resampled == 0) == pytest.approx(0.9 ** 10, abs=0.05)


def test_bootstrap_refuses_unpaired_systems():
    a, b, spk, cond = _two_systems()
    del b[next(iter(b))]
    with pytest.raises(FhvaeError, match="different utterances"):
        speaker_bootstrap(a, b, spk, cond, 10, seed=0)


# --- Kaldi's scoring files ---------------------------------------------------------------

def write_decode(root: Path, hyps_by_setting: dict[tuple[int, str], dict[str, str]],
                 refs: dict[str, str], fake_counts: dict[tuple[int, str], int] | None = None) -> Path:
    """A decode dir as steps/score_kaldi.sh leaves it: wer_<LMWT>_<WIP> and the hypotheses."""
    root.mkdir(parents=True, exist_ok=True)
    for (lmwt, wip), hyps in hyps_by_setting.items():
        d = root / "scoring_kaldi" / f"penalty_{wip}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{lmwt}.txt").write_text("".join(f"{u} {hyps[u]}\n".replace(" \n", "\n")
                                               for u in sorted(hyps)))
        errors = sum(align_errors(refs[u].split(), hyps[u].split()).total for u in refs)
        errors = (fake_counts or {}).get((lmwt, wip), errors)
        words = sum(len(r.split()) for r in refs.values())
        (root / f"wer_{lmwt}_{wip}").write_text(
            f"compute-wer --text --mode=present ark:x ark,p:-\n"
            f"%WER {100 * errors / words:.2f} [ {errors} / {words}, 0 ins, 0 del, {errors} sub ]\n"
            f"%SER 50.00 [ 1 / 2 ]\nScored 2 sentences, 0 not present in hyp.\n")
    return root


def test_kaldi_wer_file_and_best_setting(tmp_path):
    refs = {"u1": "a b c", "u2": "d e"}
    dec = write_decode(tmp_path / "decode_dev", {
        (7, "0.0"): {"u1": "a b c", "u2": "d"}, (9, "0.0"): {"u1": "a b c", "u2": "d e"},
        (9, "0.5"): {"u1": "a b c", "u2": "d e"}, (11, "1.0"): {"u1": "a", "u2": ""}}, refs)
    w = read_wer_file(dec / "wer_11_1.0")
    assert (w.lmwt, w.wip, w.errors, w.words) == (11, "1.0", 4, 5) and w.wer == 80.0
    best = best_on(dec)
    assert (best.lmwt, best.wip, best.errors) == (9, "0.0", 0)   # the tie goes to 9/0.0
    assert read_hypotheses(dec, 11, "1.0") == {"u1": ["a"], "u2": []}
    (dec / "wer_5_0.0").write_text("nothing\n")
    with pytest.raises(FhvaeError, match="wer_5_0.0: no '%WER"):
        best_on(dec)


def make_eval_set(root: Path, name: str, refs: dict[str, str]) -> Path:
    d = root / name
    d.mkdir(parents=True)
    (d / "text").write_text("".join(f"{u} {refs[u]}\n" for u in sorted(refs)))
    (d / "utt2spk").write_text("".join(f"{u} {u.split('-')[0]}\n" for u in sorted(refs)))
    (d / "utt2noise").write_text("".join(
        f"{u} {'clean' if u.endswith('1') else 'babble'}\n" for u in sorted(refs)))
    (d / "utt2channel").write_text("".join(f"{u} close\n" for u in sorted(refs)))
    return d


def test_score_decode_refuses_references_that_disagree_with_compute_wer(tmp_path):
    refs = {"s1-1": "a b c", "s1-2": "d e"}
    eval_set = EvalSet.read(make_eval_set(tmp_path, "test", refs))
    hyps = {"s1-1": "a b", "s1-2": "d e"}
    good = write_decode(tmp_path / "good", {(9, "0.0"): hyps}, refs)
    score = score_decode("x", good, 9, "0.0", eval_set)
    assert score.by_condition["all"] == Errors(0, 1, 0, 5)
    assert score.by_condition["clean/close"].wer == pytest.approx(100 / 3)
    bad = write_decode(tmp_path / "bad", {(9, "0.0"): hyps}, refs, fake_counts={(9, "0.0"): 2})
    with pytest.raises(FhvaeError, match="compute-wer counts 2/5"):
        score_decode("x", bad, 9, "0.0", eval_set)


def test_report_chooses_on_dev_and_compares_per_condition(tmp_path):
    rng = np.random.default_rng(2)
    vocab = [f"w{k}" for k in range(20)]
    sets = {}
    for name in ("dev", "test"):
        refs = {f"s{s}-{u}": " ".join(rng.choice(vocab, size=8)) for s in range(12) for u in (1, 2)}
        sets[name] = (make_eval_set(tmp_path / "data", name, refs), refs)

    def corrupt(refs: dict[str, str], every: int) -> dict[str, str]:   # one sub per `every` words
        out = {}
        for u, r in refs.items():
            words = r.split()
            out[u] = " ".join("zz" if k % every == 0 else w for k, w in enumerate(words))
        return out

    systems = {}
    for sys_name, good_every in (("train_mfcc", 4), ("train_z1", 8)):
        model = tmp_path / "exp" / sys_name
        for set_name, (_, refs) in sets.items():
            # the good setting is 10/0.5 for both; 12/0.0 is worse on dev, better on test
            best, other = corrupt(refs, good_every), corrupt(refs, 2)
            if set_name == "test":
                best, other = other, best
            write_decode(model / f"decode_{set_name}", {(10, "0.5"): best, (12, "0.0"): other}, refs)
        systems[sys_name] = model
    body, summary = build_report(systems, {"train": ["train_mfcc", "train_z1"]},
                                 {"train": "train_mfcc"}, "dev",
                                 {"dev": sets["dev"][0], "test": sets["test"][0]}, 200, seed=1)
    test = summary["train/test"]
    # chosen on dev (10/0.5) and applied to test, where it is the worse setting: 4 of 8 words
    assert test["train_mfcc"]["all"]["wer"] == pytest.approx(50.0)
    assert test["train_z1"]["all"]["wer"] == pytest.approx(50.0)
    dev = summary["train/dev"]
    assert dev["train_mfcc"]["all"]["wer"] == pytest.approx(25.0)
    assert dev["train_z1"]["all"]["wer"] == pytest.approx(12.5)
    assert dev["train_z1"]["babble/close"]["diff"] == pytest.approx(-12.5)
    assert "diff" not in dev["train_mfcc"]["all"]
    assert "10/0.5" in body and "| babble/close | 96 | 25.0 | **12.5** (-50 %; -12.5 … -12.5) |" in body
    write_report(tmp_path / "RESULTS.md", "# t\n", body, summary)
    assert json.loads((tmp_path / "RESULTS.json").read_text()) == json.loads(json.dumps(summary))


def test_gap_closed_is_the_share_of_clean_to_oracle_points_recovered():
    def at(wers):   # a summary as build_report writes it, only the "all" rows
        return {n: {"all": {"wer": w}} for n, w in wers.items()}
    names = ["clean", "aug", "multi"]
    summary = {"aug/dev": at({"clean": 60.0, "aug": 45.0, "multi": 30.0}),
               "aug/test": at({"clean": 50.0, "aug": 55.0, "multi": 40.0}),
               "aug/tie": at({"clean": 20.0, "aug": 18.0, "multi": 20.0}),
               # the oracle worse than clean-only: -1.0 / -1.8 must not read as 0.55 closed
               "aug/reversed": at({"clean": 100.9, "aug": 101.9, "multi": 102.7})}
    gaps = gap_closed(summary, "aug", names, ["dev", "test", "tie", "reversed"])
    assert gaps["dev"] == {"gap": 30.0, "share": {"aug": 0.5}}
    assert gaps["test"]["share"]["aug"] == pytest.approx(-0.5)   # worse than clean-only
    assert gaps["tie"]["share"]["aug"] is None
    assert gaps["reversed"]["share"]["aug"] is None
    assert gaps["reversed"]["gap"] == pytest.approx(-1.8)
    text = gap_lines(gaps)
    assert "- dev: aug closes 0.50 of 30.0 points" in text
    assert "- test: aug closes -0.50 of 10.0 points" in text
    assert "- tie: aug closes nothing: there is no gap (+0.0 points)" in text
    assert "- reversed: aug closes nothing: there is no gap (-1.8 points)" in text
