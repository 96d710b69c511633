#!/usr/bin/env bash
# Run a command, or an array of jobs, as parallel processes on this machine
# (the calling convention of Kaldi's run.pl):
#   utils/run_local.sh [--max-jobs-run N] JOB=1:N <log-dir>/<name>.JOB.log <command...>
#   utils/run_local.sh <log> <command...>
# JOB is replaced by the job number in the log name and the command. Slurm resource
# options (--mem, --gpus, --partition, ...) are accepted and ignored, so cmd.sh can switch
# to utils/run_slurm.sh without other changes. Exit status 1 if any job failed.
exec python3 "$(dirname "$(readlink -f "$0")")/launch.py" local "$@"
