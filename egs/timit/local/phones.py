"""TIMIT phone sets: the 61 labelled phones folded to 48 and 39 (Lee & Hon, 1989), and the
39 grouped into sonorant / obstruent / silence, the three classes the paper colours z1 by.

Glottal stop `q` has no 48/39 counterpart (the usual convention deletes it): its frames get
no phone label.
"""

from __future__ import annotations

# 61-phone label -> 48-phone label. Only the labels that change are listed.
_FOLD_61_TO_48 = {
    "ax-h": "ax", "axr": "er", "em": "m", "eng": "ng", "hv": "hh", "nx": "n", "ux": "uw",
    "bcl": "vcl", "dcl": "vcl", "gcl": "vcl", "pcl": "cl", "tcl": "cl", "kcl": "cl",
    "h#": "sil", "pau": "sil",
}
# 48-phone label -> 39-phone label. Only the labels that change are listed.
_FOLD_48_TO_39 = {
    "ao": "aa", "ax": "ah", "ix": "ih", "el": "l", "en": "n", "zh": "sh",
    "vcl": "sil", "cl": "sil", "epi": "sil",
}

PHONES_61 = tuple("""
aa ae ah ao aw ax ax-h axr ay b bcl ch d dcl dh dx eh el em en eng epi er ey f g gcl h# hh
hv ih ix iy jh k kcl l m n ng nx ow oy p pau pcl q r s sh t tcl th uh uw ux v w y z zh
""".split())

DELETED = "q"

MAP_61_TO_48 = {p: _FOLD_61_TO_48.get(p, p) for p in PHONES_61 if p != DELETED}
MAP_48_TO_39 = {p: _FOLD_48_TO_39.get(p, p) for p in sorted(set(MAP_61_TO_48.values()))}
MAP_61_TO_39 = {p: MAP_48_TO_39[p48] for p, p48 in MAP_61_TO_48.items()}

SONORANTS = frozenset("""
aa ae ah aw ay eh er ey ih iy ow oy uh uw l r w y m n ng
""".split())
OBSTRUENTS = frozenset("""
b d g p t k dx ch jh f th s sh v dh z hh
""".split())
SILENCE = frozenset({"sil"})


def phone_class(phone39: str) -> str:
    """'son', 'obs' or 'sil' for a 39-set phone (KeyError for anything else)."""
    if phone39 in SONORANTS:
        return "son"
    if phone39 in OBSTRUENTS:
        return "obs"
    if phone39 in SILENCE:
        return "sil"
    raise KeyError(phone39)
