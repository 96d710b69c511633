"""utils/run_local.sh and utils/run_slurm.sh (the latter with a fake srun on PATH)."""

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def launch(script, args, cwd, env=None):
    return subprocess.run([str(ROOT / "utils" / script), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


def test_local_array_jobs_substitute_job_and_log(tmp_path):
    res = launch("run_local.sh", ["JOB=1:4", "log/sub/foo.JOB.log",
                                  "echo job JOB | tr a-z A-Z > out.JOB.txt"], tmp_path)
    assert res.returncode == 0, res.stderr
    for j in range(1, 5):
        assert (tmp_path / f"out.{j}.txt").read_text() == f"JOB {j}\n"
        log = (tmp_path / f"log/sub/foo.{j}.log").read_text().splitlines()
        assert log[0] == f"# echo job {j} | tr a-z A-Z > out.{j}.txt"
        assert log[-1].startswith("# Ended (code 0) at ") and "elapsed time" in log[-1]


def test_local_jobs_run_in_parallel_and_respect_max_jobs(tmp_path):
    # Each job records its start and end; with 3 slots all three overlap, with 1 none do.
    cmd = ["python3", "-c", "import time,sys; a=time.time(); time.sleep(0.4); "
           "open('t.JOB','w').write(f'{a} {time.time()}')"]
    spans = {}
    for opts in ([], ["--max-jobs-run", "1"]):
        res = launch("run_local.sh", [*opts, "JOB=1:3", "log/t.JOB.log", *cmd], tmp_path)
        assert res.returncode == 0, res.stderr
        spans[len(opts)] = sorted(tuple(map(float, (tmp_path / f"t.{j}").read_text().split()))
                                  for j in (1, 2, 3))
    parallel, serial = spans[0], spans[2]
    assert parallel[2][0] < parallel[0][1]  # the last started before the first ended
    assert all(serial[i + 1][0] >= serial[i][1] for i in range(2))


def test_local_failure_is_reported_with_its_log(tmp_path):
    res = launch("run_local.sh", ["JOB=1:4", "exp/x/log/foo.JOB.log", "test", "JOB", "!=", "3"],
                 tmp_path)
    assert res.returncode == 1
    assert "run_local.sh: 1/4 jobs failed; see exp/x/log/foo.3.log" in res.stderr
    assert "# Ended (code 1)" in (tmp_path / "exp/x/log/foo.3.log").read_text()
    assert "# Ended (code 0)" in (tmp_path / "exp/x/log/foo.2.log").read_text()


def test_local_single_job_and_quoting(tmp_path):
    res = launch("run_local.sh", ["one.log", "python3", "-c", "print('a b'); print(2)"], tmp_path)
    assert res.returncode == 0, res.stderr
    log = (tmp_path / "one.log").read_text().splitlines()
    assert log[2:4] == ["a b", "2"]
    res = launch("run_local.sh", ["--bogus", "1", "x.log", "true"], tmp_path)
    assert res.returncode == 1 and "unknown option --bogus" in res.stderr
    res = launch("run_local.sh", ["JOB=1:2", "x.log", "true"], tmp_path)
    assert res.returncode == 1 and "2 jobs would share one log" in res.stderr
    assert not (tmp_path / "x.log").exists()


FAKE_SRUN = """#!/usr/bin/env bash
# Fake srun: record the options, then run the command (the words after the options).
echo "$*" >> "$SRUN_RECORD"
while [[ "$1" == --* ]]; do shift; done
exec "$@"
"""


def test_slurm_passes_options_to_srun_and_reports_failure(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text(FAKE_SRUN)
    (bin_dir / "srun").chmod(0o755)
    record = tmp_path / "srun.args"
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "SRUN_RECORD": str(record)}
    args = ["--partition", "gpu", "--mem", "4G", "--gpus", "1", "--time=1:00:00",
            "--cpus-per-task", "2", "JOB=1:3", "log/s.JOB.log", "echo hi JOB; test JOB != 2"]
    res = launch("run_slurm.sh", args, tmp_path, env)
    assert res.returncode == 1
    assert "run_slurm.sh: 1/3 jobs failed; see log/s.2.log" in res.stderr
    calls = sorted(record.read_text().splitlines())
    assert len(calls) == 3
    for j, call in enumerate(calls, 1):
        assert call.startswith(f"--job-name=s.{j} --ntasks=1 --partition=gpu --mem=4G --gpus=1 "
                               "--time=1:00:00 --cpus-per-task=2 bash -o pipefail -c ")
    log = (tmp_path / "log/s.3.log").read_text().splitlines()
    assert log[0] == "# echo hi 3; test 3 != 2"
    assert "hi 3" in log and log[-1].startswith("# Ended (code 0)")
