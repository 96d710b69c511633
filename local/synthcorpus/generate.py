"""Generate the corpus audio (in parallel, resumable) and write Kaldi data dirs.

Every utterance is planned up front from `--seed` (speaker, noise, SNR, channel, target
duration and its own seed tuple); its rendering depends only on that plan, so the result
is byte-identical for any `--nj` and after an interrupted run. Per utterance:

1. espeak-ng speaks random words from words.py (with some commas and full stops, for
   phrase pauses) padded with 0.1-0.3 s of silence at both ends to 3-5 s in all, in a
   fresh process (espeak.run_fresh), also giving the phoneme events and babble talkers;
2. resample 22,050 -> 16,000 Hz (unseen set: from its speaker's warped source rate), add
   noise at the planned SNR and a faint noise floor (so that no utterance holds digital
   silence), apply the channel (with --floor-after-channel: channel, then the floor);
3. write `<utt>.json` (text, length, alignment) and then `<utt>.wav`, each atomically.
   A wav that exists with the length recorded in its json is complete and is skipped.

The main process keeps each utterance's text and length only; the alignments (44 phones an
utterance) stay in the json files, and phone_ali.ctm is written from them one utterance at
a time, so memory does not grow by an alignment per utterance (a 100-hour corpus).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import multiprocessing
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fhvae.errors import FhvaeError
from fhvae.io.atomic import write_text_atomic
from fhvae.io.datadir import PHONE_CTM, DataDir
from fhvae.progress import progress
from synthcorpus import conditions
from synthcorpus.audio import complete_wav_length, resample, write_wav
from synthcorpus.espeak import SAMPLE_RATE as ESPEAK_RATE
from synthcorpus.espeak import Engine, Synthesis, Voice, run_fresh
from synthcorpus.phones import PhoneSegment, align, ctm_lines
from synthcorpus.speakers import (DEV_UNSEEN_SET, SETS, TEST_SETS, UNSEEN_SET, Speaker,
                                  make_speakers, make_unseen_speakers, random_voice)
from synthcorpus.words import random_words

logger = logging.getLogger(__name__)

RATE = 16000
DUR_RANGE_S = (3.0, 5.0)
# The mean of the uniform target durations; rendered utterances come out within 1% of
# it (3.98 s over 168 utterances of a tiny corpus, 4.03 s over the default 3,840).
MEAN_UTT_S = sum(DUR_RANGE_S) / 2
MAX_WORDS = 24  # words drawn per utterance before trimming to the target duration
BABBLE_WORDS = 12
PHRASE_MARKS = {"": 0.84, ",": 0.10, ".": 0.06}  # after each word: phrase pauses
PAD_RANGE_S = (0.1, 0.3)  # silence before and after the speech
NOISE_FLOOR = 1e-4  # RMS of the recording's own noise (~3 LSB): no digital silence
PEAK_LIMIT = 0.99
CONF_NAME = "corpus.conf"
CONF_VERSION = 1  # bump when the generated audio changes for the same options
# Optional sets, in the order of their corpus.conf entries; each set's index in ALL_SETS
# seeds its utterances, so new sets go at the end.
OPTIONAL_SETS = (UNSEEN_SET, DEV_UNSEEN_SET)
ALL_SETS = SETS + OPTIONAL_SETS
# Noises and channels each set draws from: the unseen sets share none with the others.
SET_CONDITIONS = {
    **{name: (conditions.NOISE_TYPES, conditions.CHANNELS) for name in SETS},
    **{name: (conditions.UNSEEN_NOISE_TYPES, conditions.UNSEEN_CHANNELS)
       for name in OPTIONAL_SETS},
}
# corpus.conf key of each optional set's speaker count.
OPTIONAL_CONF_KEYS = {UNSEEN_SET: "num_unseen_spk", DEV_UNSEEN_SET: "num_dev_unseen_spk"}
# The clean twin of train (--train-clean): every training utterance again, same speaker, words
# and speech, without noise and through the close-talk channel. Aurora-4's clean training set:
# an acoustic model that never heard noise or a channel (the mismatched ASR condition).
CLEAN_TRAIN_SET = "train_clean"
CLEAN_CONDITION = ("clean", "close")


@dataclass(frozen=True)
class ConditionOptions:
    """Issue-16 options; the defaults reproduce the original corpus byte for byte.

    floor_after_channel: add the noise floor after the channel, so that band-limited
        channels hold it in every band (before it, telephone leaves bands at zero).
    speaker_noise_prob / speaker_channel_prob: a session model. Each speaker has a home
        noise type / channel, used with this probability; otherwise (and at 0) the
        utterance's own independent draw is used.
    """

    floor_after_channel: bool = False
    speaker_noise_prob: float = 0.0
    speaker_channel_prob: float = 0.0

    def conf_fields(self) -> list[str]:
        """corpus.conf entries of the options that differ from the defaults."""
        return [f"{f.name}={getattr(self, f.name)}" for f in dataclasses.fields(self)
                if getattr(self, f.name) != f.default]


@dataclass(frozen=True)
class UttSpec:
    """Everything that determines one utterance."""

    utt_id: str
    speaker: Speaker
    seed: tuple[int, ...]
    noise: str
    snr_db: int | None  # None for clean
    channel: str
    target_s: float
    wav_path: str
    floor_after_channel: bool = False


@dataclass
class UttRecord:
    """What rendering produced, as the data dir's tables need it: the text and the length
    (the alignment is in the utterance's json, read back by `sidecar_segments`)."""

    utt_id: str
    text: str
    num_samples: int


@dataclass
class SetSummary:
    """Sizes and condition counts of one generated set (for logs and reports)."""

    speakers: int = 0
    utterances: int = 0
    hours: float = 0.0
    noise: Counter = field(default_factory=Counter)
    channel: Counter = field(default_factory=Counter)


def speakers_for_hours(hours: float, utts_per_spk: int) -> int:
    """Speakers whose `utts_per_spk` utterances hold about `hours` of audio (at least one):
    a corpus sized by hours (run.sh --train-hours) before any of it is rendered; the hours
    made are logged when it is."""
    if hours <= 0 or utts_per_spk < 1:
        raise FhvaeError(f"corpus: --train-hours must be > 0 (got {hours}) and "
                         f"--utts-per-spk >= 1 (got {utts_per_spk})")
    return max(1, math.ceil(hours * 3600 / (utts_per_spk * MEAN_UTT_S)))


def plan_utterances(speakers: dict[str, list[Speaker]], utts_per_spk: int, seed: int,
                    corpus_dir: Path, options: ConditionOptions = ConditionOptions(),
                    test_seed: int | None = None) -> dict[str, list[UttSpec]]:
    """Draw each utterance's conditions from its own seed (independent of order and nj);
    the TEST_SETS' from `test_seed` when given.

    The session draws (home noise/channel, and whether to use them) come from streams of
    their own, so at probability 0 every other draw is what it always was.
    """
    width = max(3, len(str(utts_per_spk)))
    plan: dict[str, list[UttSpec]] = {}
    for set_index, name in enumerate(ALL_SETS):
        if name not in speakers:
            continue
        noises, channels = SET_CONDITIONS[name]
        set_seed = test_seed if name in TEST_SETS and test_seed is not None else seed
        plan[name] = []
        for spk_index, spk in enumerate(speakers[name]):
            home_rng = np.random.default_rng((set_seed, 4, set_index, spk_index))
            home_noise = noises[home_rng.integers(len(noises))]
            home_channel = channels[home_rng.integers(len(channels))]
            for u in range(utts_per_spk):
                utt_seed = (set_seed, 1, set_index, spk_index, u)
                rng = np.random.default_rng(utt_seed)
                noise = noises[rng.integers(len(noises))]
                snr = int(rng.integers(conditions.SNR_RANGE_DB[0], conditions.SNR_RANGE_DB[1] + 1))
                channel = channels[rng.integers(len(channels))]
                target = float(rng.uniform(*DUR_RANGE_S))
                session = np.random.default_rng(utt_seed + (4,)).uniform(size=2)
                if session[0] < options.speaker_noise_prob:
                    noise = home_noise
                if session[1] < options.speaker_channel_prob:
                    channel = home_channel
                utt_id = f"{spk.spk_id}-{u + 1:0{width}d}"
                wav = corpus_dir.resolve() / name / spk.spk_id / f"{utt_id}.wav"
                plan[name].append(UttSpec(utt_id, spk, utt_seed, noise,
                                          None if noise == "clean" else snr, channel,
                                          target, str(wav), options.floor_after_channel))
    return plan


def clean_twin(train: list[UttSpec], corpus_dir: Path) -> list[UttSpec]:
    """The plan of CLEAN_TRAIN_SET: each training utterance's own seed (so the same words,
    speech and pauses) and id, rendered clean and close-talk under its own folder."""
    noise, channel = CLEAN_CONDITION
    return [dataclasses.replace(spec, noise=noise, snr_db=None, channel=channel,
                                wav_path=str(corpus_dir.resolve() / CLEAN_TRAIN_SET
                                             / spec.speaker.spk_id / f"{spec.utt_id}.wav"))
            for spec in train]


def _words_for_duration(full: Synthesis, num_words: int, target: float) -> int:
    """Word count whose prefix of the long synthesis ends closest to `target` samples."""
    ends = full.word_starts[1:] + [len(full.samples)]  # prefix of k words ends at ends[k-1]
    if len(ends) != num_words:  # espeak merged/split words: estimate proportionally
        return max(1, min(num_words, round(num_words * target / len(full.samples))))
    return 1 + int(np.argmin(np.abs(np.asarray(ends) - target)))


def _pad(speech: Synthesis, lead: int, trail: int) -> Synthesis:
    """Add leading/trailing silence (a recording starts and stops around the speech)."""
    samples = np.concatenate([np.zeros(lead, np.int16), speech.samples, np.zeros(trail, np.int16)])
    return Synthesis(samples, [(t + lead, p) for t, p in speech.phonemes],
                     [t + lead for t in speech.word_starts])


def _speak(engine: Engine, voice: Voice, seed: tuple[int, ...], target_s: float,
           babble: bool, source_rate: int) -> tuple[str, Synthesis, list[np.ndarray]]:
    """Runs in a fresh child: the utterance text and padded speech, plus babble talkers.

    Durations are measured at `source_rate`, the rate the samples will be played at.
    """
    rng = np.random.default_rng(seed + (1,))
    words = random_words(rng, MAX_WORDS)
    marks = rng.choice(list(PHRASE_MARKS), size=MAX_WORDS, p=list(PHRASE_MARKS.values()))
    lead, trail = (int(rng.uniform(*PAD_RANGE_S) * source_rate) for _ in range(2))

    def say(count: int) -> Synthesis:  # punctuation gives espeak's phrase pauses
        return engine.synth(" ".join(w + m for w, m in zip(words[:count], marks)), voice)

    low, high = (d * source_rate - lead - trail for d in DUR_RANGE_S)
    count = _words_for_duration(say(len(words)), len(words),
                                target_s * source_rate - lead - trail)
    speech = say(count)
    step = 1 if len(speech.samples) < low else -1 if len(speech.samples) > high else 0
    while step and 1 <= count + step <= len(words):  # nudge into range, one direction only
        count += step
        speech = say(count)
        if (step > 0 and len(speech.samples) >= low) or (step < 0 and len(speech.samples) <= high):
            break
    talkers = []
    if babble:
        talker_rng = np.random.default_rng(seed + (2,))
        for _ in range(conditions.BABBLE_TALKERS):
            text = " ".join(random_words(talker_rng, BABBLE_WORDS))
            talkers.append(engine.synth(text, random_voice(talker_rng)).samples)
    return " ".join(words[:count]), _pad(speech, lead, trail), talkers


def _to_float(samples: np.ndarray, source_rate: int = ESPEAK_RATE) -> np.ndarray:
    return resample(samples.astype(np.float64) / 32768.0, source_rate, RATE)


def _sidecar(spec: UttSpec) -> Path:
    return Path(spec.wav_path).with_suffix(".json")


def _segments(meta: dict) -> list[PhoneSegment]:
    return [PhoneSegment(*seg) for seg in meta["segments"]]


def sidecar_segments(spec: UttSpec) -> list[PhoneSegment]:
    """The phone alignment of a rendered utterance, from its json."""
    return _segments(json.loads(_sidecar(spec).read_text()))


def _load_done(spec: UttSpec) -> UttRecord | None:
    """The record of an utterance already rendered completely, else None."""
    length = complete_wav_length(spec.wav_path, RATE)
    if length is None or not _sidecar(spec).is_file():
        return None
    try:
        meta = json.loads(_sidecar(spec).read_text())
        _segments(meta)          # an alignment that cannot be read: render it again
    except (ValueError, KeyError, TypeError):
        return None
    if meta["num_samples"] != length:
        return None
    return UttRecord(spec.utt_id, meta["text"], length)


def render_utterance(spec: UttSpec) -> UttRecord:
    """Synthesise, degrade and write one utterance (or reuse a complete earlier one)."""
    done = _load_done(spec)
    if done is not None:
        return done
    source_rate = spec.speaker.source_rate
    text, speech, talkers = run_fresh(_speak, spec.speaker.voice, spec.seed, spec.target_s,
                                      spec.noise == "babble", source_rate)
    segments = align(speech.phonemes, len(speech.samples), source_rate, RATE, spec.utt_id)
    x = _to_float(speech.samples, source_rate)
    rng = np.random.default_rng(spec.seed + (3,))
    if spec.noise != "clean":
        noise = conditions.make_noise(spec.noise, x, [_to_float(t) for t in talkers], rng, RATE)
        x = conditions.add_noise(x, noise, spec.snr_db)
    floor = NOISE_FLOOR * rng.standard_normal(len(x))  # drawn here either way: same RIRs
    if not spec.floor_after_channel:
        x = x + floor
    x = conditions.apply_channel(x, spec.channel, rng, RATE)
    if spec.floor_after_channel:
        x = x + floor
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    if peak > PEAK_LIMIT:
        x *= PEAK_LIMIT / peak
    meta = {"text": text, "num_samples": len(x),
            "segments": [[s.start, s.end, s.phone, s.cls] for s in segments]}
    write_text_atomic(_sidecar(spec), json.dumps(meta) + "\n")
    write_wav(spec.wav_path, x, RATE)
    return UttRecord(spec.utt_id, text, len(x))


def write_data_dir(out_dir: Path, specs: list[UttSpec], records: dict[str, UttRecord]) -> SetSummary:
    """Write one Kaldi data dir (all tables LC_ALL=C sorted, atomically); phone_ali.ctm
    from the utterances' json files, one at a time."""
    summary = SetSummary()
    speakers = {spec.speaker.spk_id: spec.speaker for spec in specs}
    spk2utt: dict[str, list[str]] = {spk: [] for spk in speakers}
    ordered = sorted(specs, key=lambda s: s.utt_id.encode())
    tables: dict[str, list[tuple[str, object]]] = {name: [] for name in (
        "wav.scp", "utt2spk", "text", "utt2dur", "utt2noise", "utt2snr", "utt2channel",
        "utt2gender")}
    for spec in ordered:
        rec = records[spec.wav_path]
        spk = spec.speaker
        spk2utt[spk.spk_id].append(spec.utt_id)
        for name, value in (("wav.scp", spec.wav_path), ("utt2spk", spk.spk_id),
                            ("text", rec.text), ("utt2dur", f"{rec.num_samples / RATE:.4f}"),
                            ("utt2noise", spec.noise), ("utt2channel", spec.channel),
                            ("utt2snr", "inf" if spec.snr_db is None else spec.snr_db),
                            ("utt2gender", spk.gender)):
            tables[name].append((spec.utt_id, value))
        summary.hours += rec.num_samples / RATE / 3600
        summary.noise[spec.noise] += 1
        summary.channel[spec.channel] += 1
    data = DataDir(out_dir)
    for name, pairs in tables.items():
        data.write(name, pairs)
    data.write("spk2utt", [(spk, " ".join(utts)) for spk, utts in spk2utt.items()])
    data.write("spk2gender", [(spk, s.gender) for spk, s in speakers.items()])
    data.write("spk_info", [(spk, s.info) for spk, s in speakers.items()])
    data.write_lines(PHONE_CTM, (line for spec in ordered
                                 for line in ctm_lines(spec.utt_id, sidecar_segments(spec), RATE)))
    summary.speakers, summary.utterances = len(speakers), len(specs)
    return summary


def _check_conf(corpus_dir: Path, options: str, additions: list[str]) -> None:
    """Refuse to mix audio made with other options into one corpus dir.

    A corpus made without an optional set may gain it (the previous line is then `options`
    without some of `additions`): no other set depends on it. None may be lost or resized.
    """
    conf = corpus_dir / CONF_NAME
    if conf.is_file():
        previous = conf.read_text().strip()
        if previous == options:
            return
        kept = [f for f in options.split() if f not in additions or f in previous.split()]
        if kept != previous.split():
            raise FhvaeError(f"{conf}: corpus made with other options ({previous}); "
                             f"use another corpus dir or remove this one")
    write_text_atomic(conf, options + "\n")


def generate_corpus(corpus_dir: str | Path, data_root: str | Path, seed: int,
                    counts: dict[str, int], utts_per_spk: int, nj: int = 1,
                    show_progress: bool = True, options: ConditionOptions = ConditionOptions(),
                    test_seed: int | None = None, train_clean: bool = False
                    ) -> dict[str, SetSummary]:
    """Render every utterance with `nj` processes, then write `<data_root>/<set>/`.

    `counts` has the speaker count of each of SETS and optionally of the OPTIONAL_SETS
    (absent or 0: no such set). Options at their defaults leave corpus.conf as it always was.
    `test_seed` (None or equal to `seed`: as always) redraws the TEST_SETS' speakers and
    utterances: a test set nobody has looked at, every other set byte-identical.
    `train_clean` adds CLEAN_TRAIN_SET (clean_twin); every other set stays byte-identical.
    """
    if test_seed == seed:
        test_seed = None
    if utts_per_spk < 1 or nj < 1 or any(c < 0 for c in counts.values()):
        raise FhvaeError("corpus: --utts-per-spk and --nj must be >= 1, speaker counts >= 0")
    for name, prob in (("--speaker-noise-prob", options.speaker_noise_prob),
                       ("--speaker-channel-prob", options.speaker_channel_prob)):
        if not 0.0 <= prob <= 1.0:
            raise FhvaeError(f"corpus: {name} must be within [0, 1], got {prob}")
    corpus_dir, data_root = Path(corpus_dir), Path(data_root)
    optional = {name: counts[name] for name in OPTIONAL_SETS if counts.get(name, 0)}
    optional_conf = [f"{OPTIONAL_CONF_KEYS[name]}={n}" for name, n in optional.items()]
    optional_conf += [f"{CLEAN_TRAIN_SET}=true"] if train_clean else []
    conf = " ".join([f"version={CONF_VERSION}", f"seed={seed}"]
                    + [f"num_{s}_spk={counts[s]}" for s in SETS]
                    + [f"utts_per_spk={utts_per_spk}"] + options.conf_fields()
                    + ([] if test_seed is None else [f"test_seed={test_seed}"])
                    + optional_conf)
    corpus_dir.mkdir(parents=True, exist_ok=True)
    _check_conf(corpus_dir, conf, optional_conf)
    speakers = make_speakers(seed, counts, test_seed)
    for name, num in optional.items():
        speakers[name] = make_unseen_speakers(seed, num, name, test_seed)
    plan = plan_utterances(speakers, utts_per_spk, seed, corpus_dir, options, test_seed)
    if train_clean:
        plan[CLEAN_TRAIN_SET] = clean_twin(plan["train"], corpus_dir)
    records = render_all([spec for name in plan for spec in plan[name]], nj, "corpus",
                         show_progress)
    return {name: write_data_dir(data_root / name, plan[name], records) for name in plan}


def render_all(specs: list[UttSpec], nj: int, desc: str,
               show_progress: bool = True) -> dict[str, UttRecord]:
    """Render `specs` in `nj` worker processes; the records by wav path, which is what
    write_data_dir looks them up by (the clean twin shares train's utterance ids)."""
    records: dict[str, UttRecord] = {}
    # spawn: workers must be single-threaded processes for run_fresh's fork.
    with multiprocessing.get_context("spawn").Pool(nj) as pool:
        results = pool.imap(render_utterance, specs, chunksize=4)
        for spec, record in progress(zip(specs, results), desc, total=len(specs),
                                     unit="utt", enabled=show_progress):
            records[spec.wav_path] = record
    return records
