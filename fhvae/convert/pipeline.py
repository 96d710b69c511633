"""`python -m fhvae convert`: convert the held-out utterances of a data dir, write their
audio, score them, and build the listening page.

  <out-dir>/wav/<src>_to_<target>.wav   converted audio of every scored pair
  <out-dir>/wav/<src>.resynth.wav       the source's real FBank inverted (the inversion's cost)
  <out-dir>/wav/<utt>.source.wav        original audio of the page's sources and targets (the
                                        FBank re-synthesised when the data dir has no wav.scp)
  <out-dir>/png/<pair>.png              spectrograms of the page's examples
  <out-dir>/index.html                  the listening page
  <out-dir>/scores.md, scores.tsv       the objective scores (fhvae/convert/scores.py)

WAVs are 16-bit PCM at the FBank's sample rate; the re-analysed FBank is taken from exactly
the samples written (after rounding and clipping).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fhvae.convert.audio import Audio, Synthesiser, original_audio, write_wav
from fhvae.convert.mel_inversion import check_invertible, mel_distortion_db
from fhvae.convert.page import Example, save_spectrograms, write_page
from fhvae.convert.pairs import Pair, choose_pairs, hold_out
from fhvae.convert.report import scores_markdown
from fhvae.convert.scores import (DISTORTION_OF, Judges, PairScores, judge, scores_tsv, summarise,
                                  train_judges)
from fhvae.convert.voices import (Z2_MODES, convert_utterance, decode_utterance,
                                  encode_utterances, group_means)
from fhvae.errors import FhvaeError
from fhvae.features.fbank import FbankConfig, read_fbank_config
from fhvae.features.mvn import MVN
from fhvae.inference import FRAME_MODES, Latents, load
from fhvae.io.atomic import write_text_atomic
from fhvae.io.datadir import FACTOR_FILES, PHONE_CTM, DataDir
from fhvae.io.labels import NO_LABEL, read_ctm_frame_labels
from fhvae.model import FHVAE
from fhvae.progress import progress

log = logging.getLogger(__name__)


@dataclass
class ConvertOptions:
    """What is converted and how (defaults chosen on data/dev: docs/convert.md)."""

    num_pairs: int = 4              # examples on the listening page
    seed: int = 777
    target_factor: str = "speaker"  # speaker, noise, channel or gender (utt2<factor>)
    z2_mode: str = "shift"
    frame_mode: str = "centre"
    max_sources: int = 0            # scored pairs: 0 = one source per group
    griffin_lim_iters: int = 64
    fbank_config: str | None = None  # Kaldi FBank options of the features (None: Kaldi's
                                     # defaults with --num-mel-bins=80 --dither=0)
    device: str = "auto"
    num_threads: int = 0


@dataclass
class Converted:
    pair: Pair
    fbanks: dict[str, np.ndarray] = field(default_factory=dict)   # version -> raw FBank
    audio: dict[str, Audio] = field(default_factory=dict)          # version -> its audio


def check_options(opts: ConvertOptions) -> None:
    if opts.target_factor not in FACTOR_FILES:
        raise FhvaeError(f"unknown target factor '{opts.target_factor}' "
                         f"({', '.join(FACTOR_FILES)})")
    if opts.z2_mode not in Z2_MODES or opts.frame_mode not in FRAME_MODES:
        raise FhvaeError(f"z2 mode must be one of {Z2_MODES}, frame mode one of {FRAME_MODES}")
    if opts.num_pairs < 0 or opts.max_sources < 0 or opts.griffin_lim_iters < 1:
        raise FhvaeError("--num-pairs and --max-sources must be >= 0, --griffin-lim-iters >= 1")


def fbank_config(path: str | None, feat_dim: int) -> FbankConfig:
    config = read_fbank_config(path) if path else FbankConfig(dither=0.0)
    check_invertible(config)
    if config.num_mel_bins != feat_dim:
        raise FhvaeError(f"{path or 'default FBank config'}: --num-mel-bins="
                         f"{config.num_mel_bins} but the model's features have {feat_dim} dims")
    return config


def read_labels(data_dir: Path, utts: list[str], factor: str) -> dict[str, str]:
    """The target factor's label of every utterance of feats.scp."""
    data = DataDir(data_dir)
    path = data.file(FACTOR_FILES[factor])
    if not path.is_file():
        raise FhvaeError(f"{path}: not found (needed for --target-factor {factor})")
    labels = data.table(FACTOR_FILES[factor])
    missing = next((u for u in utts if u not in labels), None)
    if missing is not None:
        raise FhvaeError(f"{path}: no entry for utterance '{missing}' of feats.scp")
    return {u: labels[u] for u in utts}


def convert_pairs(model: FHVAE, mvn: MVN, pairs: list[Pair], latents: dict[str, Latents],
                  targets: dict[str, np.ndarray], feats: dict[str, np.ndarray],
                  synth: Synthesiser, wav_dir: Path, opts: ConvertOptions) -> list[Converted]:
    """Every version of every pair's source, with the audio of the re-synthesised source
    and of the conversion."""
    out = []
    for pair in progress(pairs, "convert"):
        lat = latents[pair.source]
        item = Converted(pair)
        item.fbanks["source FBank"] = feats[pair.source]
        item.fbanks["source reconstructed"] = decode_utterance(model, mvn, lat, lat.z2,
                                                               opts.frame_mode)
        item.fbanks["converted FBank"] = convert_utterance(model, mvn, lat, targets[pair.target],
                                                           opts.z2_mode, opts.frame_mode)
        item.audio["source re-synthesised"] = synth(feats[pair.source],
                                                    wav_dir / f"{pair.source}.resynth.wav")
        item.audio["converted audio"] = synth(item.fbanks["converted FBank"],
                                              wav_dir / f"{pair.name}.wav")
        for version, audio in item.audio.items():
            item.fbanks[version] = audio.fbank
        out.append(item)
    return out


def score(items: list[Converted], judges: Judges,
          utt2spk: dict[str, str]) -> list[PairScores]:
    scores = []
    for item in items:
        p = item.pair
        distortions = {v: mel_distortion_db(item.fbanks[ref], item.fbanks[v])
                       for v, ref in DISTORTION_OF.items()}
        scores.append(PairScores(p.source, p.source_group, p.target, utt2spk[p.source],
                                 judge(judges, p.source, item.fbanks, distortions)))
    return scores


def choose_examples(pairs: list[Pair], enrol_of: dict[str, list[str]], num: int,
                    seed: int) -> list[tuple[int, str]]:
    """(index into `pairs`, an enrolment utterance of its target) for `num` seeded pairs."""
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(len(pairs), min(num, len(pairs)), replace=False).tolist())
    return [(i, enrol_of[pairs[i].target][rng.integers(len(enrol_of[pairs[i].target]))])
            for i in chosen]


def build_page(out_dir: Path, title: str, items: list[Converted],
               examples: list[tuple[int, str]], originals: dict[str, tuple[np.ndarray, int]],
               feats: dict[str, np.ndarray], synth: Synthesiser, opts: ConvertOptions) -> Path:
    """Index.html for the example pairs: source, target, converted and re-synthesised
    source audio, and their spectrograms."""
    factor = opts.target_factor
    shown = []
    for index, tgt in examples:
        it = items[index]
        p = it.pair
        for utt in (p.source, tgt):
            path = out_dir / "wav" / f"{utt}.source.wav"
            if utt in originals:
                write_wav(path, *originals[utt])
            else:
                synth(feats[utt], path)
        save_spectrograms(out_dir / "png" / f"{p.name}.png", [
            (f"source {p.source} ({p.source_group}): FBank", feats[p.source]),
            (f"target {tgt} ({p.target}): FBank", feats[tgt]),
            (f"converted: decoded FBank (z1 of {p.source}, z2 of {p.target})",
             it.fbanks["converted FBank"]),
            ("converted: FBank re-analysed from the converted audio",
             it.fbanks["converted audio"])])
        kind = "original" if p.source in originals else "FBank re-synthesised"
        shown.append(Example(
            title=f"{p.source} ({factor} {p.source_group}) to {factor} {p.target}",
            audio={f"source {p.source} ({kind})": f"wav/{p.source}.source.wav",
                   f"target {tgt}": f"wav/{tgt}.source.wav",
                   "converted": f"wav/{p.name}.wav",
                   "source re-synthesised from its FBank": f"wav/{p.source}.resynth.wav"},
            image=f"png/{p.name}.png"))
    intro = (f"<p>Each source utterance's z1 decoded frame by frame with the z2 of a target "
             f"{factor} ({opts.z2_mode}, {opts.frame_mode} frames), turned into audio by "
             f"Griffin-Lim through Kaldi's mel filterbank ({opts.griffin_lim_iters} "
             f"iterations). <i>Re-synthesised</i>: the source's real FBank through the same "
             f"inversion, what the inversion alone costs. Scores: "
             f'<a href="scores.md">scores.md</a>.</p>')
    return write_page(out_dir / "index.html", f"Voice conversion: {title}", intro, shown)


@dataclass
class Inputs:
    """What a data dir gives the conversion: FBank, labels, and who plays which part."""

    feats: dict[str, np.ndarray]      # raw FBank of every utterance with frames
    utt2group: dict[str, str]         # the target factor's label
    utt2spk: dict[str, str]
    phones: dict[str, np.ndarray]     # frame phones (all NO_LABEL without phone_ali.ctm)
    enrol: list[str]                  # build the targets and train the judges
    sources: list[str]                # held out, converted


def read_inputs(data_dir: Path, feat_dim: int, opts: ConvertOptions) -> Inputs:
    feats = {u: f for u, f in DataDir(data_dir).feats(dim=feat_dim) if f.shape[0] > 0}
    utts = sorted(feats)
    utt2group = read_labels(data_dir, utts, opts.target_factor)
    enrol, sources = hold_out(utt2group, opts.seed)
    if opts.max_sources and len(sources) > opts.max_sources:
        rng = np.random.default_rng(opts.seed)
        sources = sorted(rng.choice(sources, opts.max_sources, replace=False).tolist())
    if not sources:
        raise FhvaeError(f"{data_dir}: no {opts.target_factor} has two utterances with frames")
    ctm = data_dir / PHONE_CTM
    phones = (read_ctm_frame_labels(ctm, {u: feats[u].shape[0] for u in utts}, column="phone")
              if ctm.is_file()
              else {u: np.full(feats[u].shape[0], NO_LABEL, dtype=object) for u in utts})
    return Inputs(feats, utt2group, read_labels(data_dir, utts, "speaker"), phones, enrol,
                  sources)


def convert_data_dir(model_path: str | os.PathLike, data_dir: str | os.PathLike,
                     out_dir: str | os.PathLike, opts: ConvertOptions) -> list[PairScores]:
    """Convert, write audio, score and build the page (see the module doc). Every input is
    read and checked before the first file is written."""
    check_options(opts)
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    model, mvn, _ = load(model_path, opts.device)
    config = fbank_config(opts.fbank_config, mvn.dim)
    data = read_inputs(data_dir, mvn.dim, opts)
    judges = train_judges(data.feats, data.enrol, data.utt2group, data.phones, mvn)
    enrol_latents = encode_utterances(model, mvn, data.feats, data.enrol, svector_only=True)
    targets = group_means({u: lat.svector for u, lat in enrol_latents.items()}, data.utt2group)
    pairs = choose_pairs(data.sources, data.utt2group, sorted(targets), opts.seed + 1)
    enrol_of: dict[str, list[str]] = {}
    for u in data.enrol:
        enrol_of.setdefault(data.utt2group[u], []).append(u)
    examples = choose_examples(pairs, enrol_of, opts.num_pairs, opts.seed + 2)
    originals = original_audio(data_dir, {pairs[i].source for i, _ in examples}
                               | {utt for _, utt in examples})
    log.info("converting %d held-out utterances; %d enrolment utterances of %d %s groups",
             len(pairs), len(data.enrol), len(targets), opts.target_factor)
    synth = Synthesiser(config, opts.griffin_lim_iters, opts.seed)
    items = convert_pairs(model, mvn, pairs,
                          encode_utterances(model, mvn, data.feats, data.sources), targets,
                          data.feats, synth, out_dir / "wav", opts)
    scores = score(items, judges, data.utt2spk)
    write_text_atomic(out_dir / "scores.tsv", scores_tsv(scores))
    write_text_atomic(out_dir / "scores.md", scores_markdown(
        summarise(scores, opts.seed), data_dir, opts, num_pairs=len(pairs),
        num_enrol=len(data.enrol), num_groups=len(targets),
        phone_chance=judges.phone_chance(data.sources)))
    page = build_page(out_dir, data_dir.name, items, examples, originals, data.feats, synth,
                      opts)
    log.info("wrote %d conversions, %s and %s", len(items), out_dir / "scores.md", page)
    return scores
