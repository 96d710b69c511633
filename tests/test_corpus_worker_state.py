"""An utterance's audio must not depend on the corpus worker that renders it.

espeak-ng's breath noise (the variants with `breath`: Alicia, f2, f3, f5, sandro, ...)
draws from libc rand(), whose state a forked synthesis child (espeak.run_fresh) inherits
from its worker. libespeak-ng's initialisation probes PulseAudio through pcaudiolib, and
the first libpulse client after the pulse runtime dir went missing (a fresh machine or
container, /tmp cleaned, another HOME) makes /tmp/pulse-XXXXXXXXXXXX with 12 rand() calls.
Before the fix, every breath-voice utterance of that worker came out different: a corpus
made right after `apt-get install espeak-ng` with --nj 2 differed from a later one in 195
of its 2,400 training wavs, the chunks of one of its two workers. Each case below renders
the same utterances in a fresh spawned worker with another history; all must give the
same bytes."""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "local"))

from synthcorpus.espeak import run_fresh  # noqa: E402
from synthcorpus.generate import UttSpec, _speak, render_utterance  # noqa: E402
from synthcorpus.speakers import Speaker  # noqa: E402


# x1, x2: breath voices; y1 (Klatt, which consumes rand() too) and y2 are only rendered
# before them in one case.
def _speaker(spk_id: str, accent: str, variant: str) -> Speaker:
    return Speaker(spk_id, "f" if variant[0] in "Af" else "m", accent, variant, 45, 55, 180, 100)


UTTS = {"x1": (_speaker("tr901", "en-us", "f2"), "clean", None),
        "x2": (_speaker("tr902", "en-gb-x-rp", "Alicia"), "babble", 10),
        "y1": (_speaker("tr903", "en-gb-x-rp", "klatt3"), "clean", None),
        "y2": (_speaker("tr904", "en-029", "f5"), "babble", 10)}
# The rand() calls of libpulse's pa_get_runtime_dir when it makes its runtime dir.
PULSE_RUNTIME_DIR_RAND_CALLS = 12


def _spec(out_dir: Path, utt_id: str) -> UttSpec:
    spk, noise, snr = UTTS[utt_id]
    return UttSpec(utt_id, spk, (31, 1, 0, int(utt_id[1:])), noise, snr, "close", 3.0,
                   str(out_dir / f"{utt_id}.wav"))


def _consume_rand(calls: int) -> None:
    libc = ctypes.CDLL(None)
    for _ in range(calls):
        libc.rand()


def _fresh_pulse_dirs(home: str, tmp: str) -> None:
    """Worker initializer: libpulse finds no runtime dir and makes one (under `tmp`),
    as on a fresh machine; it starts no sound server."""
    for name in ("XDG_RUNTIME_DIR", "PULSE_RUNTIME_PATH", "PULSE_SERVER"):
        os.environ.pop(name, None)
    conf = Path(tmp) / "client.conf"
    conf.write_text("autospawn = no\n")
    os.environ.update(HOME=home, TMPDIR=tmp, PULSE_CLIENTCONFIG=str(conf))


def _speak_after_rand(engine, calls, *args):
    _consume_rand(calls)
    return _speak(engine, *args)


def test_the_same_utterance_is_byte_identical_in_any_worker_history(tmp_path):
    compared = ["x1", "x2"]
    cases = {
        "fresh worker": ([], None, ()),
        "other utterances first": (["y1", "y2"], None, ()),
        "worker's rand() already used": ([], _consume_rand, (PULSE_RUNTIME_DIR_RAND_CALLS,)),
        "libpulse makes its runtime dir": (
            [], _fresh_pulse_dirs, (str(tmp_path / "home"), str(tmp_path / "tmp"))),
    }
    (tmp_path / "home").mkdir()
    (tmp_path / "tmp").mkdir()
    audio = {}
    for n, (case, (before, initializer, initargs)) in enumerate(cases.items()):
        out = tmp_path / f"case{n}"
        out.mkdir()
        specs = [_spec(out, u) for u in before + compared]
        with multiprocessing.get_context("spawn").Pool(1, initializer, initargs) as pool:
            pool.map(render_utterance, specs, chunksize=len(specs))
        audio[case] = {u: (out / f"{u}.wav").read_bytes() for u in compared}
    reference = audio["fresh worker"]
    differing = {case: [u for u in compared if got[u] != reference[u]]
                 for case, got in audio.items()}
    assert not any(differing.values()), f"audio differs from a fresh worker's: {differing}"


def test_those_utterances_depend_on_the_libc_rand_state_in_the_child():
    """Else the test above could pass for nothing (e.g. after a change of voices)."""
    for utt_id in ("x1", "x2"):
        spec = _spec(Path("unused"), utt_id)
        args = (spec.speaker.voice, spec.seed, spec.target_s, spec.noise == "babble",
                spec.speaker.source_rate)
        (_, plain, _), (_, moved, _) = (run_fresh(_speak_after_rand, calls, *args)
                                        for calls in (0, 1))
        assert len(plain.samples) == len(moved.samples)
        assert not np.array_equal(plain.samples, moved.samples), utt_id
