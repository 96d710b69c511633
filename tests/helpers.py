"""Helpers for tests that start processes (no tests here).

A test that starts a process must not leave it running when the test ends, fails or times
out: `run` and `spawn` start the command in its own session (process group) and SIGKILL the
whole group on the way out, so the grandchildren of a shell script, the jobs of
utils/parallel/launch.py (in sessions of their own) and a torchrun worker go with it; as a
subreaper (Linux) the tests also find the jobs of a launcher that died without stopping
them. Inner time limits are below the per-test limit (conftest.DEFAULT_TIMEOUT_S), so a
hung command fails here with its output instead of being cut off by pytest-timeout.

`clean_env` is the environment a test's commands get: the caller's, without the settings
that would send the recipe's jobs elsewhere (a user's exported Slurm `train_cmd`) or turn
the test into something else.

`skip_unless_ci` turns an environment-dependent skip into a failure under CI=true (.ci/run),
where the environment is supposed to have everything.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PER_TEST_S = 300              # conftest.DEFAULT_TIMEOUT_S: pytest-timeout's limit per test
INNER_S = 240                 # default limit of one command inside a test (< PER_TEST_S)
KILL_WAIT_S = 30

# cmd.sh's launchers and queue settings: a user who exported Slurm ones must not have the
# tests submit cluster jobs; the recipes' defaults (cmd.sh) apply instead.
SCRUBBED = ("train_cmd", "extract_cmd", "decode_cmd", "cuda_cmd", "cpu_cmd", "eval_cmd",
            "SLURM_JOB_ID", "SLURM_ARRAY_TASK_ID", "SBATCH_PARTITION", "SLURM_CONF",
            "WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def skip_unless_ci(reason: str) -> None:
    """Skip, except under CI=true where a missing prerequisite is a failure."""
    if in_ci():
        pytest.fail(f"CI=true: {reason}", pytrace=False)
    pytest.skip(reason)


def clean_env(extra: dict[str, str] | None = None, *, drop: tuple[str, ...] = (),
              **more: str) -> dict[str, str]:
    """os.environ without SCRUBBED, with the repository importable, path.sh's interpreter
    the tests' own and one OMP thread (unless set), without the names in `drop`, plus
    `extra` and `more`."""
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    # FHVAE_PYTHON: path.sh takes the interpreter running the tests, not a .venv in the tree.
    env.update(PYTHONPATH=str(ROOT), OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "1"),
               FHVAE_PYTHON=sys.executable)
    for name in drop:
        env.pop(name, None)
    env.update(extra or {})
    env.update(more)
    return env


def python() -> str:
    """The interpreter running the tests (not a .venv that must be in the tree)."""
    return sys.executable


def python_bin(folder: Path) -> Path:
    """`folder` with `python` and `python3` that run the tests' interpreter (wrappers, not
    links: a link to a venv's python would lose the venv), for scripts that call `python`
    from PATH as they do after sourcing path.sh."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("python", "python3"):
        (folder / name).write_text(f"#!/bin/sh\nexec '{sys.executable}' \"$@\"\n")
        (folder / name).chmod(0o755)
    return folder


# ----------------------------------------------------------------- process trees
def _become_subreaper() -> bool:
    """Have orphans of our children reparented to this process instead of init (Linux
    PR_SET_CHILD_SUBREAPER): a job whose launcher died is still found and killed."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(36, 1, 0, 0, 0) == 0            # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


SUBREAPER = _become_subreaper()
_ACTIVE: set[int] = set()     # pids of the spawn() processes not yet cleaned up


def _stat(pid: int | str) -> list[str] | None:
    """/proc/<pid>/stat from the state on: [state, ppid, pgrp, session, ...], None if gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _processes() -> dict[int, list[str]]:
    """Every live (non-zombie) process: pid -> its stat fields from the state on."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(entry.name)) and fields[0] != "Z":
            found[int(entry.name)] = fields
    return found


def descendants(pid: int) -> list[int]:
    """All live descendants of `pid`, whatever session they run in."""
    children: dict[int, list[int]] = {}
    for child, fields in _processes().items():
        children.setdefault(int(fields[1]), []).append(child)
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _now_ticks() -> int:
    """Now, in /proc/<pid>/stat's starttime unit (clock ticks since boot)."""
    return int(time.clock_gettime(time.CLOCK_BOOTTIME) * os.sysconf("SC_CLK_TCK"))


def _kill_tree(proc: subprocess.Popen, since: int) -> None:
    """SIGKILL every process in the session of `proc`, in the sessions of its descendants
    (utils/parallel/launch.py starts each job in a session of its own) and, as a subreaper, every
    orphan reparented to us since tick `since` (a launcher that died leaving its jobs);
    then reap `proc` and those orphans."""
    me, orphans = os.getpid(), set()
    for _ in range(2):                     # again for what was forked meanwhile
        procs = _processes()
        new = {pid for pid, f in procs.items() if int(f[1]) == me and int(f[19]) >= since
               and pid != proc.pid and pid not in _ACTIVE}
        orphans |= new
        roots = [proc.pid, *new]
        tree = set(roots) | {d for r in roots for d in descendants(r)}
        sessions = {proc.pid} | {int(procs[p][3]) for p in tree if p in procs}
        for pid, fields in procs.items():
            if int(fields[3]) in sessions - {os.getsid(0)} or pid in tree - {me}:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
    kill_group(proc)
    for pid in orphans:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


def kill_group(proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    """Signal the process group of `proc` (started with start_new_session) and reap it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=KILL_WAIT_S)


@contextlib.contextmanager
def spawn(cmd, *, cwd=None, env=None, **kwargs):
    """Popen in a session of its own; on leaving (normally, by an exception or by
    pytest-timeout's exception) everything it started is SIGKILLed and reaped."""
    since = _now_ticks() - 1
    proc = subprocess.Popen(cmd, cwd=cwd, env=clean_env() if env is None else env,
                            start_new_session=True, **kwargs)
    proc.started_tick = since
    _ACTIVE.add(proc.pid)
    try:
        yield proc
    finally:
        _ACTIVE.discard(proc.pid)
        _kill_tree(proc, since)


def run(cmd, *, timeout: float = INNER_S, cwd=None, env=None, input=None,
        capture_output: bool = True, text: bool = True, check: bool = False,
        **kwargs) -> subprocess.CompletedProcess:
    """subprocess.run in a session of its own: on timeout, or if the test is interrupted
    while it runs, the whole process tree is killed (subprocess.run kills only the child).
    The default `timeout` is below the per-test limit: the command's own limit comes first
    and the failure shows its output."""
    if capture_output:
        kwargs.setdefault("stdout", subprocess.PIPE)
        kwargs.setdefault("stderr", subprocess.PIPE)
    kwargs["stdin"] = subprocess.PIPE if input is not None else kwargs.get("stdin",
                                                                           subprocess.DEVNULL)
    with spawn(cmd, cwd=cwd, env=env, text=text, **kwargs) as proc:
        try:
            out, err = proc.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_tree(proc, proc.started_tick)     # grandchildren hold the pipes open too
            out, err = proc.communicate()
            raise subprocess.TimeoutExpired(proc.args, timeout, out, err) from None
    result = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    if check:
        result.check_returncode()
    return result


def wait_for(predicate, proc: subprocess.Popen, what: str, timeout: float = 120) -> None:
    """Poll `predicate` until true; fail if `proc` ends first or `timeout` passes (the
    caller's `spawn` then kills it)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            pytest.fail(f"process ended (status {proc.returncode}) before {what}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


def kill_leftovers() -> list[str]:
    """SIGKILL and reap every process a test left running in a session of its own (as a
    subreaper, also the orphans reparented to us); their command lines. For the end of the
    session: by then nothing any test started should still run."""
    mine, left = os.getsid(0), []
    for pid in descendants(os.getpid()):
        fields = _stat(pid)
        if fields is None or int(fields[3]) == mine:
            continue
        try:
            left.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
                        .decode(errors="replace").strip())
            os.kill(pid, signal.SIGKILL)
        except (OSError, ProcessLookupError):
            continue
    for pid in list(descendants(os.getpid())) + [p for p in _children_zombies()]:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)
    return left


def _children_zombies() -> list[int]:
    me, out = os.getpid(), []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (f := _stat(entry.name)) and f[0] == "Z" and int(f[1]) == me:
            out.append(int(entry.name))
    return out
