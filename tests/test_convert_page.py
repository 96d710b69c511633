"""The listening page (fhvae/convert/page.py) in a real headless Chromium: the audio
elements load (durations as written) and the page renders (a non-blank screenshot)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile
from matplotlib.image import imread

from fhvae.convert.page import Example, save_spectrograms, write_page
from helpers import run, skip_unless_ci

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--window-size=900,700"]
DURATIONS = {"a.wav": 0.5, "b.wav": 1.25}


@pytest.fixture(scope="module")
def browser() -> str:
    found = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
    if found is None:
        skip_unless_ci("no headless Chromium (tests/run.sh installs Debian's chromium)")
    return found


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    """A page whose folder holds two WAVs of known length and one spectrogram, moved after
    writing (the links must be relative)."""
    root = tmp_path_factory.mktemp("page")
    written = root / "written"
    for name, seconds in DURATIONS.items():
        (written / "wav").mkdir(parents=True, exist_ok=True)
        t = np.arange(int(16000 * seconds)) / 16000
        soundfile.write(written / "wav" / name, 0.3 * np.sin(2 * np.pi * 440 * t), 16000,
                        subtype="PCM_16")
    rng = np.random.default_rng(0)
    save_spectrograms(written / "png" / "x.png", [("one", rng.normal(size=(50, 8))),
                                                  ("two", rng.normal(size=(50, 8)))])
    write_page(written / "index.html", "test page", "<p>intro</p>",
               [Example("x to y", {"first": "wav/a.wav", "second": "wav/b.wav"}, "png/x.png")])
    moved = root / "copied"
    written.rename(moved)
    return moved / "index.html"


def test_audio_elements_load_in_chromium(browser, page):
    result = run([browser, *FLAGS, "--virtual-time-budget=5000", "--dump-dom",
                  page.as_uri()], timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert '<p id="audio-status">2 of 2 audio loaded, 0 failed</p>' in result.stdout
    durations = dict(re.findall(r'src="wav/([^"]+)"[^>]*data-duration="([^"]+)"',
                                result.stdout))
    assert {k: float(v) for k, v in durations.items()} == DURATIONS


def test_page_renders_in_chromium(browser, page, tmp_path):
    shot = tmp_path / "shot.png"
    result = run([browser, *FLAGS, f"--screenshot={shot}", page.as_uri()], timeout=60)
    assert result.returncode == 0 and shot.is_file(), result.stderr[-2000:]
    pixels = imread(shot)
    assert pixels.shape[:2] == (700, 900)
    assert pixels[..., :3].std() > 0.05        # text, players and the image, not blank
