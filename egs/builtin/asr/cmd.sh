# Kaldi's cmd.sh: how the steps/ scripts launch their jobs ($cmd JOB=1:N log command...).
# run.pl runs them on this machine; on a cluster use Kaldi's queue.pl or slurm.pl, e.g.
#   export train_cmd="queue.pl --mem 2G"
export train_cmd="run.pl"
export decode_cmd="run.pl"
