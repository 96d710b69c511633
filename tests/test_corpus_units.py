"""Unit tests of the corpus building blocks in local/synthcorpus (no full corpus run)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "local"))

from fhvae.errors import FhvaeError  # noqa: E402
from synthcorpus import conditions  # noqa: E402
from synthcorpus.audio import complete_wav_length, fast_len, resample, write_wav  # noqa: E402
from synthcorpus.espeak import Voice, run_fresh  # noqa: E402
from synthcorpus.phones import SILENCE, SONORANT, OBSTRUENT, align, ctm_lines, phone_class  # noqa: E402
from synthcorpus.speakers import SETS, make_speakers  # noqa: E402


@pytest.mark.parametrize("phone, cls", [
    ("aI", SONORANT), ("@L", SONORANT), ("n", SONORANT), (";", SONORANT), ("r-", SONORANT),
    ("i@3", SONORANT), ("I#", SONORANT), ("aI3", SONORANT), ("tS", OBSTRUENT), ("t#", OBSTRUENT),
    ("T", OBSTRUENT), ("h", OBSTRUENT), ("z#", OBSTRUENT), ("_", SILENCE), ("_:", SILENCE),
    ("_!", SILENCE), ("E#", SONORANT), ("q", None), ("Y", None),
])
def test_phone_class_table(phone, cls):
    assert phone_class(phone) == cls


def test_align_pads_leading_silence_drops_empty_segments_and_ends_at_the_audio_end():
    events = [(441, "h"), (882, "@"), (2205, "_"), (2205, "l"), (4410, "_")]
    segs = align(events, 4410, 22050, 16000, "u1")
    assert [(s.start, s.end, s.phone, s.cls) for s in segs] == [
        (0, 320, "_", SILENCE), (320, 640, "h", OBSTRUENT), (640, 1600, "@", SONORANT),
        (1600, 3200, "l", SONORANT)]
    assert ctm_lines("u1", segs[:2], 16000) == ["u1 1 0.0000 0.0200 _ silence\n",
                                                "u1 1 0.0200 0.0200 h obstruent\n"]


def test_align_rejects_unknown_phonemes_and_disorder_naming_the_utterance():
    with pytest.raises(FhvaeError, match="utt7: espeak phoneme 'Y'"):
        align([(0, "Y")], 100, 22050, 16000, "utt7")
    with pytest.raises(FhvaeError, match="utt8: .*out of order"):
        align([(50, "a"), (10, "b")], 100, 22050, 16000, "utt8")


def test_fast_len_is_the_next_5_smooth_number():
    def smooth(n: int) -> bool:
        for p in (2, 3, 5):
            while n % p == 0:
                n //= p
        return n == 1

    for n in list(range(1, 200)) + [88_201, 100_003]:
        best = fast_len(n)
        assert best >= n and smooth(best)
        assert not any(smooth(m) for m in range(n, best))


def test_resample_keeps_in_band_tones_and_removes_out_of_band_ones():
    n = 22050 + 7  # odd, not a fast length
    t = np.arange(n) / 22050
    window = np.hanning(n)
    y = resample(np.sin(2 * np.pi * 1000 * t) * window, 22050, 16000)
    assert len(y) == round(n * 16000 / 22050)
    t16 = np.arange(len(y)) / 16000
    expected = np.sin(2 * np.pi * 1000 * t16) * np.interp(t16, t, window)
    assert np.max(np.abs(y - expected)) < 1e-2
    alias = resample(np.sin(2 * np.pi * 10000 * t) * window, 22050, 16000)
    assert np.sqrt(np.mean(alias ** 2)) < 1e-3


def test_add_noise_hits_the_snr_and_noises_have_their_colour():
    rng = np.random.default_rng(0)
    speech = rng.standard_normal(16000) * 0.1
    noise = conditions.coloured_noise("pink", 16000, rng, 16000)
    mixed = conditions.add_noise(speech, noise, 10.0)
    snr = 10 * np.log10(np.mean(speech ** 2) / np.mean((mixed - speech) ** 2))
    assert snr == pytest.approx(10.0, abs=1e-9)

    def low_to_high(kind: str) -> float:  # power below 500 Hz / power above 4 kHz
        x = conditions.coloured_noise(kind, 32000, np.random.default_rng(1), 16000)
        power = np.abs(np.fft.rfft(x)) ** 2
        f = np.fft.rfftfreq(32000, 1 / 16000)
        return power[f < 500].sum() / power[f > 4000].sum()

    assert low_to_high("white") < 0.2 < low_to_high("pink") < 20 < low_to_high("brown")


def test_telephone_channel_is_band_limited_and_keeps_the_level():
    x = np.random.default_rng(2).standard_normal(16000)
    y = conditions.apply_channel(x, "telephone", np.random.default_rng(3), 16000)
    power = np.abs(np.fft.rfft(y)) ** 2
    f = np.fft.rfftfreq(len(y), 1 / 16000)
    assert power[(f < 150) | (f > 3600)].sum() < 1e-3 * power.sum()
    assert np.mean(y ** 2) == pytest.approx(np.mean(x ** 2))


def test_far_channel_reverberates_an_impulse():
    x = np.zeros(16000)
    x[100] = 1.0
    y = conditions.apply_channel(x, "far", np.random.default_rng(4), 16000)
    assert len(y) == len(x) and np.argmax(np.abs(y)) == 100
    assert np.sum(y[200:] ** 2) > 0.05 * np.sum(y ** 2)  # a diffuse tail after the direct sound


def test_wav_writing_and_completeness_check(tmp_path):
    path = tmp_path / "a.wav"
    write_wav(path, np.linspace(-1, 1, 1000), 16000)
    assert complete_wav_length(path, 16000) == 1000
    assert complete_wav_length(path, 22050) is None
    path.write_bytes(path.read_bytes()[:500])
    assert complete_wav_length(path, 16000) is None
    assert complete_wav_length(tmp_path / "missing.wav", 16000) is None


@pytest.mark.parametrize("counts", [{"train": 200, "dev": 20, "test": 40},
                                    {"train": 900, "dev": 100, "test": 150}])
def test_speakers_unique_and_sets_use_disjoint_voices(counts):
    speakers = make_speakers(777, counts)
    assert {s: len(v) for s, v in speakers.items()} == counts
    everyone = [spk for s in SETS for spk in speakers[s]]
    assert len({spk.spk_id for spk in everyone}) == len(everyone)
    tuples = [(spk.accent, spk.variant, spk.pitch, spk.pitch_range, spk.rate, spk.volume)
              for spk in everyone]
    assert len(set(tuples)) == len(tuples)
    combos = {s: {(spk.accent, spk.variant) for spk in speakers[s]} for s in SETS}
    assert not combos["train"] & combos["dev"] and not combos["train"] & combos["test"]
    assert not combos["dev"] & combos["test"]
    if sum(counts.values()) <= 8 * 17 * 2:  # enough combinations: one per speaker
        assert sum(len(c) for c in combos.values()) == sum(counts.values())
    assert make_speakers(777, counts) == speakers
    assert make_speakers(778, counts) != speakers


def _speak_twice(engine, voice):
    return [engine.synth("seven green apples", voice).samples for _ in range(2)]


def test_run_fresh_gives_identical_audio_and_reports_child_errors():
    voice = Voice("en-us+m3", 170, 50, 50, 100)
    first = run_fresh(_speak_twice, voice)
    again = run_fresh(_speak_twice, voice)
    assert len(first[0]) > 10000
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    with pytest.raises(FhvaeError, match="unknown voice 'en-xx'"):
        run_fresh(_speak_twice, Voice("en-xx", 170, 50, 50, 100))
