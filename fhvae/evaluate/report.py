"""Text outputs of stage 5: Kaldi-style eer.txt lines and the markdown of results.md."""

from __future__ import annotations

from dataclasses import dataclass, field

from fhvae.evaluate.probes import ProbeResult
from fhvae.evaluate.verification import SystemResult, VerificationResult


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
    verification: list[VerificationResult]     # all trials first, then condition-matched
    probes: list[ProbeResult]
    probe_stride: int
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


def comparison_table(results: list[VerificationResult], num_resamples: int) -> str:
    """s-vector − baseline per back-end and trial list: difference, interval, how often the
    s-vector wins, and whether the interval excludes 0 (the only case that is a finding)."""
    rows = ["| trials | comparison | EER difference (points) | 95% interval | "
            "s-vector lower in | verdict |", "|---|---|---:|---:|---:|---|"]
    for result in results:
        for c in result.comparisons:
            low, high = c.interval
            verdict = ("s-vector better" if high < 0 else "baseline better" if low > 0
                       else "no difference shown")
            rows.append(f"| {result.trial_list.name} | {c.system_a} − {c.system_b} | "
                        f"{c.difference:+.2f} | {_interval(c.interval)} | "
                        f"{100 * c.share_a_lower:.0f}% of {num_resamples} | {verdict} |")
    return "\n".join(rows) + "\n"


def verification_section(results: list[VerificationResult], num_resamples: int) -> list[str]:
    parts = []
    for result in results:
        tl = result.trial_list
        parts += [f"### {tl.description[0].upper() + tl.description[1:]}\n",
                  f"Trials ({tl.origin}): `{tl.path}`, {len(tl.trials)} trials "
                  f"({tl.num_target} target, {tl.num_nontarget} nontarget).\n",
                  eer_table(result.systems)]
    if num_resamples:
        parts += ["### s-vector against the baseline\n",
                  f"Intervals: {num_resamples} bootstrap resamples of the evaluated speakers "
                  "(each draw a separate copy: a target trial counts once per copy of its "
                  "speaker, a nontarget trial once per pair of copies), so they reflect how "
                  "much the EER depends on which speakers were tested. A difference whose "
                  "interval contains 0 is not a finding.\n",
                  comparison_table(results, num_resamples)]
    return parts


def probe_table(probes: list[ProbeResult]) -> str:
    rows = ["| factor | split | train/test vectors | chance | acc(z1) | acc(z2) |",
            "|---|---|---:|---:|---:|---:|"]
    rows += [f"| {p.factor} ({p.num_classes} classes) | by {p.split} | "
             f"{p.num_train}/{p.num_test} | {100 * p.chance:.1f}% | "
             f"{100 * p.acc_z1:.1f}% | {100 * p.acc_z2:.1f}% |" for p in probes]
    return "\n".join(rows) + "\n"


def summary_record(s: EvalSummary) -> dict:
    """The numbers of results.md as plain data (summary.json), for sweeps and regressions."""
    return {
        "data_dir": s.data_dir, "model": s.model, "seed": s.seed,
        "systems": {r.name: {"eer": r.eer, "eer_interval": r.eer_interval, "min_dcf": r.min_dcf,
                             "trials": r.trials}
                    for v in s.verification for r in v.systems},
        "num_trials": {v.trial_list.name: [v.trial_list.num_target, v.trial_list.num_nontarget]
                       for v in s.verification},
        "comparisons": {f"{c.system_a} - {c.system_b}": {
            "difference": c.difference, "interval": c.interval, "share_a_lower": c.share_a_lower}
            for v in s.verification for c in v.comparisons},
        "probes": {p.factor: {"chance": p.chance, "z1": p.acc_z1, "z2": p.acc_z2,
                              "split": p.split} for p in s.probes},
    }


def render_results(s: EvalSummary) -> str:
    """The whole results.md."""
    systems = [r for v in s.verification for r in v.systems]
    best = min(systems, key=lambda r: r.eer)
    parts = [
        f"# FHVAE evaluation on {s.data_dir}\n",
        "## Summary\n",
        f"- Model: `{s.model}`; seed {s.seed}.",
        f"- Evaluated set `{s.data_dir}`: {s.num_utts} utterances, {s.num_speakers} speakers.",
        f"- Back-ends trained on `{s.train_dir}`: {s.num_train_utts} utterances, "
        f"{s.num_train_speakers} speakers.",
        *[f"- {v.trial_list.description[0].upper() + v.trial_list.description[1:]}: "
          f"{len(v.trial_list.trials)} ({v.trial_list.num_target} target)."
          for v in s.verification],
        f"- Best verification system: {best.name}, EER {best.eer:.2f}%.",
        *[f"- {note}" for note in s.notes],
        "",
        "## Speaker verification\n",
        "EER is interpolated where miss and false-alarm rates cross; minDCF uses "
        "C_miss = C_fa = 1 and is divided by min(p_target, 1 - p_target) as in Kaldi. "
        "Baseline: per-utterance mean of FBank normalised with the model's MVN statistics. "
        "Back-ends are fitted on the training set.\n",
        *verification_section(s.verification, s.num_resamples),
        "## Factor probes\n",
        f"Standardised logistic regression on one z1/z2 frame per {s.probe_stride}-frame "
        "segment. Train and test never share an utterance; a factor that is fixed per speaker "
        "(e.g. gender) is split by speaker, so it cannot be learnt through the speaker "
        "identity; other factors are split by utterance, each speaker's utterances divided "
        "between the two sides. Chance = always answering the most frequent training class.\n",
        probe_table(s.probes),
    ]
    if s.figures:
        parts.append("## Figures\n")
        parts += [f"{caption}\n\n![{caption}]({name})\n" for caption, name in s.figures]
    return "\n".join(parts)
