"""The listening page: a static index.html with audio players and spectrograms per example.

Every link is relative (wav/..., png/...), so the folder can be copied or served as it is.
A few lines of inline script count the audio elements whose metadata loaded and write
the count into #audio-status (and each element's duration into data-duration), so that a
headless browser can tell that the files are playable without anyone listening.
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from fhvae.analysis.figures import save_figure
from fhvae.io.atomic import write_text_atomic

STATUS_SCRIPT = """<script>
(function () {
  var players = document.querySelectorAll("audio");
  var status = document.getElementById("audio-status");
  var loaded = 0, failed = 0;
  function show() {
    status.textContent = loaded + " of " + players.length + " audio loaded, " + failed + " failed";
  }
  players.forEach(function (a) {
    a.addEventListener("loadedmetadata", function () {
      a.dataset.duration = a.duration.toFixed(3); loaded += 1; show();
    });
    a.addEventListener("error", function () { a.dataset.duration = "error"; failed += 1; show(); });
    a.load();
  });
  show();
})();
</script>"""


@dataclass
class Example:
    """One conversion on the page: audio (label -> path relative to the page) and the
    spectrogram image's relative path."""

    title: str
    audio: dict[str, str]
    image: str


def save_spectrograms(path: str | os.PathLike, panels: list[tuple[str, np.ndarray]]) -> None:
    """A PNG of log-mel FBanks one above the other (time right, mel bins up), one colour
    scale for all so that levels compare."""
    low = min(float(f.min()) for _, f in panels)
    high = max(float(f.max()) for _, f in panels)
    fig = Figure(figsize=(8, 1.6 * len(panels)))
    for i, (title, fbank) in enumerate(panels):
        ax = fig.add_subplot(len(panels), 1, i + 1)
        ax.imshow(fbank.T, origin="lower", aspect="auto", cmap="magma", vmin=low, vmax=high,
                  interpolation="nearest")
        ax.set_title(title, fontsize=8, loc="left")
        ax.set_yticks([])
        ax.tick_params(labelsize=7)
    ax.set_xlabel("frame (10 ms)", fontsize=7)
    fig.tight_layout()
    save_figure(fig, path, dpi=80)


def _example_html(example: Example) -> str:
    players = "\n".join(
        f'<figure><figcaption>{html.escape(label)}</figcaption>'
        f'<audio controls preload="metadata" src="{html.escape(src)}"></audio></figure>'
        for label, src in example.audio.items())
    return (f"<section>\n<h2>{html.escape(example.title)}</h2>\n"
            f'<div class="players">\n{players}\n</div>\n'
            f'<img src="{html.escape(example.image)}" alt="spectrograms: '
            f'{html.escape(example.title)}">\n</section>')


def write_page(path: str | os.PathLike, title: str, intro: str,
               examples: list[Example]) -> Path:
    """Write the page atomically; `intro` is HTML that says what the players hold."""
    body = "\n".join(_example_html(e) for e in examples)
    text = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; max-width: 70em; margin: 1em auto; }}
.players {{ display: flex; flex-wrap: wrap; gap: 0.5em; }}
figure {{ margin: 0; }} figcaption {{ font-size: 0.85em; }}
img {{ max-width: 100%; }}
</style>
</head>
<body>
<h1>{html.escape(title)}</h1>
{intro}
<p id="audio-status">audio not checked (scripts disabled)</p>
{body}
{STATUS_SCRIPT}
</body>
</html>
"""
    write_text_atomic(path, text)
    return Path(path)
