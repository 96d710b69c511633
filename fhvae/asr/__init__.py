"""fhvae.asr: scoring Kaldi ASR systems run on the latents.

- wer.py: word errors per utterance (edit distance), summed per recording condition, and
  paired speaker-bootstrap intervals of WER differences, Holm/Bonferroni-corrected per table.
- kaldi_decode.py: reading Kaldi's scoring of a decode dir (steps/score_kaldi.sh), choosing
  the language-model weight and insertion penalty on dev.
"""
