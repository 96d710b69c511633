"""Text outputs of stage 5: Kaldi-style eer.txt lines and the markdown of results.md."""

from __future__ import annotations

from dataclasses import dataclass, field

from fhvae.evaluate.bootstrap import EerComparison
from fhvae.evaluate.probes import ProbeResult


@dataclass
class SystemResult:
    """One verification system: an embedding scored by one back-end."""

    name: str            # e.g. svector_cosine (also the scores file suffix)
    embedding: str
    backend: str
    eer: float           # percent
    min_dcf: float
    p_target: float
    eer_interval: tuple[float, float] | None = None   # 95% speaker-bootstrap interval


@dataclass
class EvalSummary:
    data_dir: str
    train_dir: str
    model: str
    seed: int
    num_utts: int
    num_speakers: int
    num_train_utts: int
    num_train_speakers: int
    trials_path: str
    trials_origin: str          # "generated" or "given"
    num_target: int
    num_nontarget: int
    systems: list[SystemResult]
    probes: list[ProbeResult]
    probe_split: tuple[int, int]    # train/test utterances
    probe_stride: int
    comparisons: list[EerComparison] = field(default_factory=list)
    num_resamples: int = 0
    notes: list[str] = field(default_factory=list)
    figures: list[tuple[str, str]] = field(default_factory=list)   # (caption, file name)


def eer_lines(systems: list[SystemResult]) -> str:
    """One line per system, in the spirit of Kaldi's `compute-eer` / `compute_min_dcf.py`."""
    return "".join(f"{s.name} EER {s.eer:.2f}% minDCF(p_target={s.p_target:g}) {s.min_dcf:.4f}\n"
                   for s in systems)


def _interval(interval: tuple[float, float] | None) -> str:
    return "" if interval is None else f"{interval[0]:.2f} … {interval[1]:.2f}"


def eer_table(systems: list[SystemResult]) -> str:
    p_target = systems[0].p_target if systems else 0.01
    rows = ["| system | embedding | back-end | EER (%) | 95% interval | "
            f"minDCF (p={p_target:g}) |",
            "|---|---|---|---:|---:|---:|"]
    rows += [f"| {s.name} | {s.embedding} | {s.backend} | {s.eer:.2f} | "
             f"{_interval(s.eer_interval)} | {s.min_dcf:.4f} |" for s in systems]
    return "\n".join(rows) + "\n"


def comparison_lines(comparisons: list[EerComparison], num_resamples: int) -> str:
    """One sentence per paired comparison: the difference, its interval, how often a wins."""
    return "".join(
        f"- {c.system_a} − {c.system_b}: {c.difference:+.2f} EER points (95% interval "
        f"{_interval(c.interval)}); {c.system_a} has the lower EER in "
        f"{100 * c.share_a_lower:.0f}% of {num_resamples} speaker resamples.\n"
        for c in comparisons)


def probe_table(probes: list[ProbeResult]) -> str:
    rows = ["| factor | chance | acc(z1) | acc(z2) |", "|---|---:|---:|---:|"]
    rows += [f"| {p.factor} ({p.num_classes} classes) | {100 * p.chance:.1f}% | "
             f"{100 * p.acc_z1:.1f}% | {100 * p.acc_z2:.1f}% |" for p in probes]
    return "\n".join(rows) + "\n"


def render_results(s: EvalSummary) -> str:
    """The whole results.md."""
    best = min(s.systems, key=lambda r: r.eer)
    parts = [
        f"# FHVAE evaluation on {s.data_dir}\n",
        "## Summary\n",
        f"- Model: `{s.model}`; seed {s.seed}.",
        f"- Evaluated set `{s.data_dir}`: {s.num_utts} utterances, {s.num_speakers} speakers.",
        f"- Back-ends trained on `{s.train_dir}`: {s.num_train_utts} utterances, "
        f"{s.num_train_speakers} speakers.",
        f"- Trials ({s.trials_origin}): `{s.trials_path}`, {s.num_target + s.num_nontarget} "
        f"trials ({s.num_target} target, {s.num_nontarget} nontarget).",
        f"- Best verification system: {best.name}, EER {best.eer:.2f}%.",
        *[f"- {note}" for note in s.notes],
        "",
        "## Speaker verification\n",
        "EER is interpolated where miss and false-alarm rates cross; minDCF uses "
        "C_miss = C_fa = 1 and is divided by min(p_target, 1 - p_target) as in Kaldi. "
        "Baseline: per-utterance mean of FBank normalised with the model's MVN statistics.\n",
        eer_table(s.systems),
        *([f"Intervals: {s.num_resamples} bootstrap resamples of the test speakers (trials "
           "between two drawn speakers counted once per pair of draws), so they reflect how "
           "much the EER depends on which speakers were tested.\n",
           comparison_lines(s.comparisons, s.num_resamples)] if s.num_resamples else []),
        "## Factor probes\n",
        f"Standardised logistic regression on one z1/z2 frame per {s.probe_stride}-frame segment; "
        f"train/test split by utterance ({s.probe_split[0]}/{s.probe_split[1]}; each speaker's "
        "utterances are divided between the two). Chance = always answering the most frequent "
        "training class.\n",
        probe_table(s.probes),
    ]
    if s.figures:
        parts.append("## Figures\n")
        parts += [f"{caption}\n\n![{caption}]({name})\n" for caption, name in s.figures]
    return "\n".join(parts)
