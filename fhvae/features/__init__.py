"""Frame features and their normalisation: stages 1 and 2, read again by every later stage.

  fbank.py            log mel filterbank as Kaldi's compute-fbank-feats (kaldi-native-fbank or psf)
  job.py              one stage-1 FBank job: a wav.scp part -> one ark/scp pair
  mvn.py              global mean/variance statistics and per-utterance CMVN
  stats_embedding.py  per-utterance mean (+ std) of normalised features (baselines)
  vad.py              energy-based voice activity detection, the decision of Kaldi's compute-vad
"""
