#!/usr/bin/env python3
"""Shared engine of utils/parallel/run_local.sh and run_slurm.sh (Kaldi's run.pl/slurm.pl).

    launch.py {local|slurm} [options] [JOB=1:N | JOB=n] <log> <command...>

Options are Kaldi's: `--max-jobs-run N` (also `-tc N`) limits the jobs running at once;
every other `--name value` is a resource request (`--gpu 1`, `--mem 8G`, `--num-threads 4`,
`--time 4:00:00`, `--config conf/slurm.conf`, ...). Locally they are accepted and ignored as
run.pl does (`--gpu N` only sets the default number of concurrent jobs, `--num-threads` the
accounting line); on Slurm they are translated through a Kaldi queue config (queue_conf.py).
Options may also follow `JOB=1:N`, as Kaldi allows.

Every job gets the job variable (`JOB`) replaced by its number in the log name and in the
command and runs through `bash -o pipefail -c`. Its log starts with `# <command>` and
`# Started at <date>` and ends with `# Accounting: time=<s> threads=<n>` and
`# Ended (code <n>) at <date>, elapsed time <s> seconds`, as Kaldi's logs do.

Command words are joined as run.pl joins them: a word without whitespace as is, others in
double quotes (single quotes if they contain a double quote), so Kaldi's escaped `\\|`
pipes work. A single word is taken as a shell command line verbatim (`x.log "a | b"`).

Only the standard library is used, so any python3 on a login node can run it.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from queue_conf import DEFAULT_SLURM_CONF, ConfError, QueueConf, parse_conf

PROG = {"local": "run_local.sh", "slurm": "run_slurm.sh"}
RANGE_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(\d+)(?::(\d+))?$")
SLURM_CONF = "conf/slurm.conf"  # read when --config is not given and this file exists
USAGE = "[options] [JOB=1:N] <log> <command...>"


class UsageError(Exception):
    """Bad command line for the launcher itself."""


@dataclass
class Request:
    """What to run: the parsed launcher command line."""

    options: dict[str, str] = field(default_factory=dict)  # --num-threads 4 -> num_threads
    raw_opts: list[str] = field(default_factory=list)      # -x value: for the scheduler as is
    max_jobs: int = 0                                      # 0: the launcher's default
    var: str | None = None
    first: int = 1
    last: int = 1
    log: str = ""
    command: str = ""

    @property
    def threads(self) -> str:
        return self.options.get("num_threads", "1")


def join_command(words: list[str]) -> str:
    """The shell command line for the command words (see the module docstring)."""
    if len(words) == 1:
        return words[0]
    return " ".join(w if re.fullmatch(r"\S+", w) else (f"'{w}'" if '"' in w else f'"{w}"')
                    for w in words)


def _take_options(args: list[str], req: Request) -> None:
    """Consume leading options into `req` (Kaldi: each option takes one value)."""
    while len(args) >= 2 and args[0].startswith("-"):
        switch = args.pop(0)
        if switch == "-V":
            req.raw_opts.append(switch)
            continue
        if switch.startswith("--") and "=" in switch:
            switch, value = switch.split("=", 1)
        else:
            value = args.pop(0)
        if switch in ("--max-jobs-run", "-tc"):
            if not value.isdigit() or int(value) < 1:
                raise UsageError(f"{switch} expects a positive integer, got '{value}'")
            req.max_jobs = min(req.max_jobs or int(value), int(value))
        elif switch.startswith("--"):
            req.options[switch[2:].replace("-", "_")] = value
        elif switch == "-pe" and args:  # -pe smp 4: two values
            req.raw_opts += [switch, value, args.pop(0)]
        else:
            req.raw_opts += [switch, value]


def parse_args(args: list[str]) -> Request:
    """Parse `[options] [VAR=a:b|VAR=a] [options] <log> <command...>`."""
    args, req = list(args), Request()
    _take_options(args, req)
    if args and (match := RANGE_RE.match(args[0])):
        args.pop(0)
        req.var, req.first = match.group(1), int(match.group(2))
        req.last = int(match.group(3)) if match.group(3) is not None else req.first
        if not 0 < req.first <= req.last:
            raise UsageError(f"invalid job range {match.group(0)}")
        _take_options(args, req)
    if len(args) < 2:
        raise UsageError("expected <log> <command...>")
    if req.last > req.first and req.var not in args[0]:
        raise UsageError(f"{req.last - req.first + 1} jobs would share one log: "
                         f"put {req.var} in '{args[0]}'")
    req.log, req.command = args[0], join_command(args[1:])
    return req


def subst(req: Request, text: str, job: int) -> str:
    return text.replace(req.var, str(job)) if req.var else text


@dataclass
class Job:
    """One running job and where its output goes."""

    number: int
    log: Path
    command: str
    threads: str
    start: float = field(default_factory=time.monotonic)


def start_job(req: Request, number: int, wrapper: list[str]) -> tuple[subprocess.Popen, Job]:
    """Write the log header and start job `number` (through `wrapper`, e.g. srun)."""
    job = Job(number, Path(subst(req, req.log, number)), subst(req, req.command, number),
              req.threads)
    job.log.parent.mkdir(parents=True, exist_ok=True)
    with open(job.log, "w") as out:
        out.write(f"# {job.command}\n# Started at {time.ctime()}\n")
        if wrapper:
            out.write(f"# via: {shlex.join(wrapper)}\n")
        out.write("#\n")
        out.flush()
        proc = subprocess.Popen([*wrapper, "bash", "-o", "pipefail", "-c", job.command],
                                stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    return proc, job


def finish_job(job: Job, code: int) -> None:
    elapsed = round(time.monotonic() - job.start)
    with open(job.log, "a") as out:
        out.write(f"# Accounting: time={elapsed} threads={job.threads}\n")
        out.write(f"# Ended (code {code}) at {time.ctime()}, elapsed time {elapsed} seconds\n")


def run_jobs(req: Request, limit: int, wrapper: list[str]) -> list[Job]:
    """Run all jobs, at most `limit` at once, each through `wrapper` (plus its
    --job-name) unless that is empty; return the failed ones."""
    pending = list(range(req.first, req.last + 1))
    running: dict[int, tuple[subprocess.Popen, Job]] = {}
    failed: list[Job] = []

    def stop(signum: int, _frame: object) -> None:
        for proc, job in running.values():
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            finish_job(job, 128 + signum)
        sys.exit(128 + signum)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    while pending or running:
        while pending and len(running) < limit:
            number = pending.pop(0)
            named = [*wrapper, f"--job-name={_job_name(req, number)}"] if wrapper else []
            proc, job = start_job(req, number, named)
            running[proc.pid] = (proc, job)
        pid, status = os.wait()
        if pid not in running:
            continue
        proc, job = running.pop(pid)
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        finish_job(job, code)
        if code != 0:
            failed.append(job)
    return sorted(failed, key=lambda j: j.number)


def _job_name(req: Request, number: int) -> str:
    """Slurm job name of a job: its log's base name."""
    return Path(subst(req, req.log, number)).name.removesuffix(".log")


def local_limit(req: Request) -> int:
    """run.pl's default concurrency: one job per GPU with --gpu, else one per CPU (all the
    jobs when there are fewer than 1.4 per CPU)."""
    if req.max_jobs:
        return req.max_jobs
    if req.options.get("gpu", "0") not in ("0", ""):
        try:
            listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True,
                                     timeout=30).stdout
        except (OSError, subprocess.TimeoutExpired):
            listing = ""
        return max(1, sum(1 for line in listing.splitlines() if line.startswith("GPU")))
    cpus, jobs = os.cpu_count() or 1, req.last - req.first + 1
    return jobs if cpus < jobs < 1.4 * cpus else cpus


def load_conf(req: Request) -> QueueConf:
    """--config FILE (must exist), else conf/slurm.conf if present, else the default."""
    path = req.options.pop("config", None)
    if path is None and Path(SLURM_CONF).is_file():
        path = SLURM_CONF
    if path is None:
        return parse_conf(DEFAULT_SLURM_CONF, "the default Slurm config")
    try:
        return parse_conf(Path(path).read_text(), path)
    except OSError as err:
        raise ConfError(f"cannot read config {path}: {err.strerror}") from None


def submit_array(req: Request, conf_args: list[str]) -> list[Job]:
    """Submit the jobs as one `sbatch --wait` array job; each task runs this script's `task`
    mode, which writes the log as run_jobs does. Logs must be on a shared file system."""
    log = Path(req.log)
    qdir = Path(re.sub(r"/log/q$", "/q", f"{log.parent}/q"))
    base = log.name.replace(f".{req.var}", "").replace(req.var, "") if req.var else log.name
    qdir.mkdir(parents=True, exist_ok=True)
    script = (qdir / re.sub(r"(\.[A-Za-z]{1,5})?$", ".sh", base, count=1)).resolve()
    task = ["python3", str(Path(__file__).resolve()), "task",
            req.threads, req.var or "-", str(req.first), req.log, req.command]
    script.write_text(f"#!/usr/bin/env bash\ncd {shlex.quote(os.getcwd())}\n"
                      "[ -f ./path.sh ] && . ./path.sh\n"
                      f"exec {shlex.join(task)}\n")
    array = []
    if req.var:
        array = [f"--array={req.first}-{req.last}" + (f"%{req.max_jobs}" if req.max_jobs else "")]
    qlog = qdir / (base if base.endswith(".log") else base + ".log")
    argv = [*conf_args, "--wait", *array, f"--job-name={base.removesuffix('.log')}",
            "--open-mode=append", f"--output={qlog}", f"--error={qlog}", str(script)]
    for number in range(req.first, req.last + 1):  # a stale log must not pass for new
        Path(subst(req, req.log, number)).unlink(missing_ok=True)
    with open(qlog, "a") as out:
        code = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out,
                              stderr=subprocess.STDOUT).returncode
    failed = []
    for number in range(req.first, req.last + 1):
        path = Path(subst(req, req.log, number))
        ended = [ln for ln in (path.read_text(errors="replace").splitlines()
                               if path.is_file() else []) if ln.startswith("# Ended (code ")]
        if not ended or not ended[-1].startswith("# Ended (code 0)"):
            failed.append(Job(number, path, "", req.threads))
    if code != 0 and not failed:
        raise UsageError(f"{argv[0]} failed with status {code}; see {qlog}")
    return failed


def run_task(argv: list[str]) -> int:
    """`launch.py task <threads> <var|-> <first> <log> <command>`: one array task."""
    threads, var, first, log, command = argv
    req = Request(options={"num_threads": threads}, var=None if var == "-" else var,
                  log=log, command=command)
    number = int(os.environ.get("SLURM_ARRAY_TASK_ID", first))
    proc, job = start_job(req, number, [])
    code = proc.wait()
    finish_job(job, code)
    return 0 if code == 0 else 1


def launch(mode: str, req: Request) -> list[Job]:
    """Run the request locally or on Slurm; return the failed jobs."""
    if mode == "local":
        return run_jobs(req, local_limit(req), [])
    conf = load_conf(req)
    conf_args = [*conf.command, *conf.translate(req.options), *req.raw_opts]
    if Path(conf.command[0]).name == "sbatch":
        return submit_array(req, conf_args)
    return run_jobs(req, req.max_jobs or req.last - req.first + 1, conf_args)


def main(argv: list[str]) -> int:
    if argv[:1] == ["task"] and len(argv) == 6:
        return run_task(argv[1:])
    if not argv or argv[0] not in PROG:
        print(f"usage: launch.py {{local|slurm}} {USAGE}", file=sys.stderr)
        return 1
    mode, prog = argv[0], PROG[argv[0]]
    try:
        req = parse_args(argv[1:])
        failed = launch(mode, req)
    except UsageError as err:
        print(f"{prog}: {err}\nusage: {prog} {USAGE}", file=sys.stderr)
        return 1
    except ConfError as err:
        print(f"{prog}: {err}", file=sys.stderr)
        return 1
    if failed:
        total = req.last - req.first + 1
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        print(f"{prog}: {len(failed)}/{total} jobs failed; see {failed[0].log}{more}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
