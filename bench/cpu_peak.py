#!/usr/bin/env python
"""The CPU's peak FLOP rate in fp32 and bf16, from /proc/cpuinfo and lscpu.

    fp32 peak = cores x clock x FMA units x (vector bits / 32) x 2
    bf16 peak = fp32 peak x 2                      (AVX512_BF16: VDPBF16PS)
              = cores x clock x 1024               (AMX: amx_bf16, one TMUL unit per core)
              = fp32 peak                          (no native bf16 arithmetic)

- cores: physical cores among the CPUs this process may run on (os.sched_getaffinity); SMT
  siblings count once, as they share the core's FMA units.
- clock: lscpu's "CPU max MHz", else cpufreq's cpuinfo_max_freq, else /proc/cpuinfo's
  "cpu MHz" (the current clock; under a hypervisor usually the host's nominal one). Which
  one was used is named. All cores rarely hold the maximum clock under wide-vector load, so
  a peak at the maximum clock is an upper bound.
- FMA units per core and their width: the table MICROARCHS below, keyed by vendor, CPU
  family and model (an Intel CPU with AMX is a Xeon server core whatever its model: KVM
  may report a generic one); a CPU not in it is judged from its flags and marked "assumed".
- vector bits: the narrower of the widest ISA the flags offer (avx512f 512, avx2/avx 256,
  sse2 128) and the FMA datapath. Zen 4 runs AVX-512 on two 256-bit pipes ("double-pumped"):
  2 FMA x 8 lanes x 2 = 32 fp32 FLOP/cycle/core; Intel server cores with two 512-bit FMA
  units and Zen 5 desktop/server cores: 2 x 16 x 2 = 64.
- a multiply-add is 2 FLOPs (the convention of torch.utils.flop_counter).
- bf16: VDPBF16PS (AVX512_BF16) multiplies 2 bf16 pairs per fp32 lane, twice the fp32 rate
  per instruction; AMX's tile multiply is commonly quoted at 1024 bf16 FLOP/cycle/core. A CPU
  with neither converts bf16 to fp32 and computes in fp32: its bf16 peak is the fp32 peak.

  python bench/cpu_peak.py [--clock-mhz MHZ]     # this machine, with the formula filled in
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Core:
    """Per-microarchitecture constants of one core."""

    name: str
    fma_units: int       # FMA pipes per core (a CPU without FMA: its add + multiply pipe = 1)
    datapath_bits: int   # width of each pipe; wider instructions are split ("double-pumped")
    note: str


# (vendor, CPU family, models, constants): the first match wins.
MICROARCHS: list[tuple[str, int, tuple[range, ...], Core]] = [
    ("AuthenticAMD", 0x17, (range(0x00, 0x30),),
     Core("Zen / Zen+", 2, 128, "two 128-bit FMA pipes; 256-bit AVX2 ops take two passes")),
    ("AuthenticAMD", 0x17, (range(0x30, 0x100),),
     Core("Zen 2", 2, 256, "two 256-bit FMA pipes")),
    ("AuthenticAMD", 0x19, (range(0x10, 0x20), range(0x60, 0x80), range(0xa0, 0xb0)),
     Core("Zen 4", 2, 256, "two 256-bit FMA pipes; AVX-512 is double-pumped on them")),
    ("AuthenticAMD", 0x19, (range(0x00, 0x100),),
     Core("Zen 3", 2, 256, "two 256-bit FMA pipes")),
    ("AuthenticAMD", 0x1a, (range(0x20, 0x30), range(0x60, 0x70)),
     Core("Zen 5 (mobile: Strix/Krackan Point)", 2, 256,
          "two FMA pipes on 256-bit datapaths; AVX-512 is double-pumped")),
    ("AuthenticAMD", 0x1a, (range(0x00, 0x100),),
     Core("Zen 5", 2, 512, "two 512-bit FMA pipes (desktop and server parts)")),
    ("GenuineIntel", 6, (range(0x55, 0x56), range(0x6a, 0x6b), range(0x6c, 0x6d)),
     Core("Skylake-SP .. Ice Lake-SP", 2, 512,
          "two 512-bit FMA units as on Xeon Platinum/Gold 6xxx; Silver, Bronze and some "
          "Gold 5xxx have one: halve the peak with --peak-gflops")),
    ("GenuineIntel", 6, (range(0x66, 0x67), range(0x7d, 0x7f), range(0x8c, 0x8e),
                         range(0xa7, 0xa8)),
     Core("Ice/Tiger/Rocket Lake client", 1, 512, "one 512-bit FMA unit")),
]

AMX_BF16_PER_CYCLE = 1024    # bf16 FLOP/cycle/core of one AMX TMUL unit (commonly cited)


@dataclass
class Peak:
    """A CPU's peak, with everything its formula needs."""

    cpu: str
    microarch: str
    assumed: bool              # constants judged from the flags, not from MICROARCHS
    cores: int
    clock_mhz: float
    clock_source: str
    fma_units: int
    vector_bits: int           # min(widest ISA, datapath)
    datapath_bits: int
    bf16: str                  # "amx" | "avx512_bf16" | "none"
    notes: list[str] = field(default_factory=list)
    fp32_override: float | None = None   # GFLOP/s given by the user
    bf16_override: float | None = None

    def fp32_per_core_cycle(self, vector_bits: int | None = None) -> int:
        bits = min(vector_bits or self.vector_bits, self.vector_bits)
        return self.fma_units * (bits // 32) * 2

    def bf16_per_core_cycle(self) -> int:
        if self.bf16 == "amx":
            return AMX_BF16_PER_CYCLE
        return self.fp32_per_core_cycle() * (2 if self.bf16 == "avx512_bf16" else 1)

    def fp32_gflops(self, cores: int | None = None, vector_bits: int | None = None
                    ) -> float | None:
        """Peak of `cores` (default: all of the process's), code limited to `vector_bits`."""
        n = min(cores or self.cores, self.cores)
        if self.fp32_override is not None:
            return self.fp32_override * n / self.cores * (
                min(vector_bits or self.vector_bits, self.vector_bits) / self.vector_bits)
        if not self.fma_units:
            return None
        return n * self.clock_mhz / 1e3 * self.fp32_per_core_cycle(vector_bits)

    def bf16_gflops(self, cores: int | None = None) -> float | None:
        n = min(cores or self.cores, self.cores)
        if self.bf16_override is not None:
            return self.bf16_override * n / self.cores
        if self.fp32_override is not None and self.fma_units:   # the table's bf16/fp32 ratio
            return self.fp32_gflops(n) * self.bf16_per_core_cycle() / self.fp32_per_core_cycle()
        if not self.fma_units:
            return None
        return n * self.clock_mhz / 1e3 * self.bf16_per_core_cycle()

    def formulas(self) -> list[str]:
        """The fp32 and bf16 peaks, each as its formula with this CPU's numbers."""
        ghz = f"{self.clock_mhz / 1e3:.3f} GHz"
        base = (f"{self.cores} cores × {ghz} × {self.fma_units} FMA units × "
                f"({self.vector_bits} / 32) lanes")
        fp32, bf16 = self.fp32_gflops(), self.bf16_gflops()
        if fp32 is None and self.fp32_override is None:
            return ["peak unknown for this CPU: give --peak-gflops (and --peak-bf16-gflops)"]
        lines = [f"fp32 peak = {base} × 2 FLOP/FMA = {fp32:.1f} GFLOP/s"
                 if self.fp32_override is None
                 else f"fp32 peak = {fp32:.1f} GFLOP/s (given with --peak-gflops)"]
        if self.bf16_override is not None:
            lines.append(f"bf16 peak = {bf16:.1f} GFLOP/s (given with --peak-bf16-gflops)")
        elif self.fp32_override is not None and bf16 is not None:
            lines.append(f"bf16 peak = fp32 peak × {self.bf16_per_core_cycle()} / "
                         f"{self.fp32_per_core_cycle()} ({self.bf16}) = {bf16:.1f} GFLOP/s")
        elif bf16 is None:
            lines.append("bf16 peak unknown: give --peak-bf16-gflops")
        elif self.bf16 == "amx":
            lines.append(f"bf16 peak = {self.cores} cores × {ghz} × {AMX_BF16_PER_CYCLE} "
                         f"FLOP/cycle (AMX tile multiply) = {bf16:.1f} GFLOP/s")
        elif self.bf16 == "avx512_bf16":
            lines.append(f"bf16 peak = {base} × 2 bf16 products per fp32 lane (VDPBF16PS) × "
                         f"2 FLOP/FMA = {bf16:.1f} GFLOP/s")
        else:
            lines.append(f"bf16 peak = fp32 peak = {bf16:.1f} GFLOP/s (no native bf16 "
                         "arithmetic: bf16 is converted and computed in fp32)")
        return lines

    def describe(self) -> str:
        """Where the constants came from (one paragraph)."""
        how = "assumed from its flags" if self.assumed else "from the table in bench/cpu_peak.py"
        text = (f"{self.cpu}: {self.microarch} ({how}); {self.fma_units} FMA unit(s) of "
                f"{self.datapath_bits} bits per core, {self.vector_bits}-bit vectors used; "
                f"clock {self.clock_mhz:.0f} MHz from {self.clock_source}; {self.cores} "
                "physical core(s) available to the process.")
        return " ".join([text] + self.notes)


# ----------------------------------------------------------------------------- parsing
def _processors(cpuinfo: str) -> list[dict[str, str]]:
    blocks = []
    for block in re.split(r"\n\s*\n", cpuinfo.strip()):
        fields = {}
        for line in block.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                fields[key.strip()] = value.strip()
        if "processor" in fields:
            blocks.append(fields)
    return blocks


def _int(value: str | None, default: int = -1) -> int:
    try:
        return int(value, 0) if value is not None else default
    except ValueError:
        return default


def physical_cores(procs: list[dict[str, str]], affinity: set[int] | None) -> int:
    """Distinct (physical id, core id) among the processors in `affinity`."""
    mine = [p for p in procs if affinity is None or _int(p.get("processor")) in affinity]
    if not mine:
        return len(affinity) if affinity else 1
    if all("core id" in p for p in mine):
        return len({(p.get("physical id", "0"), p["core id"]) for p in mine})
    return len(mine)


def _lscpu_value(lscpu: str, key: str) -> str | None:
    for line in lscpu.splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip() == key and value.strip():
            return value.strip()
    return None


AMX_XEON = Core("Sapphire/Emerald/Granite Rapids", 2, 512, "two 512-bit FMA units; AMX")


def lookup(vendor: str, family: int, model: int, flags: set[str] = frozenset()) -> Core | None:
    """The table's row, except that an Intel CPU with AMX is a Xeon server core whatever
    its model number: only those have AMX, and KVM guests may report a generic model
    (e.g. 167, a Rocket Lake client number, on a 2-core Xeon slice with amx_tile)."""
    if vendor == "GenuineIntel" and "amx_tile" in flags:
        return AMX_XEON
    for v, fam, models, core in MICROARCHS:
        if v == vendor and fam == family and any(model in r for r in models):
            return core
    return None


def from_flags(flags: set[str]) -> Core | None:
    """Constants judged from the ISA flags alone (a CPU not in MICROARCHS)."""
    if "avx512f" in flags:
        return Core("unknown AVX-512 CPU", 2, 512, "assumed: two 512-bit FMA units, as on "
                    "Intel server cores (client cores have one, Zen 4 double-pumps 256)")
    if "avx2" in flags and "fma" in flags:
        return Core("unknown AVX2 CPU", 2, 256, "assumed: two 256-bit FMA units, as on "
                    "Intel cores since Haswell and AMD since Zen 2")
    if "avx" in flags:
        return Core("unknown AVX CPU", 1, 256, "assumed: no FMA; one 256-bit add and one "
                    "multiply pipe, counted as one FMA unit")
    if "sse2" in flags:
        return Core("unknown SSE2 CPU", 1, 128, "assumed: one 128-bit add and one multiply "
                    "pipe, counted as one FMA unit")
    return None


def isa_bits(flags: set[str]) -> int:
    return 512 if "avx512f" in flags else 256 if {"avx2", "avx"} & flags else 128


def peak_from(cpuinfo: str, lscpu: str = "", affinity: set[int] | None = None,
              max_khz: int | None = None, clock_mhz: float | None = None) -> Peak:
    """The peak of the CPU described by the text of /proc/cpuinfo and `lscpu`, for the
    processors in `affinity` (all when None). clock_mhz overrides the detected clock."""
    procs = _processors(cpuinfo)
    first = procs[0] if procs else {}
    vendor = first.get("vendor_id", "unknown")
    family, model = _int(first.get("cpu family")), _int(first.get("model"))
    flags = set(first.get("flags", "").split())
    core = lookup(vendor, family, model, flags)
    assumed = core is None
    core = core or from_flags(flags) or Core("unknown CPU", 0, 0, "no x86 vector flags found")
    notes = [core.note + "."]
    if clock_mhz:
        clock, source = float(clock_mhz), "--clock-mhz"
    elif (mhz := _lscpu_value(lscpu, "CPU max MHz")) and float(mhz) > 0:
        clock, source = float(mhz), "lscpu 'CPU max MHz'"
    elif max_khz:
        clock, source = max_khz / 1e3, "cpufreq cpuinfo_max_freq"
    else:
        clocks = [float(p["cpu MHz"]) for p in procs if "cpu MHz" in p
                  and (affinity is None or _int(p.get("processor")) in affinity)]
        clock, source = (max(clocks) if clocks else 0.0), "/proc/cpuinfo 'cpu MHz' (current)"
        if "hypervisor" in flags:
            notes.append("Under a hypervisor 'cpu MHz' is the host's nominal clock; boost "
                         "may run faster (a higher peak).")
    bf16 = ("amx" if "amx_bf16" in flags else "avx512_bf16" if "avx512_bf16" in flags
            else "none")
    return Peak(cpu=first.get("model name", "unknown CPU"), microarch=core.name,
                assumed=assumed, cores=physical_cores(procs, affinity), clock_mhz=clock,
                clock_source=source, fma_units=core.fma_units,
                vector_bits=min(isa_bits(flags), core.datapath_bits) if core.fma_units else 0,
                datapath_bits=core.datapath_bits, bf16=bf16, notes=notes)


def machine_peak(clock_mhz: float | None = None, peak_gflops: float | None = None,
                 peak_bf16_gflops: float | None = None) -> Peak:
    """This machine's peak (the process's CPU affinity), with the user's overrides."""
    def read(path: str) -> str:
        try:
            return Path(path).read_text()
        except OSError:
            return ""
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10,
                               env={**os.environ, "LC_ALL": "C"}).stdout
    except (OSError, subprocess.SubprocessError):
        lscpu = ""
    max_khz = _int(read("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").strip(), 0)
    peak = peak_from(read("/proc/cpuinfo"), lscpu, os.sched_getaffinity(0), max_khz or None,
                     clock_mhz)
    peak.fp32_override, peak.bf16_override = peak_gflops, peak_bf16_gflops
    return peak


def add_peak_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clock-mhz", type=float, help="clock for the peak (default: detected)")
    parser.add_argument("--peak-gflops", type=float,
                        help="fp32 peak of the process's cores, GFLOP/s (default: computed)")
    parser.add_argument("--peak-bf16-gflops", type=float,
                        help="bf16 peak of the process's cores, GFLOP/s (default: computed)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_peak_args(parser)
    args = parser.parse_args()
    peak = machine_peak(args.clock_mhz, args.peak_gflops, args.peak_bf16_gflops)
    print(peak.describe())
    print("\n".join(peak.formulas()))


if __name__ == "__main__":
    main()
