"""utils/parallel/run_local.sh (Kaldi run.pl interface) and utils/parallel/run_slurm.sh
(slurm.pl interface, with a fake srun/sbatch on PATH that records its argv and runs the job)."""

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from helpers import clean_env, descendants, run, spawn, wait_for

ROOT = Path(__file__).resolve().parents[1]
LAUNCHERS = ROOT / "utils" / "parallel"


def launch(script, args, cwd, env=None):
    return run([str(LAUNCHERS / script), *map(str, args)], cwd=cwd, env=env, timeout=60)


def accounting(log_line: str, threads: int, at_most: float) -> int:
    """The seconds of `# Accounting: time=<s> threads=<n>`, checked to be at most `at_most`
    (the launcher's own wall time) rather than equal to a load-dependent 0."""
    match = re.fullmatch(rf"# Accounting: time=(\d+) threads={threads}", log_line)
    assert match, log_line
    assert int(match.group(1)) <= at_most + 1, (log_line, at_most)
    return int(match.group(1))


def test_local_array_jobs_substitute_job_and_log(tmp_path):
    started = time.monotonic()
    res = launch("run_local.sh", ["JOB=1:4", "log/sub/foo.JOB.log",
                                  "echo job JOB | tr a-z A-Z > out.JOB.txt"], tmp_path)
    assert res.returncode == 0, res.stderr
    wall = time.monotonic() - started
    for j in range(1, 5):
        assert (tmp_path / f"out.{j}.txt").read_text() == f"JOB {j}\n"
        log = (tmp_path / f"log/sub/foo.{j}.log").read_text().splitlines()
        assert log[0] == f"# echo job {j} | tr a-z A-Z > out.{j}.txt"
        assert log[1].startswith("# Started at ") and log[2] == "#"
        seconds = accounting(log[-2], 1, wall)
        assert re.fullmatch(rf"# Ended \(code 0\) at .*, elapsed time {seconds} seconds", log[-1])


def test_accounting_time_is_the_jobs_wall_time(tmp_path):
    started = time.monotonic()
    res = launch("run_local.sh", ["--num-threads", 2, "slow.log", "sleep 1.6"], tmp_path)
    assert res.returncode == 0, res.stderr
    log = (tmp_path / "slow.log").read_text().splitlines()
    assert accounting(log[-2], 2, time.monotonic() - started) >= 2    # rounded 1.6 s
    assert log[-1].endswith(f"elapsed time {accounting(log[-2], 2, 1e9)} seconds")


def test_local_joins_words_as_run_pl(tmp_path):
    started = time.monotonic()
    # Kaldi scripts escape pipes (\|) and quote arguments with spaces; run.pl joins the
    # words, double-quoting those with whitespace (single quotes if they hold a '"').
    res = launch("run_local.sh", ["--num-threads", 3, "JOB=2", "x.JOB.log",
                                  "echo", "JOB", "a  b", 'say "hi"', "|", "tr", "a-z", "A-Z"],
                 tmp_path)
    assert res.returncode == 0, res.stderr
    log = (tmp_path / "x.2.log").read_text().splitlines()
    assert log[0] == """# echo 2 "a  b" 'say "hi"' | tr a-z A-Z"""
    assert log[3] == '2 A  B SAY "HI"'
    accounting(log[-2], 3, time.monotonic() - started)


WAIT_FOR_ALL = ("import os, sys, time; open('started.JOB', 'w').close(); t = time.time()\n"
                "while not all(os.path.exists(f'started.{j}') for j in (1, 2, 3)):\n"
                "    time.sleep(0.02)\n"
                "    if time.time() - t > 30: sys.exit('timeout waiting for the others')")
AFTER_PREVIOUS = ("import os, sys; j = JOB\n"
                  "if any(not os.path.exists(f'done.{i}') for i in range(1, j)): "
                  "sys.exit(f'job {j} started before an earlier one finished')\n"
                  "open(f'done.{j}', 'w').close()")


def test_local_jobs_run_in_parallel_and_respect_max_jobs(tmp_path):
    # Each of 3 jobs waits until all 3 have started: that only finishes if they run at once.
    res = launch("run_local.sh", ["--max-jobs-run", 3, "JOB=1:3", "log/p.JOB.log",
                                  "python3", "-c", WAIT_FOR_ALL], tmp_path)
    assert res.returncode == 0, res.stderr + (tmp_path / "log/p.1.log").read_text()
    # With one slot, each job starts only after all earlier ones have finished.
    res = launch("run_local.sh", ["JOB=1:4", "--max-jobs-run", 1, "log/s.JOB.log",
                                  "python3", "-c", AFTER_PREVIOUS], tmp_path)
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in tmp_path.glob("done.*")) == [f"done.{j}" for j in range(1, 5)]


def test_local_failure_is_reported_with_its_log(tmp_path):
    res = launch("run_local.sh", ["JOB=1:4", "exp/x/log/foo.JOB.log", "test", "JOB", "!=", "3"],
                 tmp_path)
    assert res.returncode == 1
    assert "run_local.sh: 1/4 jobs failed; see exp/x/log/foo.3.log" in res.stderr
    assert "# Ended (code 1)" in (tmp_path / "exp/x/log/foo.3.log").read_text()
    assert "# Ended (code 0)" in (tmp_path / "exp/x/log/foo.2.log").read_text()


def test_local_single_job_options_and_bad_command_lines(tmp_path):
    # Kaldi's resource options are accepted and ignored, as run.pl does.
    res = launch("run_local.sh", ["--gpu", 1, "--mem", "8G", "--num-threads", 4, "--config",
                                  "conf/none.conf", "one.log", "python3", "-c",
                                  "print('a b'); print(2)"], tmp_path)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "one.log").read_text().splitlines()[3:5] == ["a b", "2"]
    for args, message in [
        (["JOB=1:2", "x.log", "true"], "2 jobs would share one log: put JOB in 'x.log'"),
        (["JOB=3:2", "x.JOB.log", "true"], "invalid job range JOB=3:2"),
        (["JOB=0:2", "x.JOB.log", "true"], "invalid job range JOB=0:2"),
        (["--max-jobs-run", "0", "x.log", "true"], "--max-jobs-run expects a positive integer"),
        (["x.log"], "expected <log> <command...>"),
    ]:
        res = launch("run_local.sh", args, tmp_path)
        assert res.returncode == 1 and message in res.stderr, (args, res.stderr)
    assert not (tmp_path / "x.log").exists()


FAKE_SRUN = """#!/usr/bin/env bash
# Fake srun: record the argv, then run the command (the words after the options).
echo "srun $*" >> "$QUEUE_RECORD"
while [[ "$1" == -* ]]; do shift; done
exec "$@"
"""

FAKE_SBATCH = """#!/usr/bin/env bash
# Fake sbatch --wait: record the argv, run the script once per array task (or once).
echo "sbatch $*" >> "$QUEUE_RECORD"
array=
for a in "$@"; do case $a in --array=*) array=${a#--array=}; array=${array%%%*};; esac; done
script=${!#} rc=0
if [ -z "$array" ]; then bash "$script" || rc=1; exit $rc; fi
for i in $(seq "${array%-*}" "${array#*-}"); do SLURM_ARRAY_TASK_ID=$i bash "$script" || rc=1; done
exit $rc
"""


@pytest.fixture
def queue_env(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("srun", FAKE_SRUN), ("sbatch", FAKE_SBATCH)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    record = tmp_path / "queue.args"
    env = clean_env(PATH=f"{bin_dir}:{os.environ['PATH']}", QUEUE_RECORD=str(record))
    return env, record


def test_slurm_translates_kaldi_options_with_the_default_config(tmp_path, queue_env):
    env, record = queue_env
    started = time.monotonic()
    args = ["--gpu", 1, "--num-threads", 4, "--mem", "8G", "--time", "1:00:00",
            "JOB=1:3", "log/s.JOB.log", "echo hi JOB; test JOB != 2"]
    res = launch("run_slurm.sh", args, tmp_path, env)
    assert res.returncode == 1
    assert "run_slurm.sh: 1/3 jobs failed; see log/s.2.log" in res.stderr
    calls = sorted(record.read_text().splitlines())
    assert calls == [f"srun --export=ALL --ntasks=1 --gres=gpu:1 --cpus-per-task=4 "
                     f"--mem-per-cpu=8G --time=1:00:00 --job-name=s.{j} bash -o pipefail -c "
                     f"echo hi {j}; test {j} != 2" for j in (1, 2, 3)]
    log = (tmp_path / "log/s.3.log").read_text().splitlines()
    assert log[0] == "# echo hi 3; test 3 != 2" and "hi 3" in log
    accounting(log[-2], 4, time.monotonic() - started)
    assert log[-1].startswith("# Ended (code 0)")
    # Without options: the defaults gpu=0, and nothing else, are requested.
    record.unlink()
    assert launch("run_slurm.sh", ["one.log", "true"], tmp_path, env).returncode == 0
    assert record.read_text() == ("srun --export=ALL --ntasks=1 --job-name=one "
                                  "bash -o pipefail -c true\n")


KALDI_CONF = """# a Kaldi conf/slurm.conf
command sbatch --export=PATH --ntasks-per-node=1
option time=* --time $0
option mem=* --mem-per-cpu $0
option mem=0          # Do not add anything
option num_threads=* --cpus-per-task $0 --ntasks-per-node=1
option num_threads=1 --cpus-per-task 1 --ntasks-per-node=1
default gpu=0
option gpu=0 -p shared
option gpu=* -p gpu --gres=gpu:$0 --time 4:0:0
"""


def test_slurm_kaldi_config_submits_one_array_job(tmp_path, queue_env):
    env, record = queue_env
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf/slurm.conf").write_text(KALDI_CONF)
    (tmp_path / "exp/log").mkdir(parents=True)
    (tmp_path / "exp/log/y.3.log").write_text("# Ended (code 0) stale log of an old run\n")
    res = launch("run_slurm.sh", ["--mem", "2G", "--max-jobs-run", 2, "JOB=1:3",
                                  "exp/log/y.JOB.log", "echo", "JOB", "|", "tr", "1", "X"],
                 tmp_path, env)
    assert res.returncode == 0, res.stderr
    script = tmp_path / "exp/q/y.sh"
    assert record.read_text().splitlines() == [
        "sbatch --export=PATH --ntasks-per-node=1 --mem-per-cpu 2G -p shared --wait "
        f"--array=1-3%2 --job-name=y --open-mode=append --output=exp/q/y.log "
        f"--error=exp/q/y.log {script}"]
    for j, out in ((1, "X"), (2, "2"), (3, "3")):
        log = (tmp_path / f"exp/log/y.{j}.log").read_text().splitlines()
        assert log[0] == f"# echo {j} | tr 1 X" and log[3] == out
        assert log[-1].startswith("# Ended (code 0)")
    # A task that fails, or never writes its log, counts as failed.
    record.unlink()
    res = launch("run_slurm.sh", ["--gpu", 1, "JOB=1:2", "exp/log/z.JOB.log", "test JOB = 1"],
                 tmp_path, env)
    assert res.returncode == 1 and "1/2 jobs failed; see exp/log/z.2.log" in res.stderr
    assert " -p gpu --gres=gpu:1 --time 4:0:0 --wait --array=1-2 " in record.read_text()


@pytest.mark.parametrize("conf, args, message", [
    (None, ["--config", "nope.conf"], "cannot read config nope.conf"),
    (KALDI_CONF, ["--config", "c.conf", "--gpus", "1"],
     "option --gpus 1 is not described in c.conf"),
    ("option gpu=* --gres=gpu:$0\n", ["--config", "c.conf"], "c.conf: no 'command ...' line"),
    ("command srun\nqueue all.q\n", ["--config", "c.conf"], "c.conf:2: cannot parse 'queue all.q'"),
])
def test_slurm_bad_config_or_option_fails_before_submitting(tmp_path, queue_env, conf, args,
                                                            message):
    env, record = queue_env
    if conf is not None:
        (tmp_path / "c.conf").write_text(conf)
    res = launch("run_slurm.sh", [*args, "x.log", "true"], tmp_path, env)
    assert res.returncode == 1 and message in res.stderr, res.stderr
    assert not record.exists() and not (tmp_path / "x.log").exists()


# ----------------------------------------------------------------- interruption
# Each job records its shell's pid, then waits: the jobs run in sessions of their own, so a
# Ctrl-C (SIGINT to the terminal's process group) or a scancel/kill (SIGTERM to the
# launcher) reaches only the launcher, which must stop them, not leave them running.
WAIT_JOB = "echo $$ > pid.JOB; sleep 1000"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:                  # a zombie is not running
        return stat.read().rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.parametrize("script", ["run_local.sh", "run_slurm.sh"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_launcher_stops_its_jobs(tmp_path, queue_env, script, sig):
    env, _ = queue_env                                       # run_slurm.sh: the fake srun
    args = ["--max-jobs-run", 2, "JOB=1:3", "log/w.JOB.log", WAIT_JOB]
    with spawn([str(LAUNCHERS / script), *map(str, args)], cwd=tmp_path, env=env,
               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) as proc:
        pid_files = [tmp_path / f"pid.{j}" for j in (1, 2)]
        wait_for(lambda: all(p.is_file() and p.read_text().strip() for p in pid_files), proc,
                 "both jobs to start", timeout=60)
        jobs = descendants(proc.pid)                         # job shells, sleeps (srun)
        assert {int(p.read_text()) for p in pid_files} <= set(jobs)
        os.kill(proc.pid, sig)                               # the launcher alone
        proc.wait(timeout=30)
        assert proc.returncode == 128 + sig, proc.stderr.read()
        deadline = time.monotonic() + 10
        while any(map(_alive, jobs)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [pid for pid in jobs if _alive(pid)], "jobs outlived their launcher"
    for j in (1, 2):
        log = (tmp_path / f"log/w.{j}.log").read_text().splitlines()
        assert log[-1].startswith(f"# Ended (code {128 + sig}) at "), log
    assert not (tmp_path / "log/w.3.log").exists() and not (tmp_path / "pid.3").exists()
