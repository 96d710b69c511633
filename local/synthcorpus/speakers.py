"""Synthetic speakers: an espeak-ng accent x voice variant x pitch/range/rate/volume.

Sets get disjoint (accent, variant) combinations: the combinations of each gender are
shuffled once and cut into one pool per set, sized to its speaker count while there are
enough (8 accents x 17 female / 78 male variants), proportionally otherwise (then a
combination is shared by several speakers of one set, told apart by pitch and rate).
Unseen dev/test speakers therefore differ from every training speaker in accent or
variant, not only in pitch or rate. Genders alternate within each set.

The unseen-conditions evaluation set (UNSEEN_SET) is drawn from its own random stream, so
adding it leaves train/dev/test unchanged. Its voices share nothing with theirs but the
variant's formant table: a non-English espeak-ng language reading the English words,
prosody outside every training range, and a vocal-tract/pitch warp (the espeak output
played at another sample rate) that no training speaker has. DEV_UNSEEN_SET is its dev
twin (choices about unseen conditions, e.g. back-end adaptation, are made there): made the
same way from a stream of its own, its (language, variant) pairs taken from the other end
of the unseen set's shuffled list, so the two share no voice while the pairs last (153
female, 702 male) and neither changes the other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synthcorpus.espeak import SAMPLE_RATE as ESPEAK_RATE
from synthcorpus.espeak import Voice

SETS = ("train", "dev", "test")
# The evaluation sets a --test-seed redraws (speakers' prosody and warp, every utterance);
# the voice (accent/language, variant) pools stay those of `seed`, so the sets stay disjoint.
TEST_SETS = ("test", "test_unseen")
UNSEEN_SET = "test_unseen"
DEV_UNSEEN_SET = "dev_unseen"
SET_PREFIX = {"train": "tr", "dev": "dv", "test": "ts", UNSEEN_SET: "un", DEV_UNSEEN_SET: "du"}
# Random stream of each unseen-condition set's prosody and warp (make_speakers uses 0).
UNSEEN_STREAMS = {UNSEEN_SET: 2, DEV_UNSEEN_SET: 3}

# espeak-ng English accents (`espeak-ng --voices=en`, formant voices only; `en` is British).
ACCENTS = ("en", "en-us", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp",
           "en-gb-x-gbcwmd", "en-029", "en-us-nyc")
# Voice variants (`espeak-ng --voices=variant`) and their gender; whisper voices (no
# pitch), the test voice `fast` and the effect voices Demonic/announcer/Mr are left out.
FEMALE_VARIANTS = ("Alicia", "Andrea", "Annie", "aunty", "belinda", "linda", "steph",
                   "steph2", "steph3", "anika", "anikaRobot", "f1", "f2", "f3", "f4", "f5",
                   "grandma")
MALE_VARIANTS = (
    "adam", "Alex", "Andy", "antonio", "benjamin", "boris", "caleb", "david", "Denis",
    "Diogo", "ed", "edward", "edward2", "Gene", "Gene2", "gustave", "Henrique", "Hugo",
    "iven", "iven2", "iven3", "iven4", "Jacky", "john", "kaukovalta", "Lee", "marcelo",
    "Marco", "Mario", "max", "Michael", "michel", "miguel", "Mike", "Nguyen", "pablo",
    "paul", "pedro", "quincy", "RicishayMax", "RicishayMax2", "RicishayMax3", "rob",
    "robert", "robosoft", "robosoft2", "robosoft3", "robosoft4", "robosoft5", "robosoft6",
    "robosoft7", "robosoft8", "Storm", "Tweaky", "UniRobot", "zac", "AnxiousAndy",
    "grandpa", "klatt", "klatt2", "klatt3", "klatt4", "klatt5", "klatt6", "m1", "m2", "m3",
    "m4", "m5", "m6", "m7", "m8", "norbert", "sandro", "shelby", "travis", "victor", "croak",
)
VARIANTS = {"f": FEMALE_VARIANTS, "m": MALE_VARIANTS}
PITCH_RANGE = (30, 70)  # espeak -p, relative to the variant's own base pitch
RANGE_RANGE = (30, 70)  # pitch range (intonation)
RATE_RANGE = (140, 200)  # words per minute
VOLUME_RANGE = (80, 120)

# Unseen set only. Languages whose phonemes for the English words phones.py classifies and
# that speak them with their own rules (no switch to English): Spanish, Polish, Czech,
# Slovak, Hungarian, Romanian, Swahili, Indonesian, Esperanto.
UNSEEN_LANGUAGES = ("es", "pl", "cs", "sk", "hu", "ro", "sw", "id", "eo")
UNSEEN_MARGIN = 20  # prosody drawn within this far outside each training range
# Rates the 22,050 Hz espeak output is taken to be at: formants and pitch x0.87-1.16 (with
# small integer ratios to 16 kHz, so resampling stays fast).
UNSEEN_SOURCE_RATES = (19200, 20000, 24000, 25600)


@dataclass(frozen=True)
class Speaker:
    """One synthetic speaker; `voice` is fixed across the speaker's utterances."""

    spk_id: str
    gender: str  # "m" or "f"
    accent: str
    variant: str
    pitch: int
    pitch_range: int
    rate: int
    volume: int
    source_rate: int = ESPEAK_RATE  # the rate espeak's samples are played at (warp)

    @property
    def voice(self) -> Voice:
        return Voice(f"{self.accent}+{self.variant}", self.rate, self.pitch, self.pitch_range,
                     self.volume)

    @property
    def info(self) -> str:
        """The `spk_info` value: every parameter as key=value."""
        info = (f"gender={self.gender} accent={self.accent} variant={self.variant} "
                f"pitch={self.pitch} range={self.pitch_range} rate={self.rate} "
                f"volume={self.volume}")
        if self.source_rate != ESPEAK_RATE:
            info += f" warp={self.source_rate / ESPEAK_RATE:.3f}"
        return info


def _draw(rng: np.random.Generator, bounds: tuple[int, int]) -> int:
    return int(rng.integers(bounds[0], bounds[1] + 1))


def _draw_outside(rng: np.random.Generator, bounds: tuple[int, int], above: bool) -> int:
    """An integer within UNSEEN_MARGIN below or above `bounds`, never inside them."""
    offset = int(rng.integers(1, UNSEEN_MARGIN + 1))
    return bounds[1] + offset if above else bounds[0] - offset


def random_voice(rng: np.random.Generator) -> Voice:
    """Any accent/variant with random prosody (background talkers for babble noise)."""
    variants = FEMALE_VARIANTS + MALE_VARIANTS
    name = f"{ACCENTS[rng.integers(len(ACCENTS))]}+{variants[rng.integers(len(variants))]}"
    return Voice(name, _draw(rng, RATE_RANGE), _draw(rng, PITCH_RANGE),
                 _draw(rng, RANGE_RANGE), _draw(rng, VOLUME_RANGE))


def _pool_sizes(num_combos: int, counts: dict[str, int]) -> dict[str, int]:
    """Combinations per set: one per speaker if they suffice, else proportional (>= 1)."""
    total = sum(counts.values())
    if total <= num_combos:
        return dict(counts)
    if sum(1 for c in counts.values() if c) > num_combos:
        raise ValueError(f"{num_combos} voice combinations cannot keep the sets disjoint")
    sizes = {s: max(1, num_combos * c // total) if c else 0 for s, c in counts.items()}
    while sum(sizes.values()) > num_combos:  # the max(1, .) may overshoot
        largest = max(sizes, key=lambda s: sizes[s])
        sizes[largest] -= 1
    return sizes


def make_speakers(seed: int, counts: dict[str, int], test_seed: int | None = None
                  ) -> dict[str, list[Speaker]]:
    """Speakers for each set in SETS (`counts[set]` of them), deterministic in `seed`; with
    `test_seed`, the test speakers' prosody comes from that seed's stream instead (the test
    set is drawn last, so train and dev do not move)."""
    rng = np.random.default_rng([seed, 0])
    genders = {s: ["m" if i % 2 == 0 else "f" for i in range(counts[s])] for s in SETS}
    pools: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for gender, variants in VARIANTS.items():
        combos = [(a, v) for a in ACCENTS for v in variants]
        order = rng.permutation(len(combos))
        per_set = {s: genders[s].count(gender) for s in SETS}
        begin = 0
        for s, size in _pool_sizes(len(combos), per_set).items():
            pools[(s, gender)] = [combos[i] for i in order[begin:begin + size]]
            begin += size
    speakers: dict[str, list[Speaker]] = {}
    used: set[tuple] = set()
    for s in SETS:
        if s in TEST_SETS and test_seed is not None:
            rng = np.random.default_rng([test_seed, 0])
        width = max(3, len(str(counts[s])))
        taken = {"m": 0, "f": 0}
        speakers[s] = []
        for i, gender in enumerate(genders[s]):
            pool = pools[(s, gender)]
            accent, variant = pool[taken[gender] % len(pool)]
            taken[gender] += 1
            while True:  # redraw prosody until the parameter tuple is new
                prosody = (_draw(rng, PITCH_RANGE), _draw(rng, RANGE_RANGE),
                           _draw(rng, RATE_RANGE), _draw(rng, VOLUME_RANGE))
                if (accent, variant) + prosody not in used:
                    break
            used.add((accent, variant) + prosody)
            speakers[s].append(Speaker(f"{SET_PREFIX[s]}{i + 1:0{width}d}", gender, accent,
                                       variant, *prosody))
    return speakers


def make_unseen_speakers(seed: int, count: int, name: str = UNSEEN_SET,
                         test_seed: int | None = None) -> list[Speaker]:
    """`count` speakers of `name` (UNSEEN_SET or DEV_UNSEEN_SET): each (language, variant)
    once while they last; DEV_UNSEEN_SET walks the shuffled pairs from the end. With
    `test_seed`, UNSEEN_SET's prosody and warps come from that seed's stream (the pair order
    stays `seed`'s, so DEV_UNSEEN_SET keeps the other end)."""
    combos = {g: [(lang, v) for lang in UNSEEN_LANGUAGES for v in VARIANTS[g]] for g in VARIANTS}
    rng = np.random.default_rng([seed, UNSEEN_STREAMS[UNSEEN_SET]])  # not make_speakers' stream
    orders = {g: rng.permutation(len(c)) for g, c in combos.items()}  # shared pair order
    if name != UNSEEN_SET:  # the unseen set's draws go on in its stream, as they always did
        rng = np.random.default_rng([seed, UNSEEN_STREAMS[name]])
        orders = {g: order[::-1] for g, order in orders.items()}
    elif test_seed is not None:
        rng = np.random.default_rng([test_seed, UNSEEN_STREAMS[name]])
    width = max(3, len(str(count)))
    speakers = []
    for i in range(count):
        gender = "m" if i % 2 == 0 else "f"
        language, variant = combos[gender][orders[gender][(i // 2) % len(combos[gender])]]
        # Pitch and pitch range on the same side: espeak-ng 1.51 crashes (SIGSEGV) on
        # some texts when the range exceeds the pitch by about 40 or more.
        high_pitch = bool(rng.integers(2))
        speakers.append(Speaker(
            f"{SET_PREFIX[name]}{i + 1:0{width}d}", gender, language, variant,
            _draw_outside(rng, PITCH_RANGE, high_pitch),
            _draw_outside(rng, RANGE_RANGE, high_pitch),
            _draw_outside(rng, RATE_RANGE, bool(rng.integers(2))), _draw(rng, VOLUME_RANGE),
            int(UNSEEN_SOURCE_RATES[rng.integers(len(UNSEEN_SOURCE_RATES))])))
    return speakers
