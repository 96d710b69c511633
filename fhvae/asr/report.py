"""WER tables of Kaldi systems per recording condition, each against a baseline system.

One table per (training set, evaluation set): a row per noise x channel condition of the
evaluation set (and one for all of it), a column per feature type. Every system is read at
the language-model weight and insertion penalty that were best for it on dev; each cell that
is not the baseline's carries the relative change and the paired speaker-bootstrap interval
of the difference, corrected over the table's comparisons.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from fhvae.asr.kaldi_decode import best_on, kaldi_wer, read_hypotheses
from fhvae.asr.wer import (Errors, WerDifference, correct_family, speaker_bootstrap, sum_by,
                           utterance_errors)
from fhvae.errors import FhvaeError
from fhvae.io.atomic import write_text_atomic
from fhvae.io.datadir import TEXT, UTT2CHANNEL, UTT2NOISE, UTT2SPK, DataDir

ALL = "all"


@dataclass
class EvalSet:
    """What scoring needs of an evaluation data dir: references, speakers, conditions."""

    name: str
    refs: dict[str, list[str]]
    spk_of: dict[str, str]
    condition_of: dict[str, str]

    @classmethod
    def read(cls, data_dir: str | os.PathLike) -> "EvalSet":
        """From `text`, `utt2spk`, `utt2noise` and `utt2channel` (condition 'noise/channel')."""
        data = DataDir(data_dir)
        refs = {u: w.split() for u, w in data.pairs(TEXT)}
        noise, channel = data.table(UTT2NOISE), data.table(UTT2CHANNEL)
        missing = [u for u in refs if u not in noise or u not in channel]
        if missing:
            raise FhvaeError(f"{data}: no utt2noise/utt2channel entry for '{missing[0]}'")
        return cls(data.path.name, refs, data.table(UTT2SPK),
                   {u: f"{noise[u]}/{channel[u]}" for u in refs})


@dataclass
class SystemScore:
    """One system on one evaluation set, at the (LMWT, WIP) chosen on dev."""

    name: str
    lmwt: int
    wip: str
    errors: dict[str, Errors]                  # per utterance
    by_condition: dict[str, Errors] = field(default_factory=dict)


def score_decode(name: str, decode_dir: str | os.PathLike, lmwt: int, wip: str,
                 eval_set: EvalSet) -> SystemScore:
    """Per-utterance errors of a decode dir at (LMWT, WIP), checked against compute-wer's own
    count for the same hypotheses (a mismatch means the references differ: refused)."""
    hyps = read_hypotheses(decode_dir, lmwt, wip)
    errors = utterance_errors(eval_set.refs, hyps, where=str(decode_dir))
    total = sum(errors.values(), Errors())
    kaldi = kaldi_wer(decode_dir, lmwt, wip)
    if set(hyps) == set(eval_set.refs) and (kaldi.errors, kaldi.words) != (total.total, total.words):
        raise FhvaeError(f"{decode_dir}: compute-wer counts {kaldi.errors}/{kaldi.words} errors/"
                         f"words at LMWT {lmwt}, WIP {wip}; the references give "
                         f"{total.total}/{total.words}")
    by_condition = sum_by(errors, eval_set.condition_of)
    by_condition[ALL] = total
    return SystemScore(name, lmwt, wip, errors, by_condition)


def compare_to(baseline: SystemScore, other: SystemScore, eval_set: EvalSet,
               num_resamples: int, seed: int) -> list[WerDifference]:
    """other - baseline per condition and for the whole set (speaker bootstrap, paired)."""
    per_condition = speaker_bootstrap(other.errors, baseline.errors, eval_set.spk_of,
                                      eval_set.condition_of, num_resamples, seed)
    whole = speaker_bootstrap(other.errors, baseline.errors, eval_set.spk_of,
                              {u: ALL for u in eval_set.refs}, num_resamples, seed)
    return per_condition + whole


def _cell(score: SystemScore, diff: WerDifference | None, condition: str) -> str:
    wer = score.by_condition[condition].wer
    if diff is None:
        return f"{wer:.1f}"
    lo, hi = diff.corrected_interval or diff.interval
    mark = "**" if lo > 0 or hi < 0 else ""
    return f"{mark}{wer:.1f}{mark} ({diff.relative:+.0f} %; {lo:+.1f} … {hi:+.1f})"


def markdown_table(title: str, scores: Sequence[SystemScore],
                   diffs: dict[str, dict[str, WerDifference]]) -> str:
    """A table: rows = conditions then 'all', columns = systems (the first is the baseline)."""
    conditions = [c for c in scores[0].by_condition if c != ALL] + [ALL]
    header = ["condition", "words"] + [s.name for s in scores]
    lines = [f"### {title}", "", "| " + " | ".join(header) + " |",
             "|" + "---|" * 2 + "---:|" * len(scores)]
    for c in conditions:
        words = scores[0].by_condition[c].words
        cells = [_cell(s, diffs.get(s.name, {}).get(c), c) for s in scores]
        lines.append(f"| {c} | {words} | " + " | ".join(cells) + " |")
    chosen = ", ".join(f"{s.name} {s.lmwt}/{s.wip}" for s in scores)
    return "\n".join(lines + ["", f"LM weight / insertion penalty (chosen on dev): {chosen}", ""])


def build_report(systems: dict[str, Path], groups: dict[str, list[str]], baseline_of: dict[str, str],
                 dev_set: str, eval_dirs: dict[str, Path], num_resamples: int = 1000,
                 seed: int = 777) -> tuple[str, dict]:
    """Markdown and a JSON-ready summary of every (group, evaluation set) table.

    systems: name -> model dir holding decode_<set>/ for dev_set and every evaluation set;
    groups: a table's title (e.g. the training set) -> its systems, baseline first;
    baseline_of: group -> its baseline system; eval_dirs: evaluation set -> data dir.
    The (LMWT, WIP) of a system is its best on dev_set, used for every set, dev included."""
    chosen = {name: best_on(model / f"decode_{dev_set}") for name, model in systems.items()}
    sections, summary = [], {}
    for set_name, data_dir in eval_dirs.items():
        eval_set = EvalSet.read(data_dir)
        for group, names in groups.items():
            scores = [score_decode(n, systems[n] / f"decode_{set_name}", chosen[n].lmwt,
                                   chosen[n].wip, eval_set) for n in names]
            base = next(s for s in scores if s.name == baseline_of[group])
            family = {s.name: compare_to(base, s, eval_set, num_resamples, seed)
                      for s in scores if s is not base}
            correct_family([d for ds in family.values() for d in ds])
            diffs = {n: {d.group: d for d in ds} for n, ds in family.items()}
            title = f"{group}: {set_name}" + (" (dev: every choice is made here)"
                                              if set_name == dev_set else "")
            sections.append(markdown_table(title, scores, diffs))
            summary[f"{group}/{set_name}"] = {
                s.name: {c: {"wer": e.wer, "errors": e.total, "words": e.words,
                             **({"diff": diffs[s.name][c].difference,
                                 "corrected_interval": diffs[s.name][c].corrected_interval,
                                 "p_holm": diffs[s.name][c].p_holm}
                                if s.name in diffs else {})}
                         for c, e in s.by_condition.items()}
                for s in scores}
    return "\n".join(sections), summary


def gap_closed(summary: dict, group: str, names: Sequence[str],
               sets: Sequence[str]) -> dict[str, dict]:
    """Per evaluation set, the WER gap in points from the first system (e.g. clean-only) to the
    last (the oracle, e.g. multi-condition) and the share of it that each system between
    closes: what augmentation is judged by (1: as good as the oracle, 0: no better than
    without it, negative: worse). None where the oracle is not better than the first system:
    there is no gap, and a ratio of two negative numbers would read as progress."""
    out = {}
    for set_name in sets:
        wer = {n: summary[f"{group}/{set_name}"][n][ALL]["wer"] for n in names}
        gap = wer[names[0]] - wer[names[-1]]
        out[set_name] = {"gap": gap, "share": {
            n: (wer[names[0]] - wer[n]) / gap if gap > 0 else None for n in names[1:-1]}}
    return out


def gap_lines(gaps: dict[str, dict]) -> str:
    """Markdown list of gap_closed()'s shares."""
    lines = ["", "Share of the gap between the first and the last system closed:", ""]
    for set_name, entry in gaps.items():
        lines += [f"- {set_name}: {n} closes "
                  + (f"{share:.2f} of {entry['gap']:.1f} points" if share is not None
                     else f"nothing: there is no gap ({entry['gap']:+.1f} points)")
                  for n, share in entry["share"].items()]
    return "\n".join(lines) + "\n"


def write_report(out: str | os.PathLike, header: str, body: str, summary: dict) -> None:
    """RESULTS.md-style file and its summary.json beside it, each written atomically."""
    out = Path(out)
    write_text_atomic(out, header + "\n" + body)
    write_text_atomic(out.with_suffix(".json"), json.dumps(summary, indent=1) + "\n")
