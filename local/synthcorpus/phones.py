"""espeak-ng phoneme events -> phone segments tiling the audio, with broad phone classes.

The classes follow the paper's TIMIT plots: sonorant (vowels, diphthongs, nasals,
liquids, glides), obstruent (stops, fricatives, affricates, /h/, glottal stop) and
silence (espeak's pause phonemes, all spelled with a leading `_`).

Alignment format written by the corpus (`phone_ali.ctm`, CTM-like, one line per phone):

    <utt-id> 1 <start-sec> <dur-sec> <phone> <class>

sorted by utterance id (LC_ALL=C) and then by start; times have 4 decimals. Segments
tile the utterance: each one starts where the previous one ends (up to the 0.1 ms
printing precision), the first starts at 0 and the last ends at the end of the audio.
"""

from __future__ import annotations

from dataclasses import dataclass

from fhvae.errors import FhvaeError

SONORANT, OBSTRUENT, SILENCE = "sonorant", "obstruent", "silence"
PHONE_CLASSES = (SONORANT, OBSTRUENT, SILENCE)

# espeak-ng English phoneme mnemonics (ph_english* tables), classified for this project.
_VOWELS = (
    "a a# a2 aa A: A@ A# aI aI@ aI2 aI3 aU aU@ @ @- @2 @5 @L @r 3 3: 3:r e e@ eI E E2 "
    "i i: i@ i@3 I I# I2 IR O O: O2 O@ OI o@ oU oU# Q u u: u@ U U@ V VR 0"
).split()
_SONORANT_CONSONANTS = "m m- n n- N l l/ r r- r/ w w# j ;".split()  # `;` = linking y-glide
_OBSTRUENTS = "p b t t# t[ t2 d d# d2 k g f v T D s z z# S Z h x C tS dZ ?".split()
# Mnemonics that only the unseen set's languages (speakers.UNSEEN_LANGUAGES reading the
# English word list) add; classes checked against `espeak-ng -v <lang> --ipa`.
_OTHER_VOWELS = "o y A oI ea Oa eo".split()
_OTHER_SONORANTS = "R R2 * ** l^ n^ I^".split()  # trills, taps, palatal l and n, glide
_OTHER_OBSTRUENTS = "B J^ ts dz c J X".split()  # beta, palatal fricative, affricates, stops
_CLASS_OF = {
    **{p: SONORANT for p in _VOWELS + _SONORANT_CONSONANTS + _OTHER_VOWELS + _OTHER_SONORANTS},
    **{p: OBSTRUENT for p in _OBSTRUENTS + _OTHER_OBSTRUENTS},
}
# Allophone marks espeak appends to a base phoneme; stripped when a variant is not listed.
_MODIFIERS = "#2345[-/;!"


def phone_class(phone: str) -> str | None:
    """Broad class of an espeak mnemonic, or None when it is not in the table."""
    if phone.startswith("_"):
        return SILENCE
    while phone:
        cls = _CLASS_OF.get(phone)
        if cls is not None:
            return cls
        if phone[-1] not in _MODIFIERS:
            return None
        phone = phone[:-1]
    return None


@dataclass(frozen=True)
class PhoneSegment:
    """One phone, as output-sample indices [start, end) at the corpus sample rate."""

    start: int
    end: int
    phone: str
    cls: str


def align(events: list[tuple[int, str]], num_samples_in: int, rate_in: int,
          rate_out: int, utt_id: str) -> list[PhoneSegment]:
    """Turn phoneme start events (input-rate samples) into segments at `rate_out`.

    Audio before the first event becomes a silence segment `_`; zero-length segments
    (espeak emits simultaneous events) are dropped. The last segment ends at the
    resampled length, round(num_samples_in * rate_out / rate_in).
    """
    num_out = round(num_samples_in * rate_out / rate_in)
    starts = [0] + [sample for sample, _ in events]
    names = ["_"] + [name for _, name in events]
    if any(b < a for a, b in zip(starts, starts[1:])) or starts[-1] > num_samples_in:
        raise FhvaeError(f"{utt_id}: espeak phoneme events out of order or past the audio end")
    bounds = [round(s * rate_out / rate_in) for s in starts] + [num_out]
    segments = []
    for name, begin, end in zip(names, bounds, bounds[1:]):
        if end == begin:
            continue
        cls = phone_class(name)
        if cls is None:
            raise FhvaeError(f"{utt_id}: espeak phoneme '{name}' has no class in phones.py")
        segments.append(PhoneSegment(begin, end, name, cls))
    return segments


def ctm_lines(utt_id: str, segments: list[PhoneSegment], rate: int) -> list[str]:
    """`phone_ali.ctm` lines for one utterance (format in the module docstring)."""
    return [f"{utt_id} 1 {seg.start / rate:.4f} {(seg.end - seg.start) / rate:.4f} "
            f"{seg.phone} {seg.cls}\n" for seg in segments]
