"""Stage 5 (`python -m fhvae evaluate`): what the latents of one evaluated set separate, and
how far each number can be trusted. Tools other stages share live in fhvae/analysis.

  pipeline.py       EvalConfig and run_evaluation: everything below for one set
  inputs.py         the evaluated set: its latents joined with its data dir's labels
  trials.py         Kaldi-format trial lists: all trials and condition-matched ones
  scoring.py        verification back-ends (cosine, LDA+WCCN, LDA+PLDA) and their adaptation
  metrics.py        EER and Kaldi-normalised minDCF
  bootstrap.py      speaker-level bootstrap of EERs and paired comparisons of systems
  verification.py   s-vectors against the baselines under every back-end and trial list
  probes.py         linear probes: each latent against each labelled factor
  swap.py           swap test: the nats of reconstruction each latent is responsible for
  recombination.py  z1 of one segment decoded with z2 of another: the figure and the score
  asr_probe.py      robust-ASR probe: frame phone classifiers across noise and channel
  augment_probe.py  that probe trained with FHVAE-augmented or real noisy speech
                    (local/augment_probe.py)
  tsne.py           t-SNE figures of z1 and z2
  report.py         eer.txt lines, results.md and summary.json
  sweep.py          one table of a dev-set sweep from its runs' outputs (bin/sweep_table.py)
  seeds.py          one table over training seeds from their summary.json (bin/seed_table.py)
"""
