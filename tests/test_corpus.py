"""End-to-end tests of local/make_corpus.sh on a tiny corpus (4/2/2 speakers x 2 utts)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import soundfile

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "local"))

from synthcorpus.conditions import (CHANNELS, NOISE_TYPES, SNR_RANGE_DB,  # noqa: E402
                                    UNSEEN_CHANNELS, UNSEEN_NOISE_TYPES)
from synthcorpus.phones import PHONE_CLASSES  # noqa: E402

from fhvae.features.fbank import FbankComputer, read_fbank_config  # noqa: E402
from fhvae.io.audio import load_audio  # noqa: E402
from helpers import clean_env, run  # noqa: E402

SETS = ("train", "dev", "test")
UNSEEN = "test_unseen"
DEV_UNSEEN = "dev_unseen"
TINY = ["--num-train-spk", "4", "--num-dev-spk", "2", "--num-test-spk", "2",
        "--num-unseen-spk", "0", "--utts-per-spk", "2", "--no-progress"]
WITH_UNSEEN = ["--num-unseen-spk", "2"]
WITH_DEV_UNSEEN = [*WITH_UNSEEN, "--num-dev-unseen-spk", "2"]


BUILD_S = 120       # one tiny corpus (~4 s on 2 idle cores); a test builds at most two


def make_corpus(corpus: Path, data: Path, seed: int, nj: int = 2,
                extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    return run([str(ROOT / "local/make_corpus.sh"), "--seed", str(seed), "--nj", str(nj), *TINY,
                *extra, str(corpus), str(data)], timeout=BUILD_S)


def digest(corpus: Path, data: Path) -> dict[str, str]:
    """Hash of every wav and data-dir file (wav.scp with the corpus dir made relative)."""
    out = {}
    for path in sorted(corpus.rglob("*.wav")):
        out[str(path.relative_to(corpus))] = hashlib.sha256(path.read_bytes()).hexdigest()
    for path in sorted(p for p in data.rglob("*") if p.is_file()):
        text = path.read_text().replace(str(corpus.resolve()), "<corpus>")
        out[str(path.relative_to(data))] = hashlib.sha256(text.encode()).hexdigest()
    return out


def read_table(path: Path) -> list[tuple[str, str]]:
    return [tuple(line.split(" ", 1)) for line in path.read_text().splitlines()]


BUILDS = {"a": (1, 2, ()), "b": (1, 1, ()), "c": (2, 2, ()), "u": (1, 2, WITH_UNSEEN),
          "v": (1, 1, WITH_UNSEEN), "f": (1, 2, ("--floor-after-channel", "true")),
          "d": (1, 2, WITH_DEV_UNSEEN), "t": (1, 2, ("--utts-per-spk", "8", "--train-clean", "true")),
          "p": (1, 2, ("--utts-per-spk", "8"))}


class Corpora:
    """(corpus_dir, data_root) of: seed 1 with nj=2 (a), again with nj=1 (b), seed 2 (c);
    seed 1 with the unseen set, nj=2 (u) and nj=1 (v); seed 1, floor after the channel (f);
    seed 1 with both unseen-condition sets (d). Each is built when a test first needs it,
    so no single test (and its time limit) pays for all seven builds."""

    def __init__(self, base: Path):
        self.base, self.built = base, {}

    def __getitem__(self, name: str) -> tuple[Path, Path]:
        if name not in self.built:
            seed, nj, extra = BUILDS[name]
            corpus, data = self.base / f"audio_{name}", self.base / f"data_{name}"
            result = make_corpus(corpus, data, seed, nj, extra)
            assert result.returncode == 0, result.stderr
            self.built[name] = (corpus, data)
        return self.built[name]


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    return Corpora(tmp_path_factory.mktemp("corpus"))


def test_same_seed_is_byte_identical_for_any_nj(corpora):
    first, second = digest(*corpora["a"]), digest(*corpora["b"])
    assert len([k for k in first if k.endswith(".wav")]) == 16
    assert first == second


def test_different_seed_differs(corpora):
    first, other = digest(*corpora["a"]), digest(*corpora["c"])
    assert first["train/text"] != other["train/text"]
    shared_wavs = [k for k in first if k.endswith(".wav") and k in other]
    assert shared_wavs and all(first[k] != other[k] for k in shared_wavs)


def test_data_dirs_sorted_and_consistent(corpora):
    _, data = corpora["a"]
    for name in SETS:
        d = data / name
        tables = {}
        for fname in ("wav.scp", "utt2spk", "spk2utt", "text", "utt2dur", "utt2noise",
                      "utt2snr", "utt2channel", "utt2gender", "spk2gender", "spk_info"):
            rows = read_table(d / fname)
            keys = [k for k, _ in rows]
            assert keys == sorted(set(keys), key=str.encode), f"{name}/{fname} not sorted/unique"
            tables[fname] = dict(rows)
        utt2spk = tables["utt2spk"]
        assert len(utt2spk) == (8 if name == "train" else 4)
        inverse = defaultdict(list)
        for utt, spk in utt2spk.items():
            assert utt.startswith(spk + "-")
            inverse[spk].append(utt)
        assert {spk: " ".join(utts) for spk, utts in inverse.items()} == tables["spk2utt"]
        for fname in ("wav.scp", "text", "utt2dur", "utt2noise", "utt2snr", "utt2channel",
                      "utt2gender"):
            assert tables[fname].keys() == utt2spk.keys(), fname
        assert set(tables["spk2gender"].values()) <= {"m", "f"}
        for utt, path in tables["wav.scp"].items():
            assert Path(path).is_absolute() and Path(path).is_file()
            assert tables["utt2gender"][utt] == tables["spk2gender"][utt2spk[utt]]


def test_wavs_are_16k_mono_16bit_and_3_to_5_s(corpora):
    _, data = corpora["a"]
    for name in SETS:
        durs = dict(read_table(data / name / "utt2dur"))
        for utt, path in read_table(data / name / "wav.scp"):
            info = soundfile.info(path)
            assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
            assert abs(info.frames / 16000 - float(durs[utt])) < 1e-4
            assert 3.0 - 1e-3 <= info.frames / 16000 <= 5.0 + 1e-3
            audio, _ = soundfile.read(path)
            assert 0.01 < abs(audio).max() < 1.0


def test_alignments_tile_the_audio(corpora):
    _, data = corpora["a"]
    seen_classes = set()
    for name in SETS:
        durs = {utt: float(d) for utt, d in read_table(data / name / "utt2dur")}
        lines = [line.split() for line in (data / name / "phone_ali.ctm").read_text().splitlines()]
        keys = [(utt.encode(), float(start)) for utt, _, start, *_ in lines]
        assert keys == sorted(keys)
        by_utt = defaultdict(list)
        for utt, channel, start, dur, phone, cls in lines:
            assert channel == "1" and cls in PHONE_CLASSES and float(dur) > 0
            by_utt[utt].append((float(start), float(dur)))
            seen_classes.add(cls)
        assert by_utt.keys() == durs.keys()
        for utt, segs in by_utt.items():
            assert segs[0][0] == 0.0
            for (start, dur), (next_start, _) in zip(segs, segs[1:]):
                assert abs(start + dur - next_start) <= 0.001, utt
            assert abs(segs[-1][0] + segs[-1][1] - durs[utt]) <= 0.010, utt
    assert seen_classes == set(PHONE_CLASSES)


def test_dev_and_test_speakers_are_unseen_in_train(corpora):
    _, data = corpora["a"]
    voices = {}
    for name in SETS:
        info = dict(read_table(data / name / "spk_info"))
        voices[name] = {spk: dict(kv.split("=") for kv in v.split()) for spk, v in info.items()}
    train_combos = {(v["accent"], v["variant"]) for v in voices["train"].values()}
    for name in ("dev", "test"):
        assert not voices[name].keys() & voices["train"].keys()
        assert not {(v["accent"], v["variant"]) for v in voices[name].values()} & train_combos


def test_condition_labels_come_from_the_expected_sets(corpora):
    _, data = corpora["a"]
    for name in SETS:
        noise = dict(read_table(data / name / "utt2noise"))
        snr = dict(read_table(data / name / "utt2snr"))
        channel = dict(read_table(data / name / "utt2channel"))
        for utt, kind in noise.items():
            assert kind in NOISE_TYPES and channel[utt] in CHANNELS
            if kind == "clean":
                assert snr[utt] == "inf"
            else:
                assert SNR_RANGE_DB[0] <= int(snr[utt]) <= SNR_RANGE_DB[1]


def test_resume_skips_complete_wavs_and_redoes_broken_ones(corpora, tmp_path):
    corpus, data = tmp_path / "audio", tmp_path / "data"
    shutil.copytree(corpora["a"][0], corpus)
    wavs = sorted(corpus.rglob("*.wav"))
    wavs[0].unlink()
    wavs[1].write_bytes(wavs[1].read_bytes()[:1000])  # truncated: must be redone
    untouched = wavs[2].stat().st_mtime_ns
    assert make_corpus(corpus, data, seed=1).returncode == 0
    assert wavs[2].stat().st_mtime_ns == untouched
    assert digest(corpus, data) == digest(*corpora["a"])


def test_other_options_in_the_same_corpus_dir_fail_cleanly(corpora, tmp_path):
    corpus, _ = corpora["a"]
    result = make_corpus(corpus, tmp_path / "data", seed=3)
    assert result.returncode == 1
    assert result.stderr.startswith("ERROR (make_corpus.py): ") and "corpus.conf" in result.stderr
    assert not (tmp_path / "data").exists()


def assert_valid_with_the_files_of(data_dir, like):
    """validate_data_dir.sh accepts `data_dir`, which holds the same files as `like`."""
    result = run([str(ROOT / "utils/validate_data_dir.sh"), "--no-feats", str(data_dir)],
                 timeout=60)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in data_dir.iterdir()) == sorted(p.name for p in like.iterdir())


def test_adding_the_unseen_set_leaves_train_dev_test_byte_identical(corpora):
    with_unseen = digest(*corpora["u"])
    assert digest(*corpora["v"]) == with_unseen  # deterministic for any nj
    unseen_keys = {k for k in with_unseen if k.startswith(UNSEEN + "/")}
    assert len([k for k in unseen_keys if k.endswith(".wav")]) == 4
    assert {k: v for k, v in with_unseen.items() if k not in unseen_keys} == digest(*corpora["a"])
    assert (corpora["u"][0] / "corpus.conf").read_text().endswith(" num_unseen_spk=2\n")


def test_unseen_set_validates_and_shares_no_voice_noise_or_channel(corpora):
    _, data = corpora["u"]
    assert_valid_with_the_files_of(data / UNSEEN, data / "test")
    labels = {name: {f: set(dict(read_table(data / name / f)).values())
                     for f in ("utt2noise", "utt2channel")} for name in (*SETS, UNSEEN)}
    assert labels[UNSEEN]["utt2noise"] <= set(UNSEEN_NOISE_TYPES)
    assert labels[UNSEEN]["utt2channel"] <= set(UNSEEN_CHANNELS)
    for name in SETS:
        assert not labels[name]["utt2noise"] & labels[UNSEEN]["utt2noise"]
        assert not labels[name]["utt2channel"] & labels[UNSEEN]["utt2channel"]
    accents = {name: {dict(kv.split("=") for kv in v.split())["accent"]
                      for _, v in read_table(data / name / "spk_info")} for name in (*SETS, UNSEEN)}
    assert all(a.startswith("en") for name in SETS for a in accents[name])
    assert not any(a.startswith("en") for a in accents[UNSEEN])
    for utt, path in read_table(data / UNSEEN / "wav.scp"):
        assert 3.0 - 1e-3 <= soundfile.info(path).duration <= 5.0 + 1e-3, utt


def _quantisation_bins(data: Path, utts: list[str]) -> list[int]:
    """Per utterance: mel bins whose median log energy is within 6 dB of the FBank of pure
    16-bit rounding noise (uniform +-0.5 LSB), i.e. bins that hold nothing but quantisation."""
    fbank = FbankComputer(read_fbank_config(ROOT / "conf/fbank.conf"))
    noise = np.random.default_rng(0).uniform(-0.5, 0.5, 64000)
    reference = np.median(fbank(noise, 16000, "reference"), axis=0)
    wav = {utt: path for name in SETS for utt, path in read_table(data / name / "wav.scp")}
    counts = []
    for utt in utts:
        samples, rate = load_audio(wav[utt], utt)
        level = np.median(fbank(samples[:, 0], rate, utt), axis=0)
        counts.append(int(np.sum(level < reference + np.log(4.0))))
    return counts


def test_floor_after_channel_leaves_no_mel_bin_at_quantisation_level(corpora):
    channel = {utt: c for name in SETS
               for utt, c in read_table(corpora["a"][1] / name / "utt2channel")}
    phone = sorted(u for u, c in channel.items() if c == "telephone")[:2]
    assert phone, "the tiny corpus has no telephone utterance"
    assert all(n >= 15 for n in _quantisation_bins(corpora["a"][1], phone))  # above 3.5 kHz
    assert _quantisation_bins(corpora["f"][1], phone) == [0] * len(phone)
    before, after = digest(*corpora["a"]), digest(*corpora["f"])
    corpus, data = corpora["a"]
    for name in SETS:  # the close-talk channel passes the floor unchanged, the others do not
        for utt, path in read_table(data / name / "wav.scp"):
            key = str(Path(path).relative_to(corpus.resolve()))
            assert (before[key] == after[key]) == (channel[utt] == "close"), utt


@pytest.mark.parametrize("start, gain, end, refused", [
    ("a", WITH_UNSEEN, "u", [[]]),
    ("u", WITH_DEV_UNSEEN, "d", [WITH_UNSEEN, [*WITH_UNSEEN, "--num-dev-unseen-spk", "3"]]),
])
def test_an_existing_corpus_dir_can_gain_a_set_but_not_lose_or_resize_it(
        corpora, tmp_path, start, gain, end, refused):
    corpus, data = tmp_path / "audio", tmp_path / "data"
    shutil.copytree(corpora[start][0], corpus)
    first_wav = sorted(corpus.rglob("*.wav"))[0]
    untouched = first_wav.stat().st_mtime_ns
    assert make_corpus(corpus, data, seed=1, extra=gain).returncode == 0
    assert first_wav.stat().st_mtime_ns == untouched  # the other sets' audio reused
    assert digest(corpus, data) == digest(*corpora[end])
    for extra in refused:
        result = make_corpus(corpus, tmp_path / "data2", seed=1, extra=extra)
        assert result.returncode == 1 and "corpus made with other options" in result.stderr


def test_session_probability_outside_0_1_fails_before_writing(tmp_path):
    result = make_corpus(tmp_path / "audio", tmp_path / "data", seed=1,
                         extra=("--speaker-channel-prob", "1.5"))
    assert result.returncode == 1
    assert "--speaker-channel-prob must be within [0, 1], got 1.5" in result.stderr
    assert not (tmp_path / "audio").exists() and not (tmp_path / "data").exists()


def test_adding_dev_unseen_leaves_every_other_set_byte_identical(corpora):
    with_dev = digest(*corpora["d"])
    dev_keys = {k for k in with_dev if k.startswith(DEV_UNSEEN + "/")}
    assert len([k for k in dev_keys if k.endswith(".wav")]) == 4
    assert {k: v for k, v in with_dev.items() if k not in dev_keys} == digest(*corpora["u"])
    assert (corpora["d"][0] / "corpus.conf").read_text().endswith(
        " num_unseen_spk=2 num_dev_unseen_spk=2\n")


def test_dev_unseen_is_disjoint_from_the_other_sets_and_made_like_test_unseen(corpora):
    _, data = corpora["d"]
    assert_valid_with_the_files_of(data / DEV_UNSEEN, data / UNSEEN)
    tables = {name: dict(read_table(data / name / "utt2spk")) for name in (*SETS, UNSEEN,
                                                                          DEV_UNSEEN)}
    dev = tables.pop(DEV_UNSEEN)
    assert all(spk.startswith("du") for spk in dev.values())
    for name, utt2spk in tables.items():
        assert not set(dev) & set(utt2spk), name
        assert not set(dev.values()) & set(utt2spk.values()), name
    labels = {f: set(dict(read_table(data / DEV_UNSEEN / f)).values())
              for f in ("utt2noise", "utt2channel")}
    assert labels["utt2noise"] <= set(UNSEEN_NOISE_TYPES)
    assert labels["utt2channel"] <= set(UNSEEN_CHANNELS)
    voices = {name: {(info["accent"], info["variant"]) for info in (
        dict(kv.split("=") for kv in v.split()) for _, v in read_table(data / name / "spk_info"))}
        for name in (UNSEEN, DEV_UNSEEN)}
    assert not voices[UNSEEN] & voices[DEV_UNSEEN]
    assert all("warp=" in v for _, v in read_table(data / DEV_UNSEEN / "spk_info"))


def test_clean_twin_of_train_leaves_every_set_as_it_was(corpora):
    """--train-clean true adds data/train_clean: every training utterance again (same ids,
    speakers, words, phone alignment), clean and close-talk; every other set is byte-identical,
    and a training utterance that was clean and close-talk already has the very same audio."""
    with_twin, without = digest(*corpora["t"]), digest(*corpora["p"])
    twin_keys = {k for k in with_twin if k.startswith("train_clean")}
    assert {k: v for k, v in with_twin.items() if k not in twin_keys} == without
    corpus, data = corpora["t"]
    train, twin = data / "train", data / "train_clean"
    for name in ("text", "utt2spk", "spk2utt", "utt2gender", "phone_ali.ctm"):
        assert (twin / name).read_text() == (train / name).read_text(), name
    assert {v for _, v in read_table(twin / "utt2noise")} == {"clean"}
    assert {v for _, v in read_table(twin / "utt2channel")} == {"close"}
    noise, channel = dict(read_table(train / "utt2noise")), dict(read_table(train / "utt2channel"))
    already_clean = [u for u in noise if noise[u] == "clean" and channel[u] == "close"]
    noisy = [u for u in noise if noise[u] != "clean"]
    assert already_clean and noisy           # 32 utterances: both kinds are drawn
    wav = {s: dict(read_table(data / s / "wav.scp")) for s in ("train", "train_clean")}
    for utt in already_clean:
        assert Path(wav["train_clean"][utt]).read_bytes() == Path(wav["train"][utt]).read_bytes()
    for utt in noisy:
        assert Path(wav["train_clean"][utt]).read_bytes() != Path(wav["train"][utt]).read_bytes()
    assert all("/train_clean/" in p for p in wav["train_clean"].values())


def test_make_dev_unseen_renders_the_dev_unseen_set_that_make_corpus_does(corpora, tmp_path):
    """local/tuning/unseen/make_dev_unseen.py renders dev_unseen alone: the same wavs and
    tables as make_corpus.sh --num-dev-unseen-spk gives, nothing else. (It used to stop
    with a KeyError: it keyed the rendered records by utterance id, not by wav path.)"""
    corpus, data = tmp_path / "audio", tmp_path / "data"
    done = run([sys.executable, str(ROOT / "local/tuning/unseen/make_dev_unseen.py"),
                "--seed", "1", "--speakers", "2", "--utts-per-spk", "2", str(corpus),
                str(data)], env=clean_env(PYTHONPATH=f"{ROOT}:{ROOT / 'local'}"),
               timeout=BUILD_S)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in data.iterdir()) == [DEV_UNSEEN]
    want = {k: v for k, v in digest(*corpora["d"]).items() if k.startswith(DEV_UNSEEN + "/")}
    assert digest(corpus, data) == want and len(want) > 4
