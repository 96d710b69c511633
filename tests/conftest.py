"""Shared test set-up: the repository root importable, a per-test timeout, and no global
state (torch threads, RNG streams, cwd, environment) leaking from one test into the next."""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("PYTHONPATH", str(ROOT))

# Per-test limit (pytest-timeout) unless the command line, an ini file or PYTEST_TIMEOUT
# sets one: a hung test fails alone instead of stalling CI until its job limit. The
# slowest tests take about a minute on 2 idle cores; a test that needs more says so with
# @pytest.mark.timeout(...).
DEFAULT_TIMEOUT_S = 300


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.hasplugin("timeout"):
        raise pytest.UsageError("the tests need pytest-timeout: "
                                ".venv/bin/pip install -r requirements-test.txt")
    # Every test starts from one torch thread: the models here are tiny, so one thread is
    # the fastest, and on a loaded 2-core machine it is several times faster than two
    # threads spinning against each other (test_train.py: 237 s -> 44 s). A test may
    # change it; the fixture below puts it back.
    torch.set_num_threads(1)


def _timeout_is_configured(config: pytest.Config) -> bool:
    return (config.getoption("timeout") is not None or bool(config.getini("timeout"))
            or "PYTEST_TIMEOUT" in os.environ)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _timeout_is_configured(config):
        return
    for item in items:
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(DEFAULT_TIMEOUT_S))


class GlobalState:
    """Process-wide settings a test may change: captured before it, restored after it."""

    def __init__(self) -> None:
        self.threads = torch.get_num_threads()
        self.dtype = torch.get_default_dtype()
        self.grad = torch.is_grad_enabled()
        self.deterministic = torch.are_deterministic_algorithms_enabled()
        self.torch_rng = torch.get_rng_state()
        self.numpy_rng = np.random.get_state()
        self.python_rng = random.getstate()
        self.cwd = os.getcwd()
        self.environ = dict(os.environ)

    def restore(self) -> None:
        torch.set_num_threads(self.threads)
        torch.set_default_dtype(self.dtype)
        torch.set_grad_enabled(self.grad)
        torch.use_deterministic_algorithms(self.deterministic)
        torch.set_rng_state(self.torch_rng)
        np.random.set_state(self.numpy_rng)
        random.setstate(self.python_rng)
        os.chdir(self.cwd)
        if dict(os.environ) != self.environ:
            os.environ.clear()
            os.environ.update(self.environ)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A safety net behind tests/helpers.py: whatever a test started in a session of its own
    and left running (a training run, a launcher's job) is killed now, and named."""
    from helpers import kill_leftovers
    left = kill_leftovers()
    if left:
        print(f"\nconftest: killed {len(left)} process(es) the tests left running: "
              + "; ".join(cmd[:120] for cmd in left), file=sys.stderr)


@pytest.fixture(autouse=True)
def _restore_global_state():
    state = GlobalState()
    yield
    state.restore()
