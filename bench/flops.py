"""FLOPs of one FHVAE training step, counted by torch, and where a step's CPU time goes.

Convention (torch.utils.flop_counter's, and the one CPU peaks are quoted in): a multiply-add
is 2 FLOPs, so an (m x k) @ (k x n) product is 2*m*k*n FLOPs. FLOP/step is the FLOPs of the
ops torch has formulas for -- the matrix products (mm, addmm, bmm, convolutions, attention)
-- over one real training step: the model's forward, the objective (fhvae_loss) and the
backward, on a generated batch of the configuration's shape (batch_size segments of seg_len
frames of feat_dim features, a K-row mu2 table). Elementwise ops (the LSTM gates'
nonlinearities, the loss terms) are not FLOPs in this convention: their element-operations
are counted separately (`elementwise`, one per output element of each pointwise op).

The optimizer step is NOT in FLOP/step: Adam is elementwise. Its element-operations are
counted on its own (`adam_elementwise`) on the unfused single-tensor Adam (the arithmetic of
the trainer's fused kernel, which is one opaque op): 7 per parameter, whose lerp, addcmul
and addcdiv are 2-3 FLOPs each. The per-sequence-batch table reset (the z2 encoder, no grad,
over the batch's reset windows) is not in it either; `reset_per_step` is its forward FLOPs
amortised over the steps of a sequence batch (batch_size * seg_shift / reset_shift windows
a step, the segment-count edges ignored).

oneDNN's fused LSTM op (aten::mkldnn_rnn_layer, what nn.LSTM runs on x86 CPUs) has no FLOP
formula in torch and would count as 0. The counted step therefore runs with oneDNN disabled:
ATen's native LSTM computes the same gates with visible products (one GEMM for the input
projection of all time steps, one per step for the recurrence) that torch counts. Its
backward skips products nobody needs (the gradient of the data, of the zero initial state),
so the count is what the step's gradients require.

`by_module` puts each product under the leaf module whose forward ran it (forward hooks) or
whose saved tensors its backward unpacked (saved-tensor hooks); products outside every leaf
module (the objective's discriminative logits) are under "objective".

This module holds the benchmark's in-process uses of the package (model, objective, config).
"""

from __future__ import annotations

import time
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode, flop_registry

from common import optimisation_step
from fhvae.data.index import SegmentIndex
from fhvae.model import FHVAE
from fhvae.objective import fhvae_loss
from fhvae.training.config import TrainConfig, resolve_config
from fhvae.training.runtime import autocast, make_adam

OUTSIDE = "objective"     # products run outside every leaf module


@dataclass
class StepFlops:
    """The counted cost of one training step (see the module docstring for what is in it)."""

    total: int                                        # matmul FLOPs: forward + loss + backward
    by_op: dict[str, int]                             # aten op -> FLOPs
    by_module: dict[str, int]                         # leaf module (or "objective") -> FLOPs
    module_types: dict[str, str] = field(default_factory=dict)  # leaf module -> class name
    elementwise: dict[str, int] = field(default_factory=dict)  # pointwise op -> elements
    adam_elementwise: int = 0                         # element-ops of one Adam update
    params: int = 0                                   # parameters Adam updates
    reset_per_step: float = 0.0                       # table-reset FLOPs amortised per step

    def of_type(self, type_name: str) -> int:
        """FLOPs of the leaf modules of one class (e.g. "LSTM")."""
        return sum(n for name, n in self.by_module.items()
                   if self.module_types.get(name) == type_name)

    def top(self, n: int = 5, by: str = "module") -> list[tuple[str, int, float]]:
        """The n largest (name, FLOPs, share of total) by module or by op."""
        table = self.by_module if by == "module" else self.by_op
        items = sorted(table.items(), key=lambda kv: -kv[1])[:n]
        return [(name, flops, flops / max(self.total, 1)) for name, flops in items]


class _PointwiseCounter(TorchDispatchMode):
    """Output elements of every pointwise op (torch.Tag.pointwise), per op."""

    def __init__(self):
        super().__init__()
        self.counts: dict[str, int] = defaultdict(int)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if torch.Tag.pointwise in func.tags:
            first = out[0] if isinstance(out, (tuple, list)) else out
            if isinstance(first, torch.Tensor):
                self.counts[func.overloadpacket.__name__] += first.numel()
        return out


def _op_name(packet) -> str:
    return f"aten.{packet.__name__}"


def count_flops(run: Callable[[], object], modules: nn.Module | None = None,
                elementwise: bool = False) -> StepFlops:
    """Count the products of `run()` (forward and any backward it calls) with torch's
    FlopCounterMode; with `modules`, attribute them to its leaf modules."""
    by_module: dict[str, int] = defaultdict(int)
    stack: list[str] = []           # leaf modules whose forward is running
    unpacked = [OUTSIDE]            # the module of the latest backward node (its saved tensors)

    def attribute(formula):
        def counted(*args, **kwargs):
            flops = formula(*args, **kwargs)
            # (private, no public equivalent: the autograd node running now, if any)
            backward = torch._C._current_autograd_node() is not None
            by_module[unpacked[0] if backward else stack[-1] if stack else OUTSIDE] += flops
            return flops
        counted._get_raw = True     # the registry's formulas already take raw arguments
        return counted

    def enter(module, args, name):
        stack.append(name)

    def leave(module, args, output):
        stack.pop()

    def pack(t):
        return (stack[-1] if stack else OUTSIDE), t

    def unpack(saved):
        unpacked[0] = saved[0]
        return saved[1]

    handles, types = [], {}
    if modules is not None:
        for name, mod in modules.named_modules():
            if not any(True for _ in mod.children()):
                name = name or type(mod).__name__       # `modules` is itself a leaf
                types[name] = type(mod).__name__
                handles.append(mod.register_forward_pre_hook(
                    lambda m, a, name=name: enter(m, a, name)))
                handles.append(mod.register_forward_hook(leave))
    mapping = {op: attribute(f) for op, f in flop_registry.items()}
    points = _PointwiseCounter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")     # set_flags' note on TF32 for Intel GPUs
            with torch.backends.mkldnn.flags(enabled=False), \
                    FlopCounterMode(display=False, custom_mapping=mapping) as counter, \
                    torch.autograd.graph.saved_tensors_hooks(pack, unpack):
                if elementwise:
                    with points:
                        run()
                else:
                    run()
    finally:
        for h in handles:
            h.remove()
    by_op = {_op_name(op): int(n) for op, n in counter.get_flop_counts()["Global"].items()}
    return StepFlops(total=int(counter.get_total_flops()), by_op=by_op,
                     by_module=dict(by_module), module_types=types,
                     elementwise=dict(points.counts))


# ----------------------------------------------------------------------------- the FHVAE
def step_setup(config: str, index: SegmentIndex | str, seed: int = 0
               ) -> tuple[TrainConfig, FHVAE, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """The configuration (resolved on `index`, or the index at that path, as the trainer
    does), its model on the CPU, and a generated batch of its shape: (segments, table rows,
    segments of every row)."""
    if not isinstance(index, SegmentIndex):
        index = SegmentIndex.load(index)
    cfg = resolve_config(TrainConfig.load(config), index, 1)
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = FHVAE(cfg.model)
    m = cfg.model
    x = torch.randn(cfg.batch_size, m.seg_len, m.feat_dim, generator=gen)
    seq_idx = torch.randint(m.num_seqs, (cfg.batch_size,), generator=gen)
    num_segs = torch.randint(1, 200, (m.num_seqs,), generator=gen)
    return cfg, model, (x, seq_idx, num_segs)


def count_training_step(config: str, index: SegmentIndex | str, amp: str = "none"
                        ) -> StepFlops:
    """FLOPs of one training step of `config` (forward + fhvae_loss + backward), with the
    elementwise work, Adam's element-ops and the amortised table reset beside it."""
    cfg, model, (x, seq_idx, num_segs) = step_setup(config, index)
    ctx = autocast(amp, torch.device("cpu"))

    def step() -> None:
        with ctx:
            loss, _ = fhvae_loss(model, x, seq_idx, num_segs, cfg.alpha)
        loss.backward()

    with torch.random.fork_rng(devices=[]):
        result = count_flops(step, model, elementwise=True)
        params = list(model.parameters())
        adam = torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas, foreach=False, fused=False)
        adam.step()                          # creates the moments; the next step is a steady one
        points = _PointwiseCounter()
        with points:
            adam.step()
        with torch.no_grad():
            window = count_flops(lambda: model.encode_z2(x), model)
    result.adam_elementwise = sum(points.counts.values())
    result.params = sum(p.numel() for p in params)
    reset_shift = cfg.reset_shift or cfg.model.seg_len
    result.reset_per_step = window.total * cfg.seg_shift / reset_shift
    return result


@dataclass
class StepProfile:
    """Self CPU time per op of in-process training steps (torch.profiler)."""

    amp: str
    threads: int
    steps: int
    ms_per_op: dict[str, float]      # op -> self CPU ms per step
    profiled_ms: float               # their sum: ms per step under the profiler
    plain_ms: float                  # ms per step of as many steps without the profiler

    def top(self, n: int = 6) -> list[tuple[str, float]]:
        """The n ops with the most self CPU time, with their share of it."""
        ranked = sorted(self.ms_per_op.items(), key=lambda kv: -kv[1])[:n]
        return [(name, ms / max(self.profiled_ms, 1e-12)) for name, ms in ranked]

    def share(self, match: Callable[[str], bool]) -> float:
        """The share of self CPU time of the ops whose names `match`."""
        return sum(ms for name, ms in self.ms_per_op.items() if match(name)) / max(
            self.profiled_ms, 1e-12)


def profile_steps(config: str, index: SegmentIndex | str, steps: int = 20,
                  amp: str = "none") -> StepProfile:
    """Where the CPU time of `steps` in-process training steps (fhvae_loss, backward, fused
    Adam over every parameter, as the trainer's two Adams) goes: no data loading, no table
    reset. Run after 3 unprofiled steps (oneDNN builds its primitives on the first calls)."""
    from torch.profiler import ProfilerActivity, profile

    cfg, model, (x, seq_idx, num_segs) = step_setup(config, index)
    opt = make_adam(model.parameters(), cfg.lr, cfg.betas)
    step = optimisation_step(model, opt, x, seq_idx, num_segs, torch.device("cpu"), amp,
                             cfg.alpha)
    with torch.random.fork_rng(devices=[]):
        for _ in range(3):
            step()
        start = time.perf_counter()
        for _ in range(steps):
            step()
        plain_ms = (time.perf_counter() - start) * 1e3 / steps
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(steps):
                step()
    ms = {e.key: e.self_cpu_time_total / 1e3 / steps for e in prof.key_averages()}
    return StepProfile(amp, torch.get_num_threads(), steps, ms, sum(ms.values()), plain_ms)
