"""The one way to use a trained FHVAE: load it, encode windows, decode, pool s-vectors.

  calls.py     batched, gradient-free model calls on the model's device (load, encode,
               encode_z1/encode_z2, decode_means, decode_log_likelihood, pool_mu2,
               sequence_mu2)
  windows.py   which frames the encoders see (window_index, svector_rows, cut_segments,
               IndexedWindows)
  latents.py   frame-level z1/z2 and s-vectors of whole utterances (stage 4's numbers)
  frames.py    whole utterances decoded back to exactly T frames (augment, convert)

Training (the table reset), extraction (fhvae/extract.py: jobs and files only) and every
evaluation module call the model through these names.
"""

from fhvae.inference.calls import (BATCH, Encoded, Gaussian, decode_log_likelihood,
                                   decode_means, encode, encode_z1, encode_z2, load, pool_mu2,
                                   sequence_mu2)
from fhvae.inference.frames import FRAME_MODES, aligned_frames, decode_frames
from fhvae.inference.latents import (SVECTOR_POOLS, TABLES, ExtractOptions, Latents,
                                     VoicedFrames, extract_latents)
from fhvae.inference.windows import (IndexedWindows, Segments, WindowSource, cut_segments,
                                     speech_rows, svector_rows, window_index)

__all__ = ["BATCH", "Encoded", "Gaussian", "decode_log_likelihood", "decode_means", "encode",
           "encode_z1", "encode_z2", "load", "pool_mu2", "sequence_mu2",
           "FRAME_MODES", "aligned_frames", "decode_frames",
           "SVECTOR_POOLS", "TABLES", "ExtractOptions", "Latents", "VoicedFrames",
           "extract_latents", "IndexedWindows", "Segments", "WindowSource", "cut_segments",
           "speech_rows", "svector_rows", "window_index"]
