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
from synthcorpus.espeak import SAMPLE_RATE as ESPEAK_RATE  # noqa: E402
from synthcorpus.espeak import Voice, run_fresh  # noqa: E402
from synthcorpus.generate import (ConditionOptions, plan_utterances,  # noqa: E402
                                  speakers_for_hours)
from synthcorpus.phones import SILENCE, SONORANT, OBSTRUENT, align, ctm_lines, phone_class  # noqa: E402
from synthcorpus.speakers import (DEV_UNSEEN_SET, PITCH_RANGE, RANGE_RANGE,  # noqa: E402
                                  RATE_RANGE, SETS, UNSEEN_LANGUAGES, UNSEEN_SET,
                                  UNSEEN_SOURCE_RATES, make_speakers, make_unseen_speakers)


@pytest.mark.parametrize("phone, cls", [
    ("aI", SONORANT), ("@L", SONORANT), ("n", SONORANT), (";", SONORANT), ("r-", SONORANT),
    ("i@3", SONORANT), ("I#", SONORANT), ("aI3", SONORANT), ("tS", OBSTRUENT), ("t#", OBSTRUENT),
    ("T", OBSTRUENT), ("h", OBSTRUENT), ("z#", OBSTRUENT), ("_", SILENCE), ("_:", SILENCE),
    ("_!", SILENCE), ("E#", SONORANT), ("q", None), ("Y", None),
    ("R2", SONORANT), ("**", SONORANT), ("I^", SONORANT), ("ts", OBSTRUENT), ("B", OBSTRUENT),
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



def test_an_hours_target_gives_the_speakers_that_hold_it():
    """run.sh --train-hours: 150 speakers an hour at 6 utterances of 4 s on average."""
    assert speakers_for_hours(50, 6) == 7500
    assert speakers_for_hours(0.1066, 6) == 16          # 15.99 speakers: rounded up
    assert speakers_for_hours(1e-6, 6) == 1
    with pytest.raises(FhvaeError, match="--train-hours"):
        speakers_for_hours(0, 6)

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


# --- the unseen-conditions set and the issue-16 options ----------------------------------

def _band_power(x: np.ndarray, low: float, high: float, rate: int = 16000) -> float:
    power = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(len(x), 1 / rate)
    return float(power[(f >= low) & (f < high)].sum())


def test_unseen_speakers_share_no_language_or_prosody_with_the_other_sets():
    counts = {"train": 400, "dev": 20, "test": 120}
    others = [spk for s in SETS for spk in make_speakers(777, counts)[s]]
    unseen = make_unseen_speakers(777, 120)
    assert [spk.spk_id for spk in unseen] == [f"un{i:03d}" for i in range(1, 121)]
    assert [spk.gender for spk in unseen[:4]] == ["m", "f", "m", "f"]
    assert {spk.accent for spk in unseen} == set(UNSEEN_LANGUAGES)
    assert not {spk.accent for spk in unseen} & {spk.accent for spk in others}
    assert all(spk.source_rate == ESPEAK_RATE for spk in others)
    assert {spk.source_rate for spk in unseen} == set(UNSEEN_SOURCE_RATES)
    for bounds, attr in ((PITCH_RANGE, "pitch"), (RANGE_RANGE, "pitch_range"),
                         (RATE_RANGE, "rate")):
        assert all(bounds[0] <= getattr(spk, attr) <= bounds[1] for spk in others)
        assert not any(bounds[0] <= getattr(spk, attr) <= bounds[1] for spk in unseen), attr
    # espeak-ng crashes when the pitch range exceeds the pitch by ~40: never here
    assert max(spk.pitch_range - spk.pitch for spk in unseen) < 20
    assert len({(spk.accent, spk.variant) for spk in unseen}) == 120  # one voice each
    assert unseen[0].info.endswith(f" warp={unseen[0].source_rate / ESPEAK_RATE:.3f}")
    assert "warp" not in others[0].info
    assert make_unseen_speakers(777, 120) == unseen and make_unseen_speakers(778, 120) != unseen


def test_dev_unseen_speakers_are_other_voices_made_like_the_unseen_ones():
    unseen = make_unseen_speakers(777, 120)
    dev = make_unseen_speakers(777, 120, DEV_UNSEEN_SET)
    assert [spk.spk_id for spk in dev] == [f"du{i:03d}" for i in range(1, 121)]
    assert [spk.gender for spk in dev[:4]] == ["m", "f", "m", "f"]
    assert {spk.accent for spk in dev} <= set(UNSEEN_LANGUAGES)
    assert {spk.source_rate for spk in dev} == set(UNSEEN_SOURCE_RATES)
    for bounds, attr in ((PITCH_RANGE, "pitch"), (RANGE_RANGE, "pitch_range"),
                         (RATE_RANGE, "rate")):
        assert not any(bounds[0] <= getattr(spk, attr) <= bounds[1] for spk in dev), attr
    voices = [(spk.accent, spk.variant) for spk in dev]
    assert len(set(voices)) == 120 and not set(voices) & {(s.accent, s.variant) for s in unseen}
    assert make_unseen_speakers(777, 120, DEV_UNSEEN_SET) == dev
    assert make_unseen_speakers(777, 120) == unseen            # the test set does not move


def test_test_seed_redraws_only_the_test_sets():
    counts = {"train": 400, "dev": 120, "test": 120}
    old, new = make_speakers(777, counts), make_speakers(777, counts, test_seed=2026)
    assert new["train"] == old["train"] and new["dev"] == old["dev"]
    assert [s.spk_id for s in new["test"]] == [s.spk_id for s in old["test"]]
    # same voice pool (so still disjoint from train and dev), other prosody: new voices
    voices = {(s.accent, s.variant) for s in new["test"]}
    assert voices == {(s.accent, s.variant) for s in old["test"]}
    assert not voices & {(s.accent, s.variant) for s in old["train"] + old["dev"]}
    prosody = [(s.pitch, s.pitch_range, s.rate, s.volume) for s in new["test"]]
    assert sum(p == (s.pitch, s.pitch_range, s.rate, s.volume)
               for p, s in zip(prosody, old["test"])) < 3
    unseen_old = make_unseen_speakers(777, 120)
    unseen_new = make_unseen_speakers(777, 120, test_seed=2026)
    assert [(s.accent, s.variant) for s in unseen_new] == [(s.accent, s.variant)
                                                             for s in unseen_old]
    assert [s.pitch for s in unseen_new] != [s.pitch for s in unseen_old]
    assert make_unseen_speakers(777, 120, DEV_UNSEEN_SET, test_seed=2026) == \
        make_unseen_speakers(777, 120, DEV_UNSEEN_SET)
    speakers = {**new, UNSEEN_SET: unseen_new}
    plan_new = plan_utterances(speakers, 2, 777, Path("/x"), test_seed=2026)
    plan_old = plan_utterances({**old, UNSEEN_SET: unseen_old}, 2, 777, Path("/x"))
    assert plan_new["train"] == plan_old["train"] and plan_new["dev"] == plan_old["dev"]
    for name in ("test", UNSEEN_SET):
        assert all(a.seed[0] == 2026 and b.seed[0] == 777
                   for a, b in zip(plan_new[name], plan_old[name]))


def _plan(options=ConditionOptions(), unseen: int = 0, spk: int = 30, utts: int = 6):
    speakers = make_speakers(777, {"train": spk, "dev": 4, "test": 4})
    if unseen:
        speakers[UNSEEN_SET] = make_unseen_speakers(777, unseen)
    return plan_utterances(speakers, utts, 777, Path("/nonexistent"), options)


def test_reserved_noises_and_channels_never_reach_train_dev_test():
    assert not set(conditions.NOISE_TYPES) & set(conditions.UNSEEN_NOISE_TYPES)
    assert not set(conditions.CHANNELS) & set(conditions.UNSEEN_CHANNELS)
    plan = _plan(unseen=40)
    assert plan["train"] == _plan()["train"]  # adding the unseen set changes nothing else
    for name in SETS:
        assert {s.noise for s in plan[name]} <= set(conditions.NOISE_TYPES)
        assert {s.channel for s in plan[name]} <= set(conditions.CHANNELS)
    unseen = plan[UNSEEN_SET]
    assert {s.noise for s in unseen} == set(conditions.UNSEEN_NOISE_TYPES)
    assert {s.channel for s in unseen} == set(conditions.UNSEEN_CHANNELS)
    assert all(s.snr_db is not None and 5 <= s.snr_db <= 20 for s in unseen)


def test_session_model_gives_each_speaker_a_home_channel():
    assert _plan(ConditionOptions(speaker_channel_prob=0.0)) == _plan()
    always = _plan(ConditionOptions(speaker_channel_prob=1.0, speaker_noise_prob=1.0))
    by_spk = {}
    for spec in always["train"]:
        by_spk.setdefault(spec.speaker.spk_id, set()).add((spec.noise, spec.channel))
    assert all(len(conds) == 1 for conds in by_spk.values())
    assert len({c for conds in by_spk.values() for c in conds}) > 3  # homes differ by speaker
    half = _plan(ConditionOptions(speaker_channel_prob=0.5), spk=200)["train"]
    homes = {spec.speaker.spk_id: spec.channel for spec in always["train"]}
    half_homes = {s.speaker.spk_id: s.channel
                  for s in _plan(ConditionOptions(speaker_channel_prob=1.0), spk=200)["train"]}
    assert homes.items() <= half_homes.items()  # the home does not depend on the set size
    at_home = np.mean([s.channel == half_homes[s.speaker.spk_id] for s in half])
    assert at_home == pytest.approx(0.5 + 0.5 / 3, abs=0.05)  # p + (1 - p) / #channels
    assert [s.noise for s in half] == [s.noise for s in _plan(spk=200)["train"]]


def test_hum_power_sits_on_the_mains_harmonics():
    rate = 16000
    x = conditions.hum(2 * rate, np.random.default_rng(5), rate)
    power = np.abs(np.fft.rfft(x)) ** 2  # 0.5 Hz bins
    f = np.fft.rfftfreq(len(x), 1 / rate)
    f0 = f[np.argmax(power)]
    assert f0 in (50.0, 60.0)
    near = np.abs(f - f0 * np.round(f / f0)) <= 1.0
    assert power[near & (f <= 8 * f0 + 1)].sum() > 0.999 * power.sum()
    second = power[np.argmin(np.abs(f - 2 * f0))]
    assert second / power.max() == pytest.approx(0.25, rel=1e-3)  # amplitude 1/k


def test_speech_shaped_noise_has_the_speech_long_term_spectrum():
    rng = np.random.default_rng(6)
    speech = conditions._fft_filter(rng.standard_normal(64000),
                                    lambda f: np.exp(-((f - 500.0) / 400.0) ** 2) + 0.01, 16000)
    noise = conditions.speech_shaped(speech, rng)
    assert not np.allclose(noise[:1000] / np.std(noise), speech[:1000] / np.std(speech))
    edges = [100, 300, 600, 1000, 2000, 4000, 8000]
    share = [(_band_power(noise, a, b) / _band_power(noise, 0, 8001),
              _band_power(speech, a, b) / _band_power(speech, 0, 8001))
             for a, b in zip(edges, edges[1:])]
    for noise_share, speech_share in share:
        assert noise_share == pytest.approx(speech_share, rel=0.05)


def test_tones_are_intermittent_notes_in_the_musical_range():
    rate = 16000
    x = conditions.tones(4 * rate, np.random.default_rng(7), rate)
    frames = x[: len(x) // 160 * 160].reshape(-1, 160)
    silent = np.mean(np.sqrt(np.mean(frames ** 2, axis=1)) < 1e-3)
    assert 0.1 < silent < 0.7  # gaps between notes
    assert _band_power(x, 200, 2700) > 0.99 * _band_power(x, 0, 8001)  # A3-A5 and 3 harmonics


def test_codec_channel_is_band_limited_to_4_khz_with_6_bit_mu_law_noise():
    rate = 16000
    t = np.arange(rate) / rate
    x = 0.5 * np.sin(2 * np.pi * 997 * t)
    y = conditions.apply_channel(x, "codec", np.random.default_rng(8), rate)
    assert len(y) == len(x)
    assert _band_power(y, 4050, 8001) < 1e-6 * _band_power(y, 0, 8001)
    error = y - x * np.sqrt(np.mean(y ** 2) / np.mean(x ** 2))
    snr = 10 * np.log10(np.mean(x ** 2) / np.mean(error ** 2))
    # companded quantiser: 6.02 b + 4.77 - 20 log10(ln(1 + mu)) = 26.0 dB at 6 bits
    assert 23.0 < snr < 29.0
    odd = conditions.apply_channel(x[:-1], "codec", np.random.default_rng(8), rate)
    assert len(odd) == len(x) - 1


def test_tilt_channel_rises_6_db_per_octave_above_its_knee():
    x = np.random.default_rng(9).standard_normal(64000)
    y = conditions.apply_channel(x, "tilt", np.random.default_rng(10), 16000)
    gain = [10 * np.log10(_band_power(y, f, f * 1.1) / _band_power(x, f, f * 1.1))
            for f in (100.0, 200.0, 1000.0, 4000.0)]
    assert gain[1] - gain[0] == pytest.approx(0.0, abs=0.5)
    assert gain[3] - gain[2] == pytest.approx(12.0, abs=0.5)


@pytest.mark.parametrize("channel, rt60", [("far", conditions.RT60_RANGE_S),
                                           ("hall", conditions.HALL_RT60_RANGE_S)])
def test_room_channels_decay_at_their_rt60(channel, rt60):
    rate = 16000
    for seed in range(3):
        x = np.zeros(2 * rate)
        x[100] = 1.0
        y = conditions.apply_channel(x, channel, np.random.default_rng(seed), rate)
        tail = y[100 + int(0.002 * rate):] ** 2
        edc = 10 * np.log10(np.cumsum(tail[::-1])[::-1] / tail.sum())  # Schroeder decay
        t5, t25 = np.argmax(edc < -5), np.argmax(edc < -25)
        measured = 3 * (t25 - t5) / rate  # T20 extrapolated to 60 dB
        drawn = np.random.default_rng(seed).uniform(*rt60)  # the channel's first draw
        assert measured == pytest.approx(drawn, abs=0.05), (channel, seed)
