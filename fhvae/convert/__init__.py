"""Voice conversion as audio, on top of fhvae/inference: whole utterances, frame for frame.

  voices.py         a source utterance's z1 decoded with a target's z2 (T frames in, T out)
  mel_inversion.py  Kaldi log-mel FBank back to a waveform (Kaldi's mel bank, Griffin-Lim)
  audio.py          FBank -> WAV file -> re-analysed FBank; original audio of a data dir
  pairs.py          held-out sources, their targets, the enrolment utterances
  scores.py         judges trained on real FBank: target group, source phones, distortion
  report.py         scores.md
  page.py           the listening page (index.html, spectrogram PNGs)
  pipeline.py       `python -m fhvae convert`: all of the above for one data dir
"""
