"""What an augmented copy keeps of its source beyond the decoder's means.

The copy's frames come from inference.decode_frames (T rows aligned with the source, so
alignments carry over) and go back to the FBank scale with MVN.invert. The decoder's means are smoother than speech: they miss detail z1 and z2 do not hold. The
residual (source - decoded with the source's own z2) puts it back (RESIDUALS):
  none     the decoded frames alone
  add      decoded + residual: the source itself, moved by what the model predicts
  scaled   decoded + residual x (per-bin std over time of the moved decoding / of the
           source's decoding): the detail compressed or stretched as the model predicts
           the target condition compresses or stretches each bin's range (noise fills the
           valleys between speech frames, so the source's full-range detail would not fit)
"""

from __future__ import annotations

import numpy as np

from fhvae.errors import FhvaeError
from fhvae.features.mvn import MIN_STD

RESIDUALS = ("none", "add", "scaled")


def with_residual(source: np.ndarray, own: np.ndarray, moved: np.ndarray,
                  how: str = "none") -> np.ndarray:
    """Normalised (T, F) output from the normalised source, its decoding with its own z2
    (`own`) and the decoding with z2 moved (`moved`), by the rule `how` (RESIDUALS)."""
    if how == "none":
        return moved
    if how == "add":
        return moved + (source - own)
    if how == "scaled":
        scale = moved.std(axis=0) / np.maximum(own.std(axis=0), MIN_STD)
        return moved + (source - own) * scale
    raise FhvaeError(f"unknown residual rule '{how}' (one of {', '.join(RESIDUALS)})")
