"""t-SNE scatter plots of z1 and z2 coloured by every labelled factor (like paper Fig. 3).

Points are segment-level vectors (one frame per 20-frame segment) from the utterances of a
fixed, seeded subset of speakers, so a speaker legend stays readable.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from sklearn.manifold import TSNE

from fhvae.analysis.figures import save_figure
from fhvae.evaluate.inputs import EvalSet
from fhvae.evaluate.probes import frame_indices, frame_labels
from fhvae.io.labels import NO_LABEL

log = logging.getLogger(__name__)

MAX_LEGEND_CLASSES = 10


@dataclass
class TsnePoints:
    z1: np.ndarray                     # (N, z1_dim)
    z2: np.ndarray                     # (N, z2_dim)
    labels: dict[str, np.ndarray]      # factor -> (N,) labels, NO_LABEL where unknown


def sample_points(evalset: EvalSet, seed: int, num_speakers: int = 10,
                  max_points: int = 1500, min_stride: int = 20) -> TsnePoints:
    """Frames of `num_speakers` seeded speakers, strided so that at most `max_points` remain."""
    rng = np.random.default_rng(seed)
    speakers = sorted(set(evalset.utt2spk.values()))
    chosen = set(rng.choice(speakers, min(num_speakers, len(speakers)), replace=False))
    utts = [u for u in evalset.utts if evalset.utt2spk[u] in chosen]
    total = sum(evalset.z1[u].shape[0] for u in utts)
    stride = max(min_stride, -(-total // max_points))
    idx = {u: frame_indices(evalset.z1[u].shape[0], stride) for u in utts}
    labels = {factor: np.concatenate([lab[u][idx[u]] for u in utts]).astype(str)
              for factor, lab in frame_labels(evalset).items()}
    points = TsnePoints(z1=np.concatenate([evalset.z1[u][idx[u]] for u in utts]),
                        z2=np.concatenate([evalset.z2[u][idx[u]] for u in utts]),
                        labels=labels)
    if points.z1.shape[0] > max_points:   # frame_indices keeps >= 1 frame per utterance
        keep = np.sort(rng.choice(points.z1.shape[0], max_points, replace=False))
        points = TsnePoints(points.z1[keep], points.z2[keep],
                            {f: lab[keep] for f, lab in labels.items()})
    return points


def tsne_2d(x: np.ndarray, seed: int, perplexity: float = 30.0) -> np.ndarray:
    """Seeded 2-D t-SNE; perplexity is lowered for tiny point sets (it must be < N)."""
    perplexity = min(perplexity, max(1.0, (x.shape[0] - 1) / 3))
    return TSNE(n_components=2, perplexity=perplexity, init="pca",
                random_state=seed).fit_transform(np.asarray(x, dtype=np.float64))


def _scatter(ax, xy: np.ndarray, labels: np.ndarray, title: str) -> None:
    classes = sorted(set(labels) - {NO_LABEL})
    if NO_LABEL in set(labels):
        none = labels == NO_LABEL
        ax.scatter(xy[none, 0], xy[none, 1], s=4, c="lightgrey", label="(none)")
    cmap = matplotlib.colormaps["tab10" if len(classes) <= 10 else "nipy_spectral"]
    for k, cls in enumerate(classes):
        sel = labels == cls
        color = cmap(k if len(classes) <= 10 else k / max(1, len(classes) - 1))
        ax.scatter(xy[sel, 0], xy[sel, 1], s=4, color=color, label=cls)
    if len(classes) <= MAX_LEGEND_CLASSES:
        ax.legend(fontsize=6, markerscale=2, loc="best")
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_grid(projections: dict[str, np.ndarray], labels: dict[str, np.ndarray],
              path: str | os.PathLike, transpose: bool = False) -> None:
    """One panel per (factor, latent): factors as rows and latents as columns (or transposed)."""
    factors, latents = list(labels), list(projections)
    rows, cols = (len(latents), len(factors)) if transpose else (len(factors), len(latents))
    fig = Figure(figsize=(3.5 * cols, 3.2 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for i, factor in enumerate(factors):
        for j, latent in enumerate(latents):
            ax = axes[j, i] if transpose else axes[i, j]
            _scatter(ax, projections[latent], labels[factor], f"{latent}: {factor}")
    save_figure(fig, path)


def make_tsne_figures(evalset: EvalSet, out_dir: str | os.PathLike, seed: int,
                      num_speakers: int = 10, max_points: int = 1500) -> list[Path]:
    """Write tsne_z1.png and tsne_z2.png (one row of factors each) and the tsne.png grid."""
    out_dir = Path(out_dir)
    points = sample_points(evalset, seed, num_speakers, max_points)
    log.info("t-SNE of %d segments from %d speakers", points.z1.shape[0],
             len(set(points.labels["speaker"])))
    proj = {"z1": tsne_2d(points.z1, seed), "z2": tsne_2d(points.z2, seed)}
    paths = [out_dir / "tsne_z1.png", out_dir / "tsne_z2.png", out_dir / "tsne.png"]
    plot_grid({"z1": proj["z1"]}, points.labels, paths[0], transpose=True)
    plot_grid({"z2": proj["z2"]}, points.labels, paths[1], transpose=True)
    plot_grid(proj, points.labels, paths[2])
    return paths
