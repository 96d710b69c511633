"""bench/flops.py counts the FLOPs a hand count gives; bench/cpu_peak.py computes the peaks
the formula gives for fixed /proc/cpuinfo texts. No timing."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from torch import nn

BENCH = Path(__file__).resolve().parents[1] / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import cpu_peak  # noqa: E402
import flops  # noqa: E402


# ----------------------------------------------------------------------------- FLOP counts
def test_linear_forward_is_2_in_out_batch_and_backward_doubles_it():
    batch, d_in, d_out = 5, 7, 3
    lin = nn.Linear(d_in, d_out)
    x = torch.randn(batch, d_in, requires_grad=True)
    fwd = flops.count_flops(lambda: lin(x), lin)
    assert fwd.total == 2 * d_in * d_out * batch
    both = flops.count_flops(lambda: lin(x).sum().backward(), lin)
    # backward: grad of the input and grad of the weight, one product each
    assert both.total == 3 * 2 * d_in * d_out * batch
    assert both.by_module == {"Linear": both.total}


def lstm_forward(batch: int, steps: int, d_in: int, hidden: int) -> int:
    """Input projection and recurrence: one (d_in + hidden) x 4 hidden product per frame."""
    return 2 * batch * steps * 4 * hidden * (d_in + hidden)


@pytest.mark.parametrize("input_grad", [True, False])
def test_lstm_forward_and_backward_against_a_hand_count(input_grad):
    batch, steps, d_in, hidden = 4, 6, 5, 3
    lstm = nn.LSTM(d_in, hidden, batch_first=True)
    x = torch.randn(batch, steps, d_in, requires_grad=input_grad)
    fwd = lstm_forward(batch, steps, d_in, hidden)
    assert flops.count_flops(lambda: lstm(x)).total == fwd
    # backward: 2 x forward (weight grads + grads of the inputs of each product), less the
    # grad of the zero initial state and, when x needs none, of the data
    expected = 3 * fwd - 2 * batch * 4 * hidden * hidden
    if not input_grad:
        expected -= 2 * batch * steps * 4 * hidden * d_in
    assert flops.count_flops(lambda: lstm(x)[0].sum().backward()).total == expected


def test_products_are_attributed_to_their_module_forward_and_backward():
    net = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 2))
    w = torch.randn(2, 3, requires_grad=True)
    x = torch.randn(5, 4)

    def run():
        (net(x) @ w).sum().backward()          # a product outside every module

    got = flops.count_flops(run, net)
    assert got.by_module == {"0": 2 * 2 * 4 * 6 * 5,        # x needs no grad: 2 products
                             "2": 3 * 2 * 6 * 2 * 5,
                             flops.OUTSIDE: 3 * 2 * 2 * 3 * 5}
    assert got.total == sum(got.by_module.values())
    assert got.module_types == {"0": "Linear", "1": "Tanh", "2": "Linear"}


def test_fhvae_step_count_matches_the_hand_count(tmp_path):
    from bench_throughput import make_corpus

    index = make_corpus(tmp_path / "data", 6, 40, 10, seed=0)
    config = tmp_path / "tiny.yaml"
    config.write_text("model: {z1_dim: 3, z2_dim: 4, hidden: 5, num_layers: 1}\n"
                      "seq_batch_size: 3\nbatch_size: 7\nseg_shift: 8\nalpha: 10.0\n")
    got = flops.count_training_step(str(config), index)
    B, T, F, H, Z1, Z2, K = 7, index.seg_len, 10, 5, 3, 4, 3
    rec = 2 * B * 4 * H * H                        # the recurrence's first step: no grad
    expected = {
        "z2_encoder.lstm": 3 * lstm_forward(B, T, F, H) - rec - 2 * B * T * 4 * H * F,
        "z1_encoder.lstm": 3 * lstm_forward(B, T, F + Z2, H) - rec,
        "decoder_lstm": 3 * lstm_forward(B, T, Z1 + Z2, H) - rec,
        "z2_encoder.head.mean": 6 * B * H * Z2, "z2_encoder.head.logvar": 6 * B * H * Z2,
        "z1_encoder.head.mean": 6 * B * H * Z1, "z1_encoder.head.logvar": 6 * B * H * Z1,
        "decoder_head.mean": 6 * B * T * H * F, "decoder_head.logvar": 6 * B * T * H * F,
        flops.OUTSIDE: 6 * B * Z2 * K,            # the discriminative logits vs the table
    }
    assert got.by_module == expected
    assert got.total == sum(expected.values())
    assert got.of_type("LSTM") == sum(v for k, v in expected.items() if "lstm" in k)
    assert got.params == sum(p.numel() for p in flops.step_setup(str(config), index)[1]
                             .parameters())
    assert got.adam_elementwise >= 7 * got.params  # lerp, mul, addcmul, sqrt, div, add, addcdiv
    assert got.reset_per_step == pytest.approx(
        (2 * B * T * 4 * H * (F + H) + 2 * 2 * B * H * Z2) * 8 / T)
    assert flops.count_training_step(str(config), index, amp="bf16").total == got.total


# ----------------------------------------------------------------------------- CPU peaks
def cpuinfo(vendor: str, family: int, model: int, name: str, flags: str, mhz: float,
            cores: list[tuple[int, int]]) -> str:
    """/proc/cpuinfo of processors at (physical id, core id) `cores`, in order."""
    blocks = []
    for n, (phys, core) in enumerate(cores):
        blocks.append(f"processor\t: {n}\nvendor_id\t: {vendor}\ncpu family\t: {family}\n"
                      f"model\t\t: {model}\nmodel name\t: {name}\ncpu MHz\t\t: {mhz}\n"
                      f"physical id\t: {phys}\ncore id\t\t: {core}\nflags\t\t: {flags}\n")
    return "\n".join(blocks)


ZEN4 = cpuinfo("AuthenticAMD", 25, 17, "AMD EPYC 9454", "fpu sse2 avx fma avx2 avx512f "
               "avx512bw avx512_bf16", 2750.0, [(0, 0), (0, 1), (0, 0), (0, 1)])  # SMT 2
SPR = cpuinfo("GenuineIntel", 6, 143, "Intel(R) Xeon(R) Platinum 8480+", "sse2 avx fma avx2 "
              "avx512f avx512_bf16 amx_bf16 amx_tile", 2000.0, [(0, c) for c in range(4)])
HASWELL = cpuinfo("GenuineIntel", 6, 63, "Intel(R) Xeon(R) CPU E5-2680 v3", "sse2 avx fma "
                  "avx2", 2500.0, [(0, c) for c in range(4)])


def test_zen4_is_2_fma_x_8_lanes_x_2_per_cycle_with_bf16_twice_that():
    peak = cpu_peak.peak_from(ZEN4, "CPU max MHz:     3000.0000\n")
    assert (peak.microarch, peak.assumed, peak.cores) == ("Zen 4", False, 2)  # SMT once
    assert peak.vector_bits == 256 and peak.fp32_per_core_cycle() == 32
    assert peak.clock_source == "lscpu 'CPU max MHz'"
    assert peak.fp32_gflops() == pytest.approx(2 * 3.0 * 2 * 8 * 2)        # 192
    assert peak.bf16_gflops() == pytest.approx(2 * 3.0 * 2 * 8 * 2 * 2)    # 384
    assert peak.fp32_gflops(vector_bits=256) == peak.fp32_gflops()         # double-pumped
    assert peak.fp32_gflops(cores=1) == pytest.approx(96.0)
    assert "= 192.0 GFLOP/s" in peak.formulas()[0]
    # without lscpu's max: /proc/cpuinfo's current clock
    assert cpu_peak.peak_from(ZEN4).fp32_gflops() == pytest.approx(2 * 2.75 * 32)


def test_intel_amx_uses_1024_bf16_flop_per_cycle():
    peak = cpu_peak.peak_from(SPR, "CPU max MHz: 3800\n", affinity={0, 1})
    assert (peak.cores, peak.bf16, peak.assumed) == (2, "amx", False)
    assert peak.fp32_gflops() == pytest.approx(2 * 3.8 * 2 * 16 * 2)       # 486.4
    assert peak.bf16_gflops() == pytest.approx(2 * 3.8 * 1024)             # 7782.4
    assert peak.fp32_gflops(vector_bits=256) == pytest.approx(486.4 / 2)
    assert "1024 FLOP/cycle (AMX" in peak.formulas()[1]
    # a KVM guest may report a client model number (167: Rocket Lake, one FMA unit); AMX
    # says it is a Xeon server core all the same
    kvm = SPR.replace("model\t\t: 143", "model\t\t: 167")
    assert "model\t\t: 167" in kvm
    assert cpu_peak.peak_from(kvm, "CPU max MHz: 3800\n", affinity={0, 1}).fp32_gflops() == (
        pytest.approx(486.4))


def test_avx2_only_cpu_is_judged_from_its_flags_and_has_no_bf16_gain():
    peak = cpu_peak.peak_from(HASWELL, max_khz=3300000)
    assert peak.assumed and "assumed" in peak.describe()
    assert peak.clock_source == "cpufreq cpuinfo_max_freq"
    assert peak.fp32_gflops() == pytest.approx(4 * 3.3 * 2 * 8 * 2)        # 422.4
    assert peak.bf16 == "none" and peak.bf16_gflops() == pytest.approx(peak.fp32_gflops())


def test_microarch_table_ranges_and_overrides():
    zen3 = cpuinfo("AuthenticAMD", 25, 1, "AMD EPYC 7763", "avx fma avx2", 2450.0,
                   [(0, 0), (0, 1)])
    assert cpu_peak.peak_from(zen3).microarch == "Zen 3"
    zen5 = cpuinfo("AuthenticAMD", 26, 2, "AMD EPYC", "avx fma avx2 avx512f avx512_bf16",
                   2596.098, [(0, 0), (0, 1)])
    peak = cpu_peak.peak_from(zen5)
    assert peak.fp32_gflops() == pytest.approx(2 * 2.596098 * 64)
    assert peak.fp32_gflops(vector_bits=256) == pytest.approx(peak.fp32_gflops() / 2)
    assert cpu_peak.peak_from(zen5, clock_mhz=3000).fp32_gflops() == pytest.approx(384.0)
    peak.fp32_override = 100.0          # --peak-gflops: bf16 keeps the table's ratio
    assert (peak.fp32_gflops(), peak.bf16_gflops(), peak.fp32_gflops(cores=1)) == (
        100.0, 200.0, 50.0)
    arm = "processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd\nCPU implementer\t: 0x41\n"
    unknown = cpu_peak.peak_from(arm, affinity={0})
    assert unknown.fp32_gflops() is None and "--peak-gflops" in unknown.formulas()[0]
