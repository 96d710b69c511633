"""Text outputs of stage 5: Kaldi-style eer.txt lines and the markdown of results.md."""

from __future__ import annotations

from dataclasses import dataclass, field

from fhvae.evaluate.asr_probe import MIN_PHONE_FRAMES, OTHER, SPLICE_HOP, AsrProbeResult
from fhvae.evaluate.probes import ProbeResult
from fhvae.evaluate.recombination import RecombineScore
from fhvae.evaluate.scoring import Adaptation
from fhvae.evaluate.swap import SwapResult
from fhvae.evaluate.verification import SystemResult, VerificationResult


@dataclass
class AdaptationSummary:
    """The back-end adaptation of one evaluation and the size of its adaptation set."""

    adaptation: Adaptation
    num_utts: int

    def describe(self) -> str:
        a, c = self.adaptation, self.adaptation.config
        plda = (f"; LDA + PLDA also adapted as Kaldi's ivector-adapt-plda "
                f"(--within-covar-scale {c.within_covar_scale:g} --between-covar-scale "
                f"{c.between_covar_scale:g} --mean-diff-scale {c.mean_diff_scale:g})"
                if a.plda and "lda-plda" in a.backends else "")
        return (f"Back-ends {', '.join(a.backends)} adapted to `{a.name}` ({self.num_utts} "
                f"utterances, speaker labels unused): its mean replaces the training "
                f"mean{plda}; any other back-end as fitted.")

    def record(self) -> dict:
        c = self.adaptation.config
        return {"set": self.adaptation.name, "utterances": self.num_utts,
                "backends": list(self.adaptation.backends),
                "plda": self.adaptation.plda, "within_covar_scale": c.within_covar_scale,
                "between_covar_scale": c.between_covar_scale,
                "mean_diff_scale": c.mean_diff_scale}


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
    swap: SwapResult | None = None
    recombination: RecombineScore | None = None
    recombine_figure: tuple[str, str] | None = None                 # shown with its score
    asr: AsrProbeResult | None = None
    adaptation: AdaptationSummary | None = None                     # None: not adapted


def eer_lines(systems: list[SystemResult]) -> str:
    """One line per system, in the spirit of Kaldi's `compute-eer` / `compute_min_dcf.py`."""
    return "".join(f"{s.name} EER {s.eer:.2f}% minDCF(p_target={s.p_target:g}) {s.min_dcf:.4f}\n"
                   for s in systems)


def _interval(interval: tuple[float, float] | None, fmt: str = ".2f") -> str:
    return "" if interval is None else f"{interval[0]:{fmt}} … {interval[1]:{fmt}}"


VERDICTS = {"a better": "s-vector better", "b better": "baseline better",
            "no difference shown": "no difference shown"}


def eer_table(systems: list[SystemResult]) -> str:
    p_target = systems[0].p_target if systems else 0.01
    rows = ["| system | embedding | back-end | EER (%) | 95% interval | "
            f"minDCF (p={p_target:g}) | 95% interval |",
            "|---|---|---|---:|---:|---:|---:|"]
    rows += [f"| {s.name} | {s.embedding} | {s.backend} | {s.eer:.2f} | "
             f"{_interval(s.eer_interval)} | {s.min_dcf:.4f} | "
             f"{_interval(s.min_dcf_interval, '.4f')} |" for s in systems]
    return "\n".join(rows) + "\n"


def comparison_table(results: list[VerificationResult], num_resamples: int) -> str:
    """s-vector − baseline per baseline, back-end and trial list: difference, its 95%
    interval and its interval at the corrected level, how often the s-vector wins, the
    bootstrap p-value before and after Holm's correction, and the corrected verdict (the
    only one that is a finding)."""
    m = sum(len(r.comparisons) for r in results)
    rows = ["| trials | comparison | EER difference (points) | 95% interval | "
            f"corrected interval ({100 * (1 - 0.05 / max(m, 1)):.2f}%) | s-vector lower in | "
            "p | p (Holm) | verdict |", "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for result in results:
        for c in result.comparisons:
            rows.append(f"| {result.trial_list.name} | {c.system_a} − {c.system_b} | "
                        f"{c.difference:+.2f} | {_interval(c.interval)} | "
                        f"{_interval(c.corrected_interval)} | "
                        f"{100 * c.share_a_lower:.0f}% of {num_resamples} | "
                        f"{c.p_value:.3f} | {c.p_holm:.3f} | {VERDICTS[c.verdict]} |")
    return "\n".join(rows) + "\n"


def verification_section(results: list[VerificationResult], num_resamples: int) -> list[str]:
    parts = []
    for result in results:
        tl = result.trial_list
        parts += [f"### {tl.title}\n",
                  f"Trials ({tl.origin}): `{tl.path}`, {len(tl.trials)} trials "
                  f"({tl.num_target} target, {tl.num_nontarget} nontarget).\n",
                  eer_table(result.systems)]
    if num_resamples:
        m = sum(len(r.comparisons) for r in results)
        parts += ["### s-vector against the baselines\n",
                  f"Intervals: {num_resamples} bootstrap resamples of the evaluated speakers "
                  "(each draw a separate copy: a target trial counts once per copy of its "
                  "speaker, a nontarget trial once per pair of copies), so they reflect how "
                  "much the EER depends on which speakers were tested, not how much it depends "
                  "on the training run (for that, see the seed table of the README). The "
                  f"{m} comparisons below are one family: p-values are Holm-adjusted over all "
                  "of them and the corrected intervals are at level 1 − 0.05/m (Bonferroni); "
                  "the verdict is the Holm test at the 5% family-wise level. A difference that "
                  "is not significant after correction is not a finding.\n",
                  comparison_table(results, num_resamples)]
    return parts


def probe_table(probes: list[ProbeResult]) -> str:
    rows = ["| factor | split | train/test vectors | chance | acc(z1) | acc(z2) |",
            "|---|---|---:|---:|---:|---:|"]
    rows += [f"| {p.factor} ({p.num_classes} classes) | by {p.split} | "
             f"{p.num_train}/{p.num_test} | {100 * p.chance:.1f}% | "
             f"{100 * p.acc_z1:.1f}% | {100 * p.acc_z2:.1f}% |" for p in probes]
    return "\n".join(rows) + "\n"


def latent_record(s: EvalSummary) -> dict:
    """The swap, re-combination and robust-ASR numbers for summary.json (None: not run)."""
    return {
        "swap": None if s.swap is None else {
            "segments": s.swap.num_segments, "log_px_own": s.swap.log_px_own,
            "ratio": s.swap.ratio, **{key: {"cost": c.mean, "stderr": c.stderr} for key, c in (
                ("z1_swap", s.swap.z1_swap), ("z2_utt_mean", s.swap.z2_utt_mean),
                ("z2_other_utt", s.swap.z2_other_utt))}},
        "recombination": None if s.recombination is None else {
            c.test: {"chance": c.chance, "decoded": c.acc_decoded, "real": c.acc_real,
                     "num": c.num} for c in s.recombination.checks},
        "asr_probe": None if s.asr is None else {
            c.condition: {"chance": c.chance, **c.acc} for c in s.asr.conditions},
    }


def summary_record(s: EvalSummary) -> dict:
    """The numbers of results.md as plain data (summary.json), for sweeps and regressions."""
    return {
        "data_dir": s.data_dir, "model": s.model, "seed": s.seed,
        **({"adaptation": s.adaptation.record()} if s.adaptation else {}),
        "systems": {r.name: {"eer": r.eer, "eer_interval": r.eer_interval, "min_dcf": r.min_dcf,
                             "min_dcf_interval": r.min_dcf_interval, "trials": r.trials}
                    for v in s.verification for r in v.systems},
        "num_trials": {v.trial_list.name: [v.trial_list.num_target, v.trial_list.num_nontarget]
                       for v in s.verification},
        "comparisons": {f"{c.system_a} - {c.system_b}": {
            "difference": c.difference, "interval": c.interval, "share_a_lower": c.share_a_lower,
            "p_value": c.p_value, "p_holm": c.p_holm,
            "corrected_interval": c.corrected_interval, "verdict": VERDICTS[c.verdict]}
            for v in s.verification for c in v.comparisons},
        "probes": {p.factor: {"chance": p.chance, "z1": p.acc_z1, "z2": p.acc_z2,
                              "split": p.split} for p in s.probes},
        **latent_record(s),
    }


def swap_section(r: SwapResult) -> list[str]:
    rows = ["| z1, z2 of the segment, except | cost (nats/segment) | std. error |",
            "|---|---:|---:|"]
    rows += [f"| {c.label} | {c.mean:.1f} | {c.stderr:.1f} |"
             for c in (r.z1_swap, r.z2_utt_mean, r.z2_other_utt)]
    return ["## Swap test\n",
            f"Decoder log-likelihood log p(x|z1,z2) of {r.num_segments} seeded non-overlapping "
            f"{r.seg_len}-frame segments of {r.num_utts} utterances (posterior means; FBank "
            "normalised as in training; summed over frames and bins): "
            f"{r.log_px_own:.1f} nats per segment with the segment's own z1 and z2. A swap's "
            "cost is how much that drops when one latent is replaced; a latent whose value the "
            "decoder ignores costs 0.\n",
            "\n".join(rows) + "\n",
            f"Disentanglement ratio, cost(z2 → its utterance's mean) / cost(z1 swapped): "
            f"**{r.ratio:.3f}** (0 when z2 is purely sequence-level).\n"]


def recombination_section(r: RecombineScore | None, figure: tuple[str, str] | None) -> list[str]:
    if r is None:
        return ["## Re-combination\n"] + ([f"![{figure[0]}]({figure[1]})\n"] if figure else [])
    rows = ["| test | scored | chance | decoded | real segment |", "|---|---:|---:|---:|---:|"]
    rows += [f"| {c.test} | {c.num} | {100 * c.chance:.1f}% | {100 * c.acc_decoded:.1f}% | "
             f"{100 * c.acc_real:.1f}% |" for c in r.checks]
    parts = ["## Re-combination score\n",
             f"z1 of a random segment of x^A decoded with z2 of a random segment of x^B, for "
             f"{r.num_pairs} seeded pairs of utterances of different speakers (and, where "
             f"possible, different noise and channel) drawn from {r.num_pair_utts} evaluated "
             "utterances. Shrinkage-LDA classifiers trained on real normalised FBank of the "
             f"other {r.num_fit_utts} evaluated utterances (same speakers, never A's or B's "
             "utterance) label each decoded segment (speaker, noise, channel: from its mean "
             "frame) and each decoded frame (phone class). *B's rather than A's*: the "
             "classifier's posterior for B's label beats A's (pairs whose labels differ); "
             "*phone class: A's rather than B's*: the same on frames where A's and B's "
             "alignments differ. *Real segment* applies the same classifier to the real x^B "
             "(factors) or x^A (phone class): what a perfect re-combination would score. "
             "Good: decoded close to real and far above chance.\n",
             "\n".join(rows) + "\n"]
    if figure:
        parts.append(f"![{figure[0]}]({figure[1]})\n")
    return parts


def asr_section(r: AsrProbeResult) -> list[str]:
    names = list(r.conditions[0].acc) if r.conditions else []
    rows = ["| test condition | utterances | frames | chance | "
            + " | ".join(names) + " |", "|---|---:|---:|---:|" + "---:|" * len(names)]
    rows += [f"| {c.condition} | {c.num_utts} | {c.num_frames} | {100 * c.chance:.1f}% | "
             + " | ".join(f"{100 * c.acc[n]:.1f}%" for n in names) + " |" for c in r.conditions]
    return ["## Robust-ASR probe\n",
            "Frame phone classification (espeak phones of the alignment) by shrinkage LDA, "
            f"trained on one labelled frame in {r.stride} of {r.num_train_utts} clean "
            f"close-talk training utterances ({r.num_train_frames} frames, {r.num_classes} "
            f"classes; {r.num_merged} phones with fewer than {MIN_PHONE_FRAMES} training frames "
            f"merged into \"{OTHER}\") and tested on one labelled frame in {r.stride} of the "
            "evaluated set, per condition. Inputs: z1; z2; FBank normalised as the model sees it; "
            "z1 and z2 concatenated; FBank with per-utterance mean and variance normalisation; "
            f"both FBank inputs spliced over z1's window (every {SPLICE_HOP}th frame of the "
            "window z1 is encoded from, concatenated). "
            "Chance = always the most frequent training phone. A content latent free of noise "
            "and channel should lose less accuracy than FBank away from clean close-talk.\n",
            "\n".join(rows) + "\n"]


def latent_sections(s: EvalSummary) -> list[str]:
    """The swap test, re-combination score and robust-ASR probe, where they were run."""
    return ((swap_section(s.swap) if s.swap else [])
            + (recombination_section(s.recombination, s.recombine_figure)
               if s.recombination or s.recombine_figure else [])
            + (asr_section(s.asr) if s.asr else []))


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
        *([f"- {s.adaptation.describe()}"] if s.adaptation else []),
        *[f"- {v.trial_list.title}: "
          f"{len(v.trial_list.trials)} ({v.trial_list.num_target} target)."
          for v in s.verification],
        f"- Best verification system: {best.name}, EER {best.eer:.2f}%.",
        *[f"- {note}" for note in s.notes],
        "",
        "## Speaker verification\n",
        "EER is interpolated where miss and false-alarm rates cross; minDCF uses "
        "C_miss = C_fa = 1 and is divided by min(p_target, 1 - p_target) as in Kaldi. "
        "Baselines: an i-vector system trained on the same training set (when stage 5 is "
        "given i-vectors); per-utterance mean and standard deviation (`fbank-meanstd`) and "
        "mean alone (`fbank-mean`) of FBank normalised with the model's MVN statistics. "
        "Back-ends are fitted on the training set"
        + (f"; those marked so are adapted to `{s.adaptation.adaptation.name}`.\n"
           if s.adaptation else ".\n"),
        *verification_section(s.verification, s.num_resamples),
        "## Factor probes\n",
        f"Standardised logistic regression on one z1/z2 frame per {s.probe_stride}-frame "
        "segment. Train and test never share an utterance; a factor that is fixed per speaker "
        "(e.g. gender) is split by speaker, so it cannot be learnt through the speaker "
        "identity; other factors are split by utterance, each speaker's utterances divided "
        "between the two sides. Chance = always answering the most frequent training class.\n",
        probe_table(s.probes),
        *latent_sections(s),
    ]
    if s.figures:
        parts.append("## Figures\n")
        parts += [f"{caption}\n\n![{caption}]({name})\n" for caption, name in s.figures]
    return "\n".join(parts)
