"""The one device resolver (fhvae/device.py) of training, extraction and evaluation."""

import pytest
import torch

from fhvae.device import resolve_device
from fhvae.errors import FhvaeError


@pytest.mark.parametrize("name", ["cuda:x", "gpu", "cuda:", "cuda:-1", "mps", " cpu", "CPU"])
def test_device_names_other_than_the_four_are_one_clear_error(name):
    with pytest.raises(FhvaeError, match=f"unknown device '{name}' "
                                         r"\(auto, cpu, cuda or cuda:N\)"):
        resolve_device(name)


def test_device_resolution():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        for name in ("cuda", "cuda:0"):
            with pytest.raises(FhvaeError, match=f"device '{name}' requested but torch sees "
                                                 "no CUDA device"):
                resolve_device(name)
    else:
        count = torch.cuda.device_count()
        assert resolve_device(f"cuda:{count - 1}") == torch.device("cuda", count - 1)
        with pytest.raises(FhvaeError, match=f"torch sees {count} CUDA device"):
            resolve_device(f"cuda:{count}")
