# How run.sh launches parallel jobs, as Kaldi's cmd.sh. Every script calls a launcher as
# Kaldi's run.pl is called:
#   $cmd [options] JOB=1:N <log-dir>/<name>.JOB.log <command ...>
# (JOB replaced by 1..N in the log name and the command). Options are Kaldi's:
# --max-jobs-run N, --gpu N, --num-threads N, --mem X, --time T, --config FILE.
#   train_cmd:   FBank (stage 1), the i-vector extractor's jobs (stage 3)
#   extract_cmd: latents and i-vectors (stage 4)
#   cuda_cmd:    training (stage 3); train_fhvae.sh adds --gpu N when it trains on GPU
#
# Local (default): parallel processes on this machine (a drop-in for Kaldi's run.pl). The
# launchers are in utils/parallel/, on PATH once path.sh is sourced (as Kaldi's run.pl is).
export train_cmd="run_local.sh"
export extract_cmd="run_local.sh"
export cuda_cmd="run_local.sh"
#
# Slurm: each job through srun (options translated as Kaldi's slurm.pl does; put a Kaldi
# conf/slurm.conf here, or pass --config FILE, to change the translation), e.g.
# export train_cmd="run_slurm.sh --mem 4G"
# export extract_cmd="run_slurm.sh --mem 4G"
# export cuda_cmd="run_slurm.sh --mem 16G --num-threads 4"
#
# Kaldi's own launchers work unchanged: with a Kaldi checkout at $KALDI_ROOT, e.g.
# export train_cmd="$KALDI_ROOT/egs/wsj/s5/utils/parallel/run.pl"
# export train_cmd="$KALDI_ROOT/egs/wsj/s5/utils/parallel/queue.pl --mem 4G"  # GridEngine
# export cuda_cmd="$KALDI_ROOT/egs/wsj/s5/utils/parallel/slurm.pl --mem 16G"  # conf/slurm.conf
# (queue.pl and slurm.pl run each job in a fresh shell that sources ./path.sh.)
