"""Stage 3: FHVAE training with hierarchical sampling (paper, Algorithm 1).

  loop.py         the Trainer: table reset, Adam steps, dev bound, early stop, resume; train()
  config.py       TrainConfig, the settings of a run (<exp>/config.yaml)
  lr_schedule.py  the lr of each step (warm-up, constant/cosine/linear decay)
  runtime.py      what a process needs from its machine: rank, device, autocast, Adam
  checkpoint.py   the files a run writes (final.pt's keys, last.pt's RunState and RNG
                  states), written atomically and read safely; load_model for every reader
  metrics.py      the record of a run: train_metrics.tsv and loss.png
  progress.py     the log line every log_every steps, and a bar on a terminal

Nothing is imported here: the readers of a model file (fhvae.inference) import
checkpoint.py alone, and the loop calls fhvae.inference, so importing the loop from here
would make the two packages import each other.
"""
