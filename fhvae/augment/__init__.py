"""Conditional data augmentation: source utterances re-synthesised in a target condition.

The FHVAE splits an utterance into z1 (content, per window) and z2 (what stays constant
over the utterance: speaker, noise, channel). Keeping z1 and moving z2 to a target domain
gives FBank with the source's frames and labels in the target's condition (Hsu, Zhang &
Glass, ASRU 2017), from untranscribed target speech only.

  domain.py    where z2 goes: the shift by the difference of mean s-vectors, or the
               s-vector of a target utterance (METHODS)
  decode.py    exactly T frames from T windows' decodings, the source's residual (the detail
               the decoder misses), back on the FBank scale
  datadir.py   the augmented Kaldi data dir: new ids, carried tables, cmvn.scp
  job.py       a data dir (or one split part of it) into feature tables, and the merge
"""
