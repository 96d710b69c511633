"""scores.md: the conversion scores as a Markdown table that says how they were made."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from fhvae.convert.scores import Summary

if TYPE_CHECKING:
    from fhvae.convert.pipeline import ConvertOptions


def _percent(value: tuple[float, float, float] | None) -> str:
    if value is None:
        return "-"
    return f"{100 * value[0]:.1f}% [{100 * value[1]:.1f}, {100 * value[2]:.1f}]"


def _db(value: tuple[float, float, float] | None) -> str:
    return "-" if value is None else f"{value[0]:.2f} [{value[1]:.2f}, {value[2]:.2f}]"


def scores_markdown(summary: list[Summary], data_dir: Path, opts: "ConvertOptions",
                    num_pairs: int, num_enrol: int, num_groups: int,
                    phone_chance: float) -> str:
    """The table of `summary` with the set-up in words."""
    factor = opts.target_factor
    lines = [
        f"# Voice conversion scores: {data_dir}",
        "",
        f"One held-out utterance of every {factor} of `{data_dir}` (seed {opts.seed}) is "
        f"converted into a seeded other {factor}: its z1 per frame decoded with the target's "
        f"z2 ({opts.z2_mode}, from the target's mean s-vector over its enrolment utterances, "
        f"{num_enrol} in all; {opts.frame_mode} frame of each decoded window), then inverted "
        f"to audio (Kaldi mel filterbank, non-negative least squares, {opts.griffin_lim_iters} "
        f"Griffin-Lim iterations) and re-analysed with the same FBank settings: "
        f"{num_pairs} converted utterances.",
        "",
        f"Judges trained on real FBank of the enrolment utterances: a shrinkage-LDA {factor} "
        f"classifier on the utterance mean + std of normalised FBank ({num_groups} classes, "
        f"chance {100 / max(num_groups, 1):.1f}%), and a frame phone classifier (shrinkage LDA "
        f"on single normalised frames; accuracy against the SOURCE's phone_ali.ctm, chance "
        f"{100 * phone_chance:.1f}% = always the most frequent training phone). Mel distortion: "
        f"mean over frames of the RMS over the mel bins of the dB difference between an FBank "
        f"and the FBank it is compared with (re-synthesised and reconstructed source: the real "
        f"FBank; converted audio: the converted FBank it was inverted from). Brackets: 95% "
        f"bootstrap intervals over source speakers.",
        "",
        f"| version of the source | judged target {factor} | judged source {factor} | "
        f"phone accuracy | mel distortion (dB) |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in summary:
        lines.append(f"| {row.version} | {_percent(row.to_target)} | {_percent(row.to_source)} "
                     f"| {_percent(row.phone_acc)} | {_db(row.distortion_db)} |")
    return "\n".join(lines) + "\n"
