#!/usr/bin/env python3
"""Shared engine of utils/run_local.sh and utils/run_slurm.sh (Kaldi run.pl convention).

    launch.py {local|slurm} [options] [JOB=1:N] <log> <command...>

Every job gets the literal variable name (`JOB`) replaced by its number in the log name and
in the command, runs through `bash -o pipefail -c`, and writes one log that starts with the
command line and ends with the exit status and elapsed time. Only the standard library is
used so the launcher works with any python3, on a login node as well as here.

Command words: a single word is taken as a shell command line verbatim (so
`run_local.sh x.log "a | b"` pipes); several words are joined with spaces, quoting those
that contain whitespace (so Kaldi's escaped `\\|` pipes work too).
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

PROG = {"local": "run_local.sh", "slurm": "run_slurm.sh"}
# Resource options that run_local.sh accepts and ignores, so one cmd.sh line can switch
# between local and Slurm by changing only the script name (as Kaldi's run.pl does).
SLURM_RESOURCE_OPTS = {"partition", "mem", "gpus", "gpu", "time", "cpus-per-task",
                       "num-threads", "account", "qos", "constraint", "exclude", "nodelist"}
RANGE_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(\d+)(?::(\d+))?$")


class UsageError(Exception):
    """Bad command line for the launcher itself."""


@dataclass
class Request:
    """What to run: the parsed launcher command line."""

    max_jobs: int
    srun_opts: list[str]
    var: str | None
    first: int
    last: int
    log: str
    command: str


def join_command(words: list[str]) -> str:
    """The shell command line for the command words (see the module docstring)."""
    if len(words) == 1:
        return words[0]
    return " ".join(shlex.quote(w) if (not w or re.search(r"\s", w)) else w for w in words)


def parse_args(mode: str, args: list[str]) -> Request:
    """Parse `[--opt value|--opt=value]... [VAR=a:b] <log> <command...>`."""
    max_jobs = 0
    srun_opts: list[str] = []
    while args and args[0].startswith("--"):
        opt = args.pop(0)[2:]
        if "=" in opt:
            name, value = opt.split("=", 1)
        else:
            if not args:
                raise UsageError(f"option --{opt} needs a value")
            name, value = opt, args.pop(0)
        if name == "max-jobs-run":
            if not value.isdigit() or int(value) < 1:
                raise UsageError(f"--max-jobs-run expects a positive integer, got '{value}'")
            max_jobs = int(value)
        elif mode == "slurm":
            srun_opts.append(f"--{name}={value}")
        elif name not in SLURM_RESOURCE_OPTS:
            raise UsageError(f"unknown option --{name}")
    var, first, last = None, 1, 1
    if args and (match := RANGE_RE.match(args[0])):
        args.pop(0)
        var, first = match.group(1), int(match.group(2))
        last = int(match.group(3)) if match.group(3) is not None else first
        if first > last:
            raise UsageError(f"empty job range {var}={first}:{last}")
    if len(args) < 2:
        raise UsageError("expected <log> <command...>")
    if last > first and var not in args[0]:
        raise UsageError(f"{last - first + 1} jobs would share one log: put {var} in '{args[0]}'")
    return Request(max_jobs, srun_opts, var, first, last, args[0], join_command(args[1:]))


@dataclass
class Job:
    """One running job and where its output goes."""

    number: int
    log: Path
    command: str
    start: float


def _wrapper(mode: str, req: Request, log: Path) -> list[str]:
    """The argv prefix that places one job: nothing locally, `srun ...` on Slurm."""
    if mode == "local":
        return []
    name = log.name[:-4] if log.name.endswith(".log") else log.name
    return ["srun", f"--job-name={name}", "--ntasks=1", *req.srun_opts]


def _subst(req: Request, text: str, job: int) -> str:
    return text.replace(req.var, str(job)) if req.var else text


def _start(mode: str, req: Request, job: int) -> tuple[subprocess.Popen, Job]:
    log = Path(_subst(req, req.log, job))
    command = _subst(req, req.command, job)
    log.parent.mkdir(parents=True, exist_ok=True)
    wrapper = _wrapper(mode, req, log)
    argv = [*wrapper, "bash", "-o", "pipefail", "-c", command]
    with open(log, "w") as out:
        out.write(f"# {command}\n")
        if wrapper:
            out.write(f"# via: {shlex.join(wrapper)}\n")
        out.write(f"# Started at {time.ctime()}\n")
        out.flush()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    return proc, Job(job, log, command, time.monotonic())


def _finish(job: Job, code: int) -> None:
    elapsed = round(time.monotonic() - job.start)
    with open(job.log, "a") as out:
        out.write(f"# Accounting: time={elapsed} threads=1\n")
        out.write(f"# Ended (code {code}) at {time.ctime()}, elapsed time {elapsed} seconds\n")


def run(mode: str, req: Request) -> list[Job]:
    """Run all jobs (at most req.max_jobs at once, 0 = all); return the failed ones."""
    pending = list(range(req.first, req.last + 1))
    limit = req.max_jobs or len(pending)
    running: dict[int, tuple[subprocess.Popen, Job]] = {}
    failed: list[Job] = []

    def stop(signum: int, _frame: object) -> None:
        for proc, job in running.values():
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            _finish(job, 128 + signum)
        sys.exit(128 + signum)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    while pending or running:
        while pending and len(running) < limit:
            proc, job = _start(mode, req, pending.pop(0))
            running[proc.pid] = (proc, job)
        pid, status = os.wait()
        if pid not in running:
            continue
        proc, job = running.pop(pid)
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        _finish(job, code)
        if code != 0:
            failed.append(job)
    return sorted(failed, key=lambda j: j.number)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in PROG:
        print("usage: launch.py {local|slurm} [options] [JOB=1:N] <log> <command...>",
              file=sys.stderr)
        return 1
    mode, prog = argv[0], PROG[argv[0]]
    try:
        req = parse_args(mode, argv[1:])
    except UsageError as err:
        print(f"{prog}: {err}\nusage: {prog} [options] [JOB=1:N] <log> <command...>",
              file=sys.stderr)
        return 1
    failed = run(mode, req)
    if failed:
        total = req.last - req.first + 1
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        print(f"{prog}: {len(failed)}/{total} jobs failed; see {failed[0].log}{more}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
