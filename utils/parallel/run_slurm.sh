#!/usr/bin/env bash
# Run a command, or an array of jobs, on a Slurm cluster and wait; a drop-in for Kaldi's
# utils/parallel/slurm.pl (same options, same config file format, same logs):
#   utils/parallel/run_slurm.sh [--config conf/slurm.conf] [--gpu N] [--num-threads N] [--mem X]
#                      [--time T] [--max-jobs-run N] [--<name> <value> ...]
#                      JOB=1:N <log-dir>/<name>.JOB.log <command...>
# Each --<name> <value> is translated through the config (--config FILE, else
# conf/slurm.conf when present, else the built-in default in utils/parallel/queue_conf.py:
# --gpu N -> --gres=gpu:N, --num-threads N -> --cpus-per-task=N, --mem X -> --mem-per-cpu=X,
# --time T -> --time=T, --partition P, --account A); an option the config does not
# describe is an error. Options of the form -x value go to the scheduler as they are.
# With `command srun ...` in the config (the default) every job is one srun and this
# script writes the logs, so only the data needs a shared file system; with
# `command sbatch ...` (Kaldi's usual conf/slurm.conf) the jobs are one `sbatch --wait
# --array` job whose tasks write the logs themselves (shared file system needed).
exec python3 "$(dirname "$(readlink -f "$0")")/launch.py" slurm "$@"
