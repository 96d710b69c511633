"""Corpus recipes egs/{timit,aurora4,ami,librispeech}: data prep on miniature fake copies of
each corpus (real file formats: NIST SPHERE, raw big-endian PCM, WAV, FLAC; .PHN/.TXT,
trans.txt, SPEAKERS.TXT, AMI XML), then stages 0-2 of each run.sh in a copy of the recipe
dir under tmp_path, and the one-line errors for a missing/wrong corpus dir."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from fhvae.errors import FhvaeError
from fhvae.io.audio import load_audio
from fhvae.io.datadir_writer import Utterance, write_data_dir
from fhvae.io.text_table import read_dict, read_kv
from helpers import clean_env as base_env
from helpers import python, run

ROOT = Path(__file__).resolve().parents[1]
PYTHON = python()        # the interpreter running the tests, not a .venv in the checkout
RATE = 16000


def tone(seconds: float, seed: int) -> np.ndarray:
    """int16 test signal: a speaker-ish harmonic tone plus noise (never silent)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    f0 = 100 + 20 * seed
    x = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6)) * 3000
    return (x + rng.normal(0, 300, t.size)).astype(np.int16)


def write_sphere(path: Path, samples: np.ndarray) -> None:
    """A NIST SPHERE file as TIMIT ships it: 1024-byte ASCII header, int16 little-endian."""
    header = ("NIST_1A\n   1024\ndatabase_id -s5 TIMIT\n"
              f"sample_count -i {samples.size}\nsample_rate -i {RATE}\nchannel_count -i 1\n"
              "sample_n_bytes -i 2\nsample_byte_format -s2 01\nsample_coding -s3 pcm\n"
              "end_head\n").encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header.ljust(1024, b" ") + samples.astype("<i2").tobytes())


def write_wav(path: Path, samples: np.ndarray, fmt: str = "WAV") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, samples, RATE, format=fmt, subtype="PCM_16")


def load_module(corpus: str, name: str):
    """Import egs/<corpus>/local/<name>.py (its folder on sys.path, like `python local/x.py`)."""
    local = ROOT / "egs" / corpus / "local"
    sys.path.insert(0, str(local))
    try:
        spec = importlib.util.spec_from_file_location(f"{corpus}_{name}", local / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(local))
    return module


def recipe_copy(tmp_path: Path, corpus: str) -> Path:
    """egs/<corpus> as symlinks in tmp_path, so data/, fbank/, exp/ land in tmp_path."""
    dst = tmp_path / "egs" / corpus
    dst.mkdir(parents=True)
    for entry in (ROOT / "egs" / corpus).iterdir():
        if entry.name not in ("data", "exp", "fbank"):
            (dst / entry.name).symlink_to(entry.resolve())
    return dst


def run_recipe(recipe: Path, *args: str) -> subprocess.CompletedProcess:
    # path.sh takes the tests' interpreter; the caller's launchers (train_cmd...) are scrubbed.
    return run(["bash", str(recipe / "run.sh"), "--stop-stage", "2", "--nj", "1", *args],
               cwd=recipe, env=base_env(FHVAE_PYTHON=PYTHON), timeout=200)


def run_prep(corpus: str, script: str, *args: str) -> subprocess.CompletedProcess:
    return run([PYTHON, str(ROOT / "egs" / corpus / "local" / script), *map(str, args)],
               timeout=120)


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 1, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]


def assert_stages_0_to_2(recipe: Path, sets: dict[str, int], proc) -> None:
    """Every set validated with features; feats.scp has the expected utterance count."""
    assert proc.returncode == 0, proc.stdout + proc.stderr
    log = proc.stdout + proc.stderr
    for name, count in sets.items():
        data = recipe / "data" / name
        # run.sh validates after stage 0 (--no-feats) and the pipeline again after stage 1
        assert log.count(f"data/{name} OK: {count} utterances") == 2, log
        assert len(read_kv(data / "feats.scp")) == count
        assert len(read_kv(data / "utt2num_frames")) == count
        assert (data / "fhvae" / "seg_index.npz").is_file()
    assert not (ROOT / "egs" / recipe.name / "data").exists()


# ---------------------------------------------------------------- shared data-dir writer

def test_write_data_dir_sorts_and_derives_spk2utt(tmp_path):
    utts = [Utterance("spkb_2", "spkb", "/b2.wav", text="b two", labels={"gender": "m"}),
            Utterance("spka_1", "spka", "/a1.wav", text="hello \t world", labels={"gender": "f"}),
            Utterance("spkb_1", "spkb", "/b1.wav", text="b one", labels={"gender": "m"})]
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "utt2noise").write_text("stale x\n")
    (tmp_path / "d" / "feats.scp").write_text("stale x\n")
    write_data_dir(tmp_path / "d", utts)
    d = tmp_path / "d"
    assert (d / "utt2spk").read_text() == "spka_1 spka\nspkb_1 spkb\nspkb_2 spkb\n"
    assert (d / "spk2utt").read_text() == "spka spka_1\nspkb spkb_1 spkb_2\n"
    assert (d / "wav.scp").read_text().splitlines()[0] == "spka_1 /a1.wav"
    assert read_dict(d / "utt2gender") == {"spka_1": "f", "spkb_1": "m", "spkb_2": "m"}
    assert (d / "text").read_text() == "spka_1 hello world\nspkb_1 b one\nspkb_2 b two\n"
    assert not (d / "segments").exists()
    assert not (d / "utt2noise").exists() and not (d / "feats.scp").exists()


def test_write_data_dir_segments_share_recordings(tmp_path):
    utts = [Utterance(f"s_{i}", "s", "/rec.wav", rec="rec1", start=i * 1.0, end=i + 0.5)
            for i in (1, 0)]
    write_data_dir(tmp_path, utts)
    assert (tmp_path / "wav.scp").read_text() == "rec1 /rec.wav\n"
    assert (tmp_path / "segments").read_text() == ("s_0 rec1 0.000 0.500\n"
                                                   "s_1 rec1 1.000 1.500\n")


@pytest.mark.parametrize("utts, message", [
    ([], "no utterances"),
    ([Utterance("a_1", "a", "/x"), Utterance("a_1", "a", "/y")], "duplicate utterance id 'a_1'"),
    ([Utterance("x_1", "a", "/x")], "does not start with its speaker id 'a'"),
    ([Utterance("a 1", "a", "/x")], "whitespace"),
    ([Utterance("a_1", "a", "/x", rec="r", start=0, end=1),
      Utterance("a_2", "a", "/y", rec="r", start=1, end=2)], "two audio sources"),
    ([Utterance("a_1", "a", "/x", rec="r", start=2, end=1)], "bad segment times"),
    ([Utterance("a_1", "a", "/x", labels={"gender": "f"}), Utterance("a_2", "a", "/y")],
     "has labels []"),
    ([Utterance("a_1", "a", "/x", text="hi"), Utterance("a_2", "a", "/y")], "transcript"),
    ([Utterance("ab_1", "ab", "/x"), Utterance("ab1_1", "ab1", "/y")], "sorts after"),
])
def test_write_data_dir_rejects_invalid(tmp_path, utts, message):
    with pytest.raises(FhvaeError, match=None) as err:
        write_data_dir(tmp_path / "d", utts)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "d" / "utt2spk").exists()


# ---------------------------------------------------------------- TIMIT

# (start, end, 61-phone) of every fake utterance: 0.6 s with a glottal stop to delete.
PHN = [(0, 2000, "h#"), (2000, 3600, "sh"), (3600, 4000, "q"), (4000, 6000, "ix"),
       (6000, 7000, "pcl"), (7000, 8000, "em"), (8000, 9600, "h#")]
TIMIT_SPEAKERS = [("train", "dr1", "fcjf0"), ("train", "dr2", "mdac2"),
                  ("test", "dr1", "faks0"),      # dev list
                  ("test", "dr1", "mdab0"),      # core test list
                  ("test", "dr3", "mzzz0")]      # test speaker outside both lists


def make_timit(root: Path, upper: bool) -> Path:
    case = str.upper if upper else str.lower
    for i, (part, region, spk) in enumerate(TIMIT_SPEAKERS):
        for j, sent in enumerate(("sa1", "si1027", "sx37")):
            stem = root / case(part) / case(region) / case(spk) / case(sent)
            write_sphere(stem.with_name(stem.name + case(".wav")), tone(0.6, i * 3 + j))
            stem.with_name(stem.name + case(".phn")).write_text(
                "".join(f"{s} {e} {p}\n" for s, e, p in PHN))
            stem.with_name(stem.name + case(".txt")).write_text(
                "0 9600 She had your dark suit.\n")
            stem.with_name(stem.name + case(".wrd")).write_text("2000 9600 she\n")
    return root


def test_timit_phone_tables():
    phones = load_module("timit", "phones")
    assert len(phones.PHONES_61) == 61
    assert len(set(phones.MAP_61_TO_48.values())) == 48
    assert len(set(phones.MAP_61_TO_39.values())) == 39
    assert "q" not in phones.MAP_61_TO_39
    assert [phones.MAP_61_TO_39[p] for p in ("ax-h", "axr", "zh", "kcl", "epi", "ux", "el")] == \
        ["ah", "er", "sh", "sil", "sil", "uw", "l"]
    classes = {p: phones.phone_class(p) for p in set(phones.MAP_61_TO_39.values())}
    assert sum(c == "son" for c in classes.values()) == 21
    assert sum(c == "obs" for c in classes.values()) == 17
    assert [k for k, c in classes.items() if c == "sil"] == ["sil"]
    assert phones.phone_class("dx") == "obs" and phones.phone_class("ng") == "son"


def test_timit_lists_are_kaldis_split():
    conf = ROOT / "egs" / "timit" / "conf"
    dev = (conf / "dev_spk.list").read_text().split()
    test = (conf / "test_spk.list").read_text().split()
    assert (len(dev), len(set(dev)), len(test), len(set(test))) == (50, 50, 24, 24)
    assert not set(dev) & set(test)
    # the core test set: 2 men and 1 woman from each of the 8 dialect regions
    assert sum(s[0] == "m" for s in test) == 16 and sum(s[0] == "f" for s in test) == 8


@pytest.mark.parametrize("upper", [True, False])
def test_timit_prep_both_layouts(tmp_path, upper):
    """Kaldi's ids (timit_data_prep.sh: <speaker folder>_<sentence>, in the corpus's case)."""
    timit = make_timit(tmp_path / "TIMIT", upper)
    module = load_module("timit", "prepare_timit")
    module.prepare(timit, tmp_path / "data")
    data = tmp_path / "data"
    case = str.upper if upper else str.lower
    assert read_dict(data / "train" / "utt2spk") == {           # no SA sentences
        case("fcjf0_si1027"): case("fcjf0"), case("fcjf0_sx37"): case("fcjf0"),
        case("mdac2_si1027"): case("mdac2"), case("mdac2_sx37"): case("mdac2")}
    assert (data / "train" / "spk2utt").read_text().splitlines()[0] == case(
        "fcjf0 fcjf0_si1027 fcjf0_sx37")
    assert list(read_dict(data / "dev" / "utt2spk")) == [case("faks0_si1027"),
                                                         case("faks0_sx37")]
    assert list(read_dict(data / "test" / "utt2spk")) == [case("mdab0_si1027"),
                                                          case("mdab0_sx37")]
    assert read_dict(data / "train" / "utt2gender") == {
        case("fcjf0_si1027"): "f", case("fcjf0_sx37"): "f",
        case("mdac2_si1027"): "m", case("mdac2_sx37"): "m"}
    wav = read_dict(data / "dev" / "wav.scp")[case("faks0_si1027")]
    samples, rate = soundfile.read(wav, dtype="int16")
    assert rate == RATE and np.array_equal(samples, tone(0.6, 2 * 3 + 1))
    assert read_dict(data / "dev" / "text")[case("faks0_sx37")] == "She had your dark suit."
    ctm = (data / "test" / "phone_ali.ctm").read_text().splitlines()
    utt = case("mdab0_si1027")
    assert ctm[:6] == [f"{utt} 1 0.0000 0.1250 sil sil",
                       f"{utt} 1 0.1250 0.1000 sh obs",
                       f"{utt} 1 0.2500 0.1250 ih son",
                       f"{utt} 1 0.3750 0.0625 sil sil",
                       f"{utt} 1 0.4375 0.0625 m son",
                       f"{utt} 1 0.5000 0.1000 sil sil"]
    assert len(ctm) == 12 and ctm[6].startswith(case("mdab0_sx37") + " 1 0.0000 ")


def test_timit_recipe_stages_0_to_2(tmp_path):
    timit = make_timit(tmp_path / "corpus", upper=True)
    recipe = recipe_copy(tmp_path, "timit")
    proc = run_recipe(recipe, "--timit", str(timit))
    assert_stages_0_to_2(recipe, {"train": 4, "dev": 2, "test": 2}, proc)
    assert (recipe / "data" / "train" / "fhvae" / "mvn.npz").is_file()
    frames = read_dict(recipe / "data" / "dev" / "utt2num_frames")
    assert frames == {"FAKS0_SI1027": "58", "FAKS0_SX37": "58"}  # 0.6 s, 25 ms, 10 ms shift


def test_timit_missing_corpus_errors(tmp_path):
    assert_one_line_error(run_prep("timit", "prepare_timit.py", tmp_path / "none", tmp_path / "d"),
                          str(tmp_path / "none"), "no such directory")
    (tmp_path / "t" / "TEST").mkdir(parents=True)
    assert_one_line_error(run_prep("timit", "prepare_timit.py", tmp_path / "t", tmp_path / "d"),
                          "no TRAIN/ or train/ folder",
                          "expected the LDC layout TRAIN/DR1/FCJF0/SI1027.WAV")
    timit = make_timit(tmp_path / "x", upper=True)
    (timit / "TRAIN" / "DR1" / "FCJF0" / "SX37.PHN").unlink()
    assert_one_line_error(run_prep("timit", "prepare_timit.py", timit, tmp_path / "d"),
                          "SX37.WAV has no SX37.PHN")


# ---------------------------------------------------------------- LibriSpeech

LIBRI = {"train-clean-100": {("19", "198"): 2, ("103", "1240"): 1},
         "train-clean-360": {("1034", "121119"): 2},
         "dev-clean": {("84", "121123"): 2},
         "test-clean": {("1089", "134686"): 2}}
LIBRI_SPEAKERS = """\
; comment lines start with a semicolon
;ID  |SEX| SUBSET           |MINUTES| NAME
19   | F | train-clean-100  | 25.19 | Kara Shallenberg
84   | F | dev-clean        |  8.02 | Christie Nowak
103  | F | train-clean-100  | 25.23 | Karen Savage
1034 | M | train-clean-360  | 25.10 | Kevin O'Coin
1089 | M | test-clean       |  8.04 | Arthur | with a bar
"""


def make_librispeech(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "SPEAKERS.TXT").write_text(LIBRI_SPEAKERS)
    for p, (part, chapters) in enumerate(LIBRI.items()):
        for (spk, chapter), count in chapters.items():
            folder = root / part / spk / chapter
            lines = []
            for n in range(count):
                utt = f"{spk}-{chapter}-{n:04d}"
                write_wav(folder / f"{utt}.flac", tone(0.5, p + n), fmt="FLAC")
                lines.append(f"{utt} SOME WORDS NUMBER {n}\n")
            (folder / f"{spk}-{chapter}.trans.txt").write_text("".join(lines))
    return root


def test_librispeech_recipe_stages_0_to_2(tmp_path):
    corpus = make_librispeech(tmp_path / "LibriSpeech")
    recipe = recipe_copy(tmp_path, "librispeech")
    proc = run_recipe(recipe, "--librispeech", str(corpus))
    assert "train_960 is made of train-clean-100 + train-clean-360 (missing: " \
           "train-other-500)" in proc.stderr
    assert_stages_0_to_2(recipe, {"train_960": 5, "dev_clean": 2, "test_clean": 2}, proc)
    data = recipe / "data"
    # Kaldi's utterance ids (egs/librispeech/s5/local/data_prep.sh); the reader is the speaker
    assert read_dict(data / "train_960" / "utt2spk") == {
        "103-1240-0000": "103", "1034-121119-0000": "1034", "1034-121119-0001": "1034",
        "19-198-0000": "19", "19-198-0001": "19"}
    assert read_dict(data / "train_960" / "utt2gender")["1034-121119-0001"] == "m"
    assert read_dict(data / "test_clean" / "utt2gender") == {
        "1089-134686-0000": "m", "1089-134686-0001": "m"}
    assert read_dict(data / "dev_clean" / "wav.scp")["84-121123-0001"].endswith(
        "dev-clean/84/121123/84-121123-0001.flac")
    assert read_dict(data / "dev_clean" / "text")["84-121123-0001"] == "SOME WORDS NUMBER 1"


def test_librispeech_missing_corpus_errors(tmp_path):
    (tmp_path / "ls").mkdir()
    assert_one_line_error(run_prep("librispeech", "prepare_librispeech.py", tmp_path / "ls",
                                   tmp_path / "d"), "no SPEAKERS.TXT")
    corpus = make_librispeech(tmp_path / "LibriSpeech")
    (corpus / "dev-clean" / "84" / "121123" / "84-121123-0001.flac").unlink()
    assert_one_line_error(run_prep("librispeech", "prepare_librispeech.py", corpus,
                                   tmp_path / "d"),
                          "84-121123.trans.txt:2: audio file not found")


# ---------------------------------------------------------------- AMI

AMI_MEETINGS = {"IS1000a": "train", "TS3005a": "train", "ES2011a": "dev", "ES2004a": "eval"}
AMI_SPEAKERS = {"A": (1, "FIE038"), "B": (0, "MEE068")}
# A: two segments, an empty one, one running past the 2.5 s files, one after their end
AMI_SEGMENTS = {"A": [(0.5, 1.2), (1.31, 2.0), (2.2, 2.2), (2.3, 2.9), (2.6, 3.0)],
                "B": [(0.2, 0.9)]}


def make_ami(root: Path) -> tuple[Path, Path]:
    audio, annotations = root / "amicorpus", root / "annotations"
    meetings_xml = ['<?xml version="1.0" encoding="ISO-8859-1" standalone="yes"?>',
                    '<nite:root nite:id="meetings" xmlns:nite="http://nite.sourceforge.net/">']
    for m, meeting in enumerate([*AMI_MEETINGS, "EN2002a"]):     # EN2002a: no audio here
        meetings_xml.append(f'<meeting nite:id="{meeting}.meeting" observation="{meeting}" '
                            f'type="scenario">')
        for agent, (channel, name) in AMI_SPEAKERS.items():
            meetings_xml.append(f'  <speaker nite:id="{meeting}.sp.{agent}" nxt_agent="{agent}" '
                                f'channel="{channel}" global_name="{name}" role="PM"/>')
            segs = [f'<segment nite:id="{meeting}.sync.{i}" transcriber_start="{s}" '
                    f'transcriber_end="{e}" channel="{channel}">\n'
                    f'  <nite:child href="{meeting}.{agent}.words.xml#id(w{i})"/>\n</segment>'
                    for i, (s, e) in enumerate(AMI_SEGMENTS[agent])]
            seg_file = annotations / "segments" / f"{meeting}.{agent}.segments.xml"
            seg_file.parent.mkdir(parents=True, exist_ok=True)
            seg_file.write_text('<?xml version="1.0" encoding="ISO-8859-1" standalone="yes"?>\n'
                                f'<nite:root nite:id="{meeting}.{agent}.segs" '
                                'xmlns:nite="http://nite.sourceforge.net/">\n'
                                + "\n".join(segs) + "\n</nite:root>\n")
            if meeting in AMI_MEETINGS:
                write_wav(audio / meeting / "audio" / f"{meeting}.Headset-{channel}.wav",
                          tone(2.5, m * 2 + channel))
        if meeting in AMI_MEETINGS:
            write_wav(audio / meeting / "audio" / f"{meeting}.Array1-01.wav", tone(2.5, 9 + m))
        meetings_xml.append("</meeting>")
    meetings_xml.append("</nite:root>")
    (annotations / "corpusResources").mkdir(parents=True)
    (annotations / "corpusResources" / "meetings.xml").write_text("\n".join(meetings_xml))
    return audio, annotations


def test_ami_split_lists():
    lists = {s: (ROOT / "egs" / "ami" / "conf" / f"split_{s}.list").read_text().split()
             for s in ("train", "dev", "eval")}
    assert {s: len(v) for s, v in lists.items()} == {"train": 136, "dev": 18, "eval": 16}
    assert len(set().union(*lists.values())) == 170
    assert "EN2002a" in lists["eval"] and "IB4010" in lists["dev"]


def test_ami_recipe_stages_0_to_2(tmp_path):
    audio, annotations = make_ami(tmp_path / "ami")
    recipe = recipe_copy(tmp_path, "ami")
    proc = run_recipe(recipe, "--ami", str(audio), "--ami-annotations", str(annotations))
    # 4 segments with audio per meeting, each cut from the headset and from the array
    assert_stages_0_to_2(recipe, {"train": 16, "dev": 8, "eval": 8}, proc)
    dev = recipe / "data" / "dev"
    # Kaldi's ids (ami_ihm_data_prep.sh, ami_sdm_data_prep.sh); the id keeps the annotated
    # end (2.9 s) where the segment is cut at the end of the 2.5 s file
    segments = [line.split() for line in (dev / "segments").read_text().splitlines()]
    assert segments == [
        ["AMI_ES2011a_H00_MEE068_0000020_0000090", "AMI_ES2011a_H00", "0.200", "0.900"],
        ["AMI_ES2011a_H01_FIE038_0000050_0000120", "AMI_ES2011a_H01", "0.500", "1.200"],
        ["AMI_ES2011a_H01_FIE038_0000131_0000200", "AMI_ES2011a_H01", "1.310", "2.000"],
        ["AMI_ES2011a_H01_FIE038_0000230_0000290", "AMI_ES2011a_H01", "2.300", "2.500"],
        ["AMI_ES2011a_SDM_FIE038_0000050_0000120", "AMI_ES2011a_SDM", "0.500", "1.200"],
        ["AMI_ES2011a_SDM_FIE038_0000131_0000200", "AMI_ES2011a_SDM", "1.310", "2.000"],
        ["AMI_ES2011a_SDM_FIE038_0000230_0000290", "AMI_ES2011a_SDM", "2.300", "2.500"],
        ["AMI_ES2011a_SDM_MEE068_0000020_0000090", "AMI_ES2011a_SDM", "0.200", "0.900"]]
    wav = read_dict(dev / "wav.scp")
    assert sorted(wav) == ["AMI_ES2011a_H00", "AMI_ES2011a_H01", "AMI_ES2011a_SDM"]
    assert wav["AMI_ES2011a_H00"].endswith("ES2011a/audio/ES2011a.Headset-0.wav")
    frames = read_dict(dev / "utt2num_frames")
    assert frames["AMI_ES2011a_SDM_FIE038_0000131_0000200"] == "67"       # 0.69 s
    channel = read_dict(dev / "utt2channel")
    room = read_dict(recipe / "data" / "train" / "utt2room")
    assert sorted(set(channel.values())) == ["ihm", "sdm"]
    assert channel["AMI_ES2011a_SDM_MEE068_0000020_0000090"] == "sdm"
    assert sorted(set(room.values())) == ["idiap", "tno"]
    assert read_dict(dev / "utt2gender")["AMI_ES2011a_H00_MEE068_0000020_0000090"] == "m"
    assert read_dict(dev / "utt2participant")["AMI_ES2011a_SDM_MEE068_0000020_0000090"] == \
        "MEE068"
    assert (dev / "spk2utt").read_text().splitlines()[0] == \
        "AMI_ES2011a_H00_MEE068 AMI_ES2011a_H00_MEE068_0000020_0000090"
    assert sorted(set(read_dict(dev / "utt2spk").values())) == [
        "AMI_ES2011a_H00_MEE068", "AMI_ES2011a_H01_FIE038", "AMI_ES2011a_SDM_FIE038",
        "AMI_ES2011a_SDM_MEE068"]
    assert "AMI_TS3005a_SDM" in (recipe / "data" / "train" / "wav.scp").read_text()


def test_ami_kaldi_annotations_give_kaldis_segments(tmp_path):
    """Kaldi's data/local/annotations/*.txt: the segments, rounding and ids of Kaldi's prep."""
    audio, _ = make_ami(tmp_path / "ami")
    kaldi = tmp_path / "kaldi_annotations"
    kaldi.mkdir()
    for split in ("train", "dev", "eval"):
        meetings = [m for m, s in AMI_MEETINGS.items() if s == split]
        (kaldi / f"{split}.txt").write_text("".join(
            f"{m} H01 FIE038 0.55 1.315 OKAY SO \n{m} H00 MEE068 0.2 0.9 RIGHT \n"
            for m in meetings))
    proc = run_prep("ami", "prepare_ami.py", audio, kaldi, tmp_path / "data")
    assert proc.returncode == 0, proc.stderr
    dev = tmp_path / "data" / "dev"
    assert list(read_dict(dev / "utt2spk").items()) == [
        ("AMI_ES2011a_H00_MEE068_0000020_0000090", "AMI_ES2011a_H00_MEE068"),
        ("AMI_ES2011a_H01_FIE038_0000055_0000132", "AMI_ES2011a_H01_FIE038"),
        ("AMI_ES2011a_SDM_FIE038_0000055_0000132", "AMI_ES2011a_SDM_FIE038"),
        ("AMI_ES2011a_SDM_MEE068_0000020_0000090", "AMI_ES2011a_SDM_MEE068")]
    assert read_dict(dev / "segments")["AMI_ES2011a_H01_FIE038_0000055_0000132"] == \
        "AMI_ES2011a_H01 0.550 1.320"
    (kaldi / "eval.txt").write_text("ES2004a Headset0 MEE068 0.2 0.9 RIGHT\n")
    assert_one_line_error(run_prep("ami", "prepare_ami.py", audio, kaldi, tmp_path / "d"),
                          f"{kaldi / 'eval.txt'}:1: expected '<meeting> H0<n> <participant>")


def test_ami_missing_array_skips_sdm_copies_with_one_warning(tmp_path):
    audio, annotations = make_ami(tmp_path / "ami")
    (audio / "ES2011a" / "audio" / "ES2011a.Array1-01.wav").unlink()
    proc = run_prep("ami", "prepare_ami.py", audio, annotations, tmp_path / "data")
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if "WARNING" in line]
    assert len(warnings) == 1 and "ES2011a: no ES2011a.Array1-01.wav" in warnings[0], proc.stderr
    dev = read_dict(tmp_path / "data" / "dev" / "utt2channel")
    assert len(dev) == 4 and set(dev.values()) == {"ihm"}
    assert len(read_dict(tmp_path / "data" / "eval" / "utt2channel")) == 8


def test_ami_missing_corpus_errors(tmp_path):
    audio, annotations = make_ami(tmp_path / "ami")
    assert_one_line_error(run_prep("ami", "prepare_ami.py", audio, tmp_path / "no", tmp_path / "d"),
                          "no segments/ folder or train.txt")
    (audio / "ES2011a" / "audio" / "ES2011a.Headset-1.wav").unlink()
    assert_one_line_error(run_prep("ami", "prepare_ami.py", audio, annotations, tmp_path / "d"),
                          "no ES2011a.Headset-1.wav (headset of FIE038)")


# ---------------------------------------------------------------- Aurora-4

AURORA_DEV = ["40ao0301", "40bo0302"]
AURORA_EVAL = ["447c0201"]


def make_aurora4(root: Path) -> Path:
    (root / "lists").mkdir(parents=True)
    for nn in range(1, 15):
        ext = ".wv1" if nn <= 7 else ".wv2"
        dev_lines, eval_lines = [";; Aurora-4 dev list\n"], []
        for i, utt in enumerate(AURORA_DEV):
            rel = f"multi_dev/{nn:02d}/{utt[:3]}/{utt}{ext}"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(tone(0.5, nn + i).astype(">i2").tobytes())
            dev_lines.append(rel + "\n")
        for utt in AURORA_EVAL:   # stored in Kaldi's convention: test_0330_NN/ under test0330_NN/
            rel = f"test_0330_{nn:02d}/{utt[:3]}/{utt}{ext}"
            path = root / f"test0330_{nn:02d}" / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(tone(0.5, nn).astype(">i2").tobytes())
            eval_lines.append(rel + "\n")
        (root / "lists" / f"devtest{nn:02d}_0330_16k.list").write_text("".join(dev_lines))
        (root / "lists" / f"test{nn:02d}_0330_16k.list").write_text("".join(eval_lines))
    return root


def test_aurora4_conditions():
    module = load_module("aurora4", "prepare_aurora4")
    labels = [module.condition_labels(nn) for nn in range(1, 15)]
    assert [lab["noise"] for lab in labels[:7]] == [lab["noise"] for lab in labels[7:]] == [
        "clean", "car", "babble", "restaurant", "street", "airport", "train"]
    assert [lab["channel"] for lab in labels] == ["sennheiser"] * 7 + ["secondary"] * 7


def test_aurora4_recipe_stages_0_to_2(tmp_path):
    corpus = make_aurora4(tmp_path / "aurora4")
    recipe = recipe_copy(tmp_path, "aurora4")
    proc = run_recipe(recipe, "--aurora4", str(corpus))
    assert_stages_0_to_2(recipe, {"dev_0330": 28, "test_eval92": 14}, proc)
    data = recipe / "data" / "dev_0330"
    assert (data / "fhvae" / "heldout_index.npz").is_file()     # '-' dev: held-out split
    noise, channel = read_dict(data / "utt2noise"), read_dict(data / "utt2channel")
    # Kaldi's ids (aurora4_data_prep.sh): WSJ id + condition 01..14 as 0..9, a..d
    utt2spk = read_dict(data / "utt2spk")
    assert list(utt2spk)[:15] == [f"40ao0301{c}" for c in "0123456789abcd"] + ["40bo03020"]
    assert set(utt2spk.values()) == {"40a", "40b"} and utt2spk["40bo0302a"] == "40b"
    assert (noise["40ao03013"], channel["40ao03013"]) == ("restaurant", "sennheiser")
    assert (noise["40bo03027"], channel["40bo03027"]) == ("clean", "secondary")
    assert (noise["40bo0302d"], channel["40bo0302d"]) == ("train", "secondary")
    assert read_dict(data / "wav.scp")["40ao03018"].startswith("sox -B -r 16000 ")
    # the sox pipe decodes the headerless big-endian file to exactly the written samples
    entry = read_dict(recipe / "data" / "test_eval92" / "wav.scp")["447c0201c"]
    samples, rate = load_audio(entry, "test")
    assert rate == RATE and np.array_equal(samples[:, 0], tone(0.5, 13).astype(np.float64))
    assert read_dict(recipe / "data" / "test_eval92" / "utt2noise")["447c0201c"] == "airport"


def test_aurora4_missing_corpus_errors(tmp_path):
    (tmp_path / "a4").mkdir()
    assert_one_line_error(run_prep("aurora4", "prepare_aurora4.py", tmp_path / "a4",
                                   tmp_path / "d"), "no lists/ folder")
    corpus = make_aurora4(tmp_path / "aurora4")
    (corpus / "lists" / "devtest05_0330_16k.list").unlink()
    assert_one_line_error(run_prep("aurora4", "prepare_aurora4.py", corpus, tmp_path / "d"),
                          "no devtest05_0330_16k.list")
    (corpus / "lists" / "devtest05_0330_16k.list").write_text("multi_dev/05/40a/missing.wv1\n")
    assert_one_line_error(run_prep("aurora4", "prepare_aurora4.py", corpus, tmp_path / "d"),
                          "devtest05_0330_16k.list:1: audio file not found")


# ---------------------------------------------------------------- environments (no sudo, no .venv)

def tree_copy(tmp_path: Path) -> Path:
    """What egs/timit needs of the project, copied (path.sh finds its root by its real path),
    without a .venv."""
    tree = tmp_path / "tree"
    tree.mkdir()
    for name in ("path.sh", "cmd.sh", "requirements.txt", "requirements-test.txt"):
        shutil.copy2(ROOT / name, tree / name)
    skip = shutil.ignore_patterns("__pycache__", "data", "exp", "fbank")
    for name in ("utils", "fhvae", "egs/timit"):
        shutil.copytree(ROOT / name, tree / name, symlinks=True, ignore=skip)
    return tree


def fake_bin(tmp_path: Path, uid: int) -> Path:
    """sudo/apt-get that only record their calls (sudo -n fails: no passwordless sudo)."""
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    log = tmp_path / "apt.log"
    scripts = {"sudo": f'echo "sudo $*" >> {log}; exit 1',
               "apt-get": f'echo "apt-get $*" >> {log}',
               "id": f'[ "$1" = -u ] && echo {uid} || exec /usr/bin/id "$@"'}
    for name, body in scripts.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    return bin_dir


def clean_env(tmp_path: Path, uid: int = 1000, **extra: str) -> dict[str, str]:
    """No .venv on PATH, fake sudo/apt-get/id first, no inherited interpreter choice."""
    path = [p for p in os.environ["PATH"].split(os.pathsep) if ".venv" not in p]
    env = base_env(drop=("FHVAE_PYTHON", "PYTHONPATH", "VIRTUAL_ENV"))
    env.update(PATH=os.pathsep.join([str(fake_bin(tmp_path, uid)), *path]),
               HOME=str(tmp_path / "home"), **extra)
    return env


def bare_python(tmp_path: Path) -> Path:
    """An interpreter without any runtime package: a fresh venv without site packages."""
    import venv
    venv.create(tmp_path / "bare", with_pip=False, symlinks=True)
    return tmp_path / "bare" / "bin" / "python3"


def test_recipe_runs_without_sudo_or_venv_in_a_chosen_python(tmp_path):
    tree = tree_copy(tmp_path)
    timit = make_timit(tmp_path / "TIMIT", upper=True)
    env = clean_env(tmp_path, FHVAE_PYTHON=PYTHON)
    proc = run(["bash", str(tree / "egs" / "timit" / "run.sh"), "--stop-stage", "0",
                "--timit", str(timit)], env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "data/train OK: 4 utterances" in proc.stderr + proc.stdout
    assert read_dict(tree / "egs" / "timit" / "data" / "dev" / "utt2spk") == {
        "FAKS0_SI1027": "FAKS0", "FAKS0_SX37": "FAKS0"}
    assert not (tmp_path / "apt.log").exists() and not (tree / ".venv").exists()


def test_setup_env_auto_uses_an_active_python_environment(tmp_path):
    tree = tree_copy(tmp_path)
    env = clean_env(tmp_path)
    # The tests' interpreter "activated": its folder first on PATH.
    env["PATH"] = os.pathsep.join([str(Path(PYTHON).parent), env["PATH"]])
    proc = run(["bash", str(tree / "utils" / "setup_env.sh")], env=env, timeout=60)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert not (tree / ".venv").exists()


def test_path_sh_names_what_the_chosen_python_lacks(tmp_path):
    system = bare_python(tmp_path)          # never skipped: such an interpreter always exists
    assert run([str(system), "-c", "import torch"], timeout=60).returncode == 1
    tree = tree_copy(tmp_path)
    env = clean_env(tmp_path, FHVAE_PYTHON=str(system))
    proc = run(["bash", "-c", f". {tree / 'path.sh'} && echo sourced"], env=env, timeout=60)
    assert proc.returncode == 1 and "sourced" not in proc.stdout
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"path.sh: {system} lacks torch"), lines
    assert "pip install -r" in lines[0]


def test_path_sh_accepts_a_site_torch_of_any_version_and_makes_it_python(tmp_path):
    """A system python3 (no `python` beside it) whose packages come from PYTHONPATH, with a
    site torch of another version first: accepted, and `python` runs that interpreter."""
    system = Path(sys.base_prefix) / "bin" / "python3"
    site_torch = tmp_path / "site"
    (site_torch / "torch").mkdir(parents=True)
    (site_torch / "torch" / "__init__.py").write_text('__version__ = "2.1.0+cu999"\n')
    deps = Path(np.__file__).resolve().parents[1]             # the test env's site-packages
    env = clean_env(tmp_path, FHVAE_PYTHON=str(system),
                    PYTHONPATH=os.pathsep.join([str(site_torch), str(deps)]))
    proc = run(["bash", "-c", f"set -eu; . {ROOT / 'path.sh'}; python -c "
                "'import sys, torch; print(sys.executable, torch.__version__)'"],
               env=env, timeout=60)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    executable, version = proc.stdout.split()
    assert Path(executable).resolve() == system.resolve() and version == "2.1.0+cu999"


@pytest.mark.parametrize("uid, calls, rc", [
    (1000, ["sudo -n true"], 1),        # no root, no passwordless sudo: say it, do not try apt
    (0, ["apt-get update -qq", "apt-get install -y -qq fhvae-no-such-pkg"], 0)])
def test_setup_env_installs_only_missing_debian_packages(tmp_path, uid, calls, rc):
    env = clean_env(tmp_path, uid=uid)
    proc = run(["bash", str(ROOT / "utils" / "setup_env.sh"), "--venv", "false",
                "--debian", "bash fhvae-no-such-pkg"], env=env, timeout=60)
    log = tmp_path / "apt.log"
    assert proc.returncode == rc, proc.stderr
    assert (log.read_text().splitlines() if log.exists() else []) == calls
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and "fhvae-no-such-pkg" in lines[0] and "bash" not in lines[0]
    if uid:
        assert lines[0].startswith("setup_env.sh: missing Debian packages: fhvae-no-such-pkg;")
        assert "sudo apt-get install fhvae-no-such-pkg" in lines[0]



def test_setup_env_does_not_take_a_shell_keyword_for_a_debian_package(tmp_path):
    """bash's `time` keyword is not /usr/bin/time (local/scale_run.sh needs the package
    `time`): only a file on PATH or a dpkg entry counts; `until` stands in for `time`, which
    this machine may have installed."""
    proc = run(["bash", str(ROOT / "utils" / "setup_env.sh"), "--venv", "false",
                "--debian", "until"], env=clean_env(tmp_path), timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.startswith("setup_env.sh: missing Debian packages: until;"), proc.stderr

FAKE_DEBIAN_PYTHON3 = """#!/bin/sh
# Debian's python3 without python3.11-venv: `import ensurepip` fails until apt-get installed
# it (the fake apt-get leaves a marker); `-m venv` makes a .venv whose pip records its call.
case "$*" in
  "-c import ensurepip, venv") [ -f "$VENV_MARKER" ] || exit 1 ;;
  "-c import sys"*) echo python3.11-venv ;;
  "-m venv --help"*) echo "usage: venv ..." ;;          # the venv module itself is there
  "-m venv .venv")
    [ -f "$VENV_MARKER" ] || { echo "ensurepip is not available" >&2; exit 1; }
    mkdir -p .venv/bin
    printf '#!/bin/sh\\necho "pip $*" >> %s\\n' "$APT_LOG" > .venv/bin/pip
    printf '#!/bin/sh\\nexit 0\\n' > .venv/bin/python
    chmod +x .venv/bin/pip .venv/bin/python ;;
  *) exit 3 ;;
esac
"""


@pytest.mark.parametrize("uid", [0, 1000])
def test_setup_env_installs_the_venv_package_a_debian_python3_lacks(tmp_path, uid):
    """`python3 -m venv` on Debian's own python3 needs python3.X-venv (ensurepip): set-up
    installs it through the same apt path as the other packages (root or passwordless sudo,
    else one line naming it), then makes the .venv."""
    tree = tree_copy(tmp_path)
    env = clean_env(tmp_path, uid=uid, VENV_MARKER=str(tmp_path / "venv-installed"),
                    APT_LOG=str(tmp_path / "apt.log"))
    bin_dir = Path(env["PATH"].split(os.pathsep)[0])
    (bin_dir / "python3").write_text(FAKE_DEBIAN_PYTHON3)
    (bin_dir / "python3").chmod(0o755)
    apt = (bin_dir / "apt-get").read_text()
    (bin_dir / "apt-get").write_text(apt + f'case "$*" in *python3.11-venv*) touch '
                                           f'{tmp_path / "venv-installed"};; esac\n')
    proc = run(["bash", str(tree / "utils" / "setup_env.sh"), "--venv", "true"], env=env,
               timeout=60)
    calls = (tmp_path / "apt.log").read_text().splitlines()
    if uid:
        assert proc.returncode == 1 and calls == ["sudo -n true"], proc.stderr
        assert proc.stderr.splitlines()[-1].startswith(
            "setup_env.sh: missing Debian packages: python3.11-venv; not root"), proc.stderr
        assert not (tree / ".venv").exists()
    else:
        assert proc.returncode == 0, proc.stderr
        assert calls == ["apt-get update -qq", "apt-get install -y -qq python3.11-venv",
                         "pip install -q --disable-pip-version-check -r requirements-test.txt"]
        assert (tree / ".venv" / ".requirements.sha256").is_file()


# ---------------------------------------------------------------- training configs

@pytest.mark.parametrize("corpus, k", [("timit", 2000), ("aurora4", 2000), ("ami", 5000),
                                       ("librispeech", 5000)])
def test_recipe_config_is_paper_defaults_with_k(corpus, k):
    from fhvae.training.config import TrainConfig

    cfg = TrainConfig.load(ROOT / "egs" / corpus / "conf" / "fhvae.yaml").to_dict()
    paper = TrainConfig.load(ROOT / "conf" / "fhvae.yaml").to_dict()
    assert cfg.pop("seq_batch_size") == k
    paper.pop("seq_batch_size")
    assert cfg == paper


def test_recipe_help_lists_corpus_option():
    proc = run(["bash", str(ROOT / "egs" / "ami" / "run.sh"), "--help"], timeout=60)
    assert "--ami-annotations" in proc.stdout + proc.stderr
    assert "official full-corpus-ASR" in proc.stdout + proc.stderr
