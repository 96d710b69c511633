"""libespeak-ng through ctypes: audio samples and phoneme events from the same callback.

Taking both from one synthesis callback makes the alignment exact: each phoneme event
carries the index of the 22,050 Hz output sample where the phoneme starts.

espeak-ng keeps hidden state from one utterance to the next (e.g. its pitch-flutter
phase), so synthesising the same text twice in one process gives different samples.
`run_fresh` therefore runs every utterance's synthesis in a forked child of a process
that has only initialised the library; output then depends on the request alone, not on
which worker made it or what that worker synthesised before.

One such state is not espeak's own: the breath noise of the variants with `breath`
(Alicia, f2, f3, f5, sandro, ...) and the Klatt noise source draw from libc rand(), whose
state is the whole process's. Initialising the library is not enough to leave it alone:
espeak_Initialize probes PulseAudio (through pcaudiolib), and the first libpulse client
after its runtime dir went missing (fresh machine, /tmp cleaned, another HOME) names a new
/tmp/pulse-XXXXXXXXXXXX with 12 rand() calls. So the child resets rand() to libc's initial
state (seed 1, which a process that never called it has) before synthesising.
"""

from __future__ import annotations

import ctypes
import os
import pickle
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from fhvae.errors import FhvaeError

SAMPLE_RATE = 22050

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_INITIALIZE_DONT_EXIT = 0x8000
_EVENT_LIST_TERMINATED = 0
_EVENT_WORD = 1
_EVENT_PHONEME = 7
_PARAM_RATE, _PARAM_VOLUME, _PARAM_PITCH, _PARAM_RANGE = 1, 2, 3, 4
_POS_CHARACTER = 1
_CHARS_UTF8 = 1


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_Callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                             ctypes.POINTER(_Event))


@dataclass(frozen=True)
class Voice:
    """Everything espeak needs to speak like one speaker (`name` is e.g. `en-us+m3`)."""

    name: str
    rate: int  # words per minute
    pitch: int  # 0-99
    pitch_range: int  # 0-99
    volume: int  # 0-200


@dataclass
class Synthesis:
    """22,050 Hz int16 samples, phoneme starts (sample, mnemonic) and word start samples."""

    samples: np.ndarray
    phonemes: list[tuple[int, str]]
    word_starts: list[int]


class Engine:
    """One initialised libespeak-ng (per process: the library is a singleton)."""

    def __init__(self) -> None:
        try:
            self._lib = ctypes.CDLL("libespeak-ng.so.1")
        except OSError as err:
            raise FhvaeError(f"libespeak-ng.so.1: cannot load ({err}); install espeak-ng") from None
        rate = self._lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, None, _INITIALIZE_PHONEME_EVENTS | _INITIALIZE_DONT_EXIT)
        if rate != SAMPLE_RATE:
            raise FhvaeError(f"libespeak-ng.so.1: initialisation gave sample rate {rate}, "
                             f"expected {SAMPLE_RATE}")
        self._chunks: list[np.ndarray] = []
        self._phonemes: list[tuple[int, str]] = []
        self._words: list[int] = []
        self._callback = _Callback(self._on_audio)  # keep a reference: C holds the pointer
        self._lib.espeak_SetSynthCallback(self._callback)

    def _on_audio(self, wav: Any, num_samples: int, events: Any) -> int:
        if num_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(num_samples,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            event = events[i]
            if event.type == _EVENT_PHONEME:
                name = bytes(event.id.string).split(b"\0", 1)[0].decode("ascii")
                self._phonemes.append((event.sample, name))
            elif event.type == _EVENT_WORD:
                self._words.append(event.sample)
            i += 1
        return 0

    def synth(self, text: str, voice: Voice) -> Synthesis:
        """Speak `text` with `voice`; raises FhvaeError for an unknown voice."""
        if self._lib.espeak_SetVoiceByName(voice.name.encode("ascii")) != 0:
            raise FhvaeError(f"espeak-ng: unknown voice '{voice.name}'")
        for param, value in ((_PARAM_RATE, voice.rate), (_PARAM_PITCH, voice.pitch),
                             (_PARAM_RANGE, voice.pitch_range), (_PARAM_VOLUME, voice.volume)):
            self._lib.espeak_SetParameter(param, value, 0)
        self._chunks, self._phonemes, self._words = [], [], []
        data = text.encode("utf-8")
        status = self._lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8,
                                        None, None)
        if status != 0:
            raise FhvaeError(f"espeak-ng: synthesis failed (status {status}) for '{text[:40]}'")
        samples = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        return Synthesis(samples.astype(np.int16), self._phonemes, self._words)


_ENGINE: Engine | None = None
_LIBC = ctypes.CDLL(None)  # the libc whose rand() libespeak-ng calls


def _reset_libc_rand() -> None:
    """Put libc rand() back to its initial state: the default seed, 1 (glibc, musl)."""
    _LIBC.srand(1)


def run_fresh(fn: Callable[..., Any], *args: Any) -> Any:
    """Return `fn(engine, *args)` computed in a forked child with pristine espeak state.

    The parent initialises the library once and never synthesises, and each child resets
    libc rand() (see the module docstring), so every child starts from the same state
    whatever the parent did. Call only from a single-threaded process.
    """
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = Engine()
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: compute, send (ok, value) back, exit without cleanup handlers
        os.close(read_fd)
        status = 0
        try:
            try:
                _reset_libc_rand()
                reply = (True, fn(_ENGINE, *args))
            except Exception as err:  # noqa: BLE001 - shipped to the parent and re-raised there
                reply = (False, err)
            with os.fdopen(write_fd, "wb") as pipe:
                pickle.dump(reply, pipe, protocol=pickle.HIGHEST_PROTOCOL)
        except BaseException:  # noqa: BLE001 - a child must never return into the caller
            status = 1
        os._exit(status)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        try:
            ok, value = pickle.load(pipe)
        except EOFError:
            ok, value = False, RuntimeError("espeak-ng child process died without a reply")
    os.waitpid(pid, 0)
    if not ok:
        raise value
    return value
