#!/usr/bin/env bash
# Run a command, or an array of jobs, as parallel processes on this machine; a drop-in
# for Kaldi's utils/run.pl (same options, same logs):
#   utils/parallel/run_local.sh [options] JOB=1:N <log-dir>/<name>.JOB.log <command...>
#   utils/parallel/run_local.sh [options] JOB=n <log> <command...>      (one job, JOB -> n)
#   utils/parallel/run_local.sh [options] <log> <command...>
# JOB is replaced by the job number in the log name and the command.
# Options: --max-jobs-run N (or -tc N): at most N jobs at once (default: one per CPU, or
# one per GPU with --gpu N); every other option (--gpu, --mem, --num-threads, --time,
# --config, ...) is accepted and ignored, so cmd.sh can switch to utils/parallel/run_slurm.sh,
# queue.pl or slurm.pl without other changes. Exit status 1 if any job failed.
exec python3 "$(dirname "$(readlink -f "$0")")/launch.py" local "$@"
