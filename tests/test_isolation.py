"""The autouse fixture of conftest.py: whatever global state a test changes is back to what
it was before the test (checked directly, not through test order)."""

import os
import random

import numpy as np
import torch

from conftest import GlobalState


def test_global_state_is_restored(tmp_path):
    before = GlobalState()
    draws = (torch.rand(3), np.random.rand(3), random.random())
    torch.set_rng_state(before.torch_rng)
    np.random.set_state(before.numpy_rng)
    random.setstate(before.python_rng)

    torch.set_num_threads(1 if before.threads != 1 else 2)
    torch.set_default_dtype(torch.float64)
    torch.set_grad_enabled(False)
    torch.manual_seed(5)
    np.random.seed(5)
    random.seed(5)
    os.chdir(tmp_path)
    os.environ["FHVAE_TEST_LEAK"] = "1"
    before.restore()

    assert torch.get_num_threads() == before.threads
    assert torch.get_default_dtype() == torch.float32 and torch.is_grad_enabled()
    assert os.getcwd() == before.cwd and "FHVAE_TEST_LEAK" not in os.environ
    assert torch.equal(torch.rand(3), draws[0])
    assert np.array_equal(np.random.rand(3), draws[1]) and random.random() == draws[2]


def test_every_test_has_a_timeout(request):
    """conftest's default marker, or a limit set on the command line / ini / environment."""
    marker = request.node.get_closest_marker("timeout")
    config = request.config
    limit = (marker.args[0] if marker else config.getoption("timeout")
             or config.getini("timeout") or os.environ.get("PYTEST_TIMEOUT"))
    assert float(limit) > 0
