"""utils/validate_data_dir.sh, fix_data_dir.sh and subset_data_dir.sh on tiny generated dirs."""

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SPKS = {"spka": 3, "spkb": 2}


def run(tmp_path, script, *args):
    return subprocess.run([str(ROOT / "utils" / script), *map(str, args)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def data(tmp_path):
    """data/ with 5 utterances of 2 speakers, real wav paths, feats.scp and utt2num_frames."""
    d = tmp_path / "data"
    d.mkdir()
    utts = [(f"{s}-u{i}", s) for s, n in SPKS.items() for i in range(1, n + 1)]
    (tmp_path / "audio").mkdir()
    for u, _ in utts:
        (tmp_path / "audio" / f"{u}.wav").write_bytes(b"RIFF")
    (tmp_path / "f.ark").write_bytes(b"")
    (d / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s in utts))
    (d / "spk2utt").write_text("".join(
        f"{s} {' '.join(u for u, t in utts if t == s)}\n" for s in SPKS))
    (d / "wav.scp").write_text("".join(f"{u} audio/{u}.wav\n" for u, _ in utts[:-1])
                               + f"{utts[-1][0]} sox audio/x.wav -t wav - |\n")
    (d / "feats.scp").write_text("".join(f"{u} f.ark:{9 * i}\n" for i, (u, _) in enumerate(utts)))
    (d / "utt2num_frames").write_text("".join(f"{u} {100 + i}\n" for i, (u, _) in enumerate(utts)))
    return d


def validate(data, *opts):
    return run(data.parent, "validate_data_dir.sh", *opts, data.name)


def edit(path, old, new):
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_valid_dir_passes_with_summary(data):
    res = validate(data)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines() == [
        "validate_data_dir: data OK: 5 utterances, 2 speakers; "
        "utt2spk spk2utt wav.scp feats.scp utt2num_frames"]


def test_no_feats_and_no_wav(data):
    (data / "feats.scp").unlink()
    assert "data/feats.scp: no such file" in validate(data).stderr
    assert validate(data, "--no-feats").returncode == 0
    (data / "wav.scp").unlink()
    assert "data/wav.scp: no such file" in validate(data, "--no-feats").stderr
    assert validate(data, "--no-feats", "--no-wav").returncode == 0


def lines(path):
    return path.read_text().splitlines(True)


@pytest.mark.parametrize("name, breaker, message", [
    # unsorted: swap lines 2 and 3 of utt2spk
    ("unsorted", lambda d: (d / "utt2spk").write_text("".join(
        (lambda l: [l[0], l[2], l[1], *l[3:]])(lines(d / "utt2spk")))),
     "data/utt2spk:3: not sorted (LC_ALL=C): 'spka-u2' comes after 'spka-u3'"),
    ("duplicate", lambda d: (d / "wav.scp").write_text("".join(
        (lambda l: [*l[:2], l[1], *l[2:]])(lines(d / "wav.scp")))),
     "data/wav.scp:3: duplicate key 'spka-u2'"),
    ("missing wav", lambda d: (d.parent / "audio/spka-u3.wav").unlink(),
     "data/wav.scp:3: 'spka-u3': audio file not found: audio/spka-u3.wav"),
    ("utt2spk vs spk2utt", lambda d: edit(d / "utt2spk", "spkb-u1 spkb", "spkb-u1 spka"),
     "data/spk2utt:2: utterance 'spkb-u1' is under speaker 'spkb' but utt2spk says 'spka'"),
    ("utt missing from spk2utt", lambda d: edit(d / "spk2utt", " spka-u3", ""),
     "data/utt2spk:3: utterance 'spka-u3' of speaker 'spka' is not in spk2utt"),
    ("missing file", lambda d: (d / "spk2utt").unlink(), "data/spk2utt: no such file (required)"),
    ("utt not in wav.scp", lambda d: edit(d / "wav.scp", "spkb-u1 audio/spkb-u1.wav\n", ""),
     "data/utt2spk:4: utterance 'spkb-u1' is not in wav.scp"),
    ("feats key", lambda d: edit(d / "feats.scp", "spka-u2 ", "spka-u2x "),
     "data/feats.scp:2: utterance 'spka-u2x' is not in utt2spk"),
    ("missing ark", lambda d: (d.parent / "f.ark").unlink(),
     "data/feats.scp:1: 'spka-u1': feature file not found: f.ark"),
    ("unknown utt in utt2*", lambda d: (d / "utt2dur").write_text("spka-u1 1.5\nzz 2.0\n"),
     "data/utt2dur:2: unknown utt 'zz'"),
    ("bad number", lambda d: edit(d / "utt2num_frames", "spka-u2 101", "spka-u2 0"),
     "data/utt2num_frames:2: expected a positive number, got '0'"),
])
def test_broken_dir_names_file_and_line(data, name, breaker, message):
    breaker(data)
    res = validate(data)
    assert res.returncode == 1, name
    assert res.stdout == ""
    errors = res.stderr.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("ERROR") and message in errors[0], errors


def test_segments_rules(data):
    (data / "segments").write_text("".join(
        f"{u} rec1 {i}.0 {i}.5\n" for i, u in enumerate(sorted(l.split()[0] for l in lines(data / "utt2spk")))))
    (data / "wav.scp").write_text("rec1 audio/spka-u1.wav\n")
    assert validate(data).returncode == 0
    edit(data / "segments", "spka-u2 rec1 1.0 1.5", "spka-u2 rec1 1.5 1.0")
    assert validate(data).stderr.strip().endswith(
        "data/segments:2: need 0 <= start < end, got 1.5 1.0")
    edit(data / "segments", "spka-u2 rec1 1.5 1.0", "spka-u2 rec2 1.0 1.5")
    assert validate(data).stderr.strip().endswith("data/segments:2: recording 'rec2' is not in wav.scp")


def test_fix_repairs_unsorted_inconsistent_dir(data):
    # unsorted utt2spk, a duplicate line, stale spk2utt, an utterance without feats,
    # and a wav.scp entry without utt2spk
    utt2spk = lines(data / "utt2spk")
    (data / "utt2spk").write_text("".join([utt2spk[4], *utt2spk[:4], utt2spk[0]]))
    (data / "spk2utt").write_text("spkb spkb-u1\nspka spka-u1\n")
    edit(data / "feats.scp", "spka-u2 f.ark:9\n", "")
    (data / "wav.scp").write_text((data / "wav.scp").read_text() + "zz-extra audio/none.wav\n")
    original = {p.name: p.read_text() for p in data.iterdir()}
    assert validate(data).returncode == 1

    res = run(data.parent, "fix_data_dir.sh", "data")
    assert res.returncode == 0, res.stderr
    assert "kept 4 of 5 utterances (1 dropped, 1 duplicate lines removed)" in res.stdout
    assert validate(data).returncode == 0, validate(data).stderr
    assert (data / "utt2spk").read_text() == "spka-u1 spka\nspka-u3 spka\nspkb-u1 spkb\nspkb-u2 spkb\n"
    assert (data / "spk2utt").read_text() == "spka spka-u1 spka-u3\nspkb spkb-u1 spkb-u2\n"
    assert "spka-u2" not in (data / "utt2num_frames").read_text()
    assert "zz-extra" not in (data / "wav.scp").read_text()
    assert {p.name: p.read_text() for p in (data / ".backup").iterdir()} == original


def test_subset_by_first_utt_list_and_spk_list(data, tmp_path):
    res = run(tmp_path, "subset_data_dir.sh", "--first", 2, "data", "first2")
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "first2/utt2spk").read_text() == "spka-u1 spka\nspka-u2 spka\n"
    assert (tmp_path / "first2/spk2utt").read_text() == "spka spka-u1 spka-u2\n"
    assert validate(tmp_path / "first2").returncode == 0

    (tmp_path / "spks").write_text("spkb\n")
    assert run(tmp_path, "subset_data_dir.sh", "--spk-list", "spks", "data", "b").returncode == 0
    assert (tmp_path / "b/feats.scp").read_text() == "spkb-u1 f.ark:27\nspkb-u2 f.ark:36\n"
    assert validate(tmp_path / "b").returncode == 0

    (tmp_path / "utts").write_text("spkb-u2\nspka-u3 extra fields\n")
    assert run(tmp_path, "subset_data_dir.sh", "--utt-list", "utts", "data", "u").returncode == 0
    assert (tmp_path / "u/utt2spk").read_text() == "spka-u3 spka\nspkb-u2 spkb\n"
    assert validate(tmp_path / "u").returncode == 0

    (tmp_path / "utts").write_text("spkb-u2\nnope\n")
    res = run(tmp_path, "subset_data_dir.sh", "--utt-list", "utts", "data", "v")
    assert res.returncode == 1 and "utts:2: utterance 'nope' is not in data/utt2spk" in res.stderr
    res = run(tmp_path, "subset_data_dir.sh", "--first", 6, "data", "w")
    assert res.returncode == 1 and "cannot take the first 6 of 5 utterances" in res.stderr
