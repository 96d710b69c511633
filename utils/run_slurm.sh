#!/usr/bin/env bash
# Run a command, or an array of jobs, on a Slurm cluster, one `srun` per job, and wait:
#   utils/run_slurm.sh [--partition P] [--mem M] [--gpus G] [--time T] [--cpus-per-task C]
#                      [--max-jobs-run N] [--<srun-option> V ...] JOB=1:N <log> <command...>
# Every option except --max-jobs-run goes to srun as --option=value. Same JOB substitution,
# logs and failure report as utils/run_local.sh; the logs are written by this script, so
# only the data needs to be on a shared file system.
exec python3 "$(dirname "$(readlink -f "$0")")/launch.py" slurm "$@"
