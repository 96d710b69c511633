"""Writing figures, shared by the t-SNE and re-combination plots and the listening page's
spectrograms (no pyplot: no global state)."""

from __future__ import annotations

import os

from matplotlib.figure import Figure

from fhvae.io.atomic import atomic_path


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = 100) -> None:
    """Write a PNG atomically (temporary name, then rename)."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
