# How run.sh launches parallel jobs (like Kaldi's cmd.sh). Each command takes
#   JOB=1:N <log-dir>/<name>.JOB.log <command ...>
# Local (default): N parallel processes on this machine.
export train_cmd="utils/run_local.sh"
export extract_cmd="utils/run_local.sh"
export cuda_cmd="utils/run_local.sh"
# On a Slurm cluster, use instead for example:
# export train_cmd="utils/run_slurm.sh --partition cpu --mem 4G"
# export extract_cmd="utils/run_slurm.sh --partition cpu --mem 4G"
# export cuda_cmd="utils/run_slurm.sh --partition gpu --gpus 1 --mem 16G"
