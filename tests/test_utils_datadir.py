"""utils/{validate,fix,subset}_data_dir.sh and split_data.sh, run from a recipe dir with the
command lines Kaldi recipes use, on a tiny generated data/train."""

import os
from pathlib import Path

import pytest

import helpers

ROOT = Path(__file__).resolve().parents[1]
SPKS = {"spka": 3, "spkb": 2}
UTTS = [(f"{s}-u{i}", s) for s, n in SPKS.items() for i in range(1, n + 1)]
FRAMES = {"spka-u1": 150, "spka-u2": 120, "spka-u3": 90, "spkb-u1": 130, "spkb-u2": 90}


def run(cwd, script, *args):
    return helpers.run([f"utils/{script}", *map(str, args)], cwd=cwd, timeout=60)


@pytest.fixture
def recipe(tmp_path):
    """A recipe dir (utils/ linked) whose data/train has 5 utterances of 2 speakers, real
    wav paths, feats.scp, text, utt2num_frames and reco2dur (no segments)."""
    (tmp_path / "utils").symlink_to(ROOT / "utils")
    d = tmp_path / "data" / "train"
    d.mkdir(parents=True)
    (tmp_path / "audio").mkdir()
    for u, _ in UTTS:
        (tmp_path / "audio" / f"{u}.wav").write_bytes(b"RIFF")
    (tmp_path / "f.ark").write_bytes(b"")
    (d / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s in UTTS))
    (d / "spk2utt").write_text("".join(
        f"{s} {' '.join(u for u, t in UTTS if t == s)}\n" for s in SPKS))
    (d / "wav.scp").write_text("".join(f"{u} audio/{u}.wav\n" for u, _ in UTTS[:-1])
                               + f"{UTTS[-1][0]} sox audio/x.wav -t wav - |\n")
    (d / "feats.scp").write_text("".join(f"{u} f.ark:{9 * i}\n" for i, (u, _) in enumerate(UTTS)))
    (d / "text").write_text("".join(f"{u} word {i}\n" for i, (u, _) in enumerate(UTTS)))
    (d / "utt2num_frames").write_text("".join(f"{u} {FRAMES[u]}\n" for u, _ in UTTS))
    (d / "reco2dur").write_text("".join(f"{u} {FRAMES[u] / 100}\n" for u, _ in UTTS))
    return tmp_path


def validate(recipe, data, *opts):
    return run(recipe, "validate_data_dir.sh", *opts, data)


def edit(path, old, new):
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def lines(path):
    return path.read_text().splitlines(True)


def keys(path):
    return [line.split()[0] for line in path.read_text().splitlines()]


def test_valid_dir_passes_with_summary(recipe):
    res = validate(recipe, "data/train")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines() == [
        "validate_data_dir: data/train OK: 5 utterances, 2 speakers; "
        "utt2spk spk2utt wav.scp feats.scp reco2dur text utt2num_frames"]


def test_required_files_as_kaldi(recipe):
    d = recipe / "data/train"
    (d / "text").unlink()
    assert "data/train/text: no such file (required unless --no-text)" in validate(
        recipe, "data/train").stderr
    assert validate(recipe, "data/train", "--no-text").returncode == 0
    (d / "feats.scp").unlink()
    assert "data/train/feats.scp: no such file (required unless --no-feats)" in validate(
        recipe, "data/train", "--no-text").stderr
    assert validate(recipe, "data/train", "--no-feats", "--no-text").returncode == 0
    (d / "wav.scp").unlink()
    (d / "reco2dur").unlink()
    assert "data/train/wav.scp: no such file" in validate(
        recipe, "data/train", "--no-feats", "--no-text").stderr
    res = validate(recipe, "data/train", "--no-feats", "--no-text", "--no-wav", "--non-print")
    assert res.returncode == 0, res.stderr


def test_utt2spk_must_also_be_in_speaker_order_unless_no_spk_sort(recipe):
    d = recipe / "data/train"
    # utterance order a < b, but b's speaker sorts first: Kaldi's default check fails
    (d / "utt2spk").write_text("a-1 z\nb-1 y\n")
    (d / "spk2utt").write_text("y b-1\nz a-1\n")
    for name in ("wav.scp", "feats.scp", "text", "utt2num_frames", "reco2dur"):
        (d / name).unlink()
    res = validate(recipe, "data/train", "--no-feats", "--no-text", "--no-wav")
    assert res.returncode == 1
    assert ("data/train/utt2spk:2: utterance 'b-1' of speaker 'y' comes after speaker 'z'"
            in res.stderr)
    assert validate(recipe, "data/train", "--no-feats", "--no-text", "--no-wav",
                    "--no-spk-sort").returncode == 0


@pytest.mark.parametrize("name, breaker, message", [
    ("unsorted", lambda d: (d / "utt2spk").write_text("".join(
        (lambda l: [l[0], l[2], l[1], *l[3:]])(lines(d / "utt2spk")))),
     "data/train/utt2spk:3: not sorted (LC_ALL=C): 'spka-u2' comes after 'spka-u3'"),
    ("duplicate", lambda d: (d / "wav.scp").write_text("".join(
        (lambda l: [*l[:2], l[1], *l[2:]])(lines(d / "wav.scp")))),
     "data/train/wav.scp:3: duplicate key 'spka-u2'"),
    ("missing wav", lambda d: (d.parents[1] / "audio/spka-u3.wav").unlink(),
     "data/train/wav.scp:3: 'spka-u3': audio file not found: audio/spka-u3.wav"),
    ("utt2spk vs spk2utt", lambda d: edit(d / "utt2spk", "spkb-u1 spkb", "spkb-u1 spka"),
     "data/train/spk2utt:2: utterance 'spkb-u1' is under speaker 'spkb' but utt2spk says 'spka'"),
    ("utt missing from spk2utt", lambda d: edit(d / "spk2utt", " spka-u3", ""),
     "data/train/utt2spk:3: utterance 'spka-u3' of speaker 'spka' is not in spk2utt"),
    ("missing file", lambda d: (d / "spk2utt").unlink(),
     "data/train/spk2utt: no such file (required)"),
    ("utt not in wav.scp", lambda d: edit(d / "wav.scp", "spkb-u1 audio/spkb-u1.wav\n", ""),
     "data/train/utt2spk:4: utterance 'spkb-u1' is not in wav.scp"),
    ("feats key", lambda d: edit(d / "feats.scp", "spka-u2 ", "spka-u2x "),
     "data/train/feats.scp:2: utterance 'spka-u2x' is not in utt2spk"),
    ("missing ark", lambda d: (d.parents[1] / "f.ark").unlink(),
     "data/train/feats.scp:1: 'spka-u1': feature file not found: f.ark"),
    ("unknown utt in utt2*", lambda d: (d / "utt2dur").write_text("spka-u1 1.5\nzz 2.0\n"),
     "data/train/utt2dur:2: unknown utt 'zz'"),
    ("bad number", lambda d: edit(d / "utt2num_frames", "spka-u2 120", "spka-u2 0"),
     "data/train/utt2num_frames:2: expected a positive number, got '0'"),
])
def test_broken_dir_names_file_and_line(recipe, name, breaker, message):
    breaker(recipe / "data/train")
    res = validate(recipe, "data/train")
    assert res.returncode == 1, name
    assert res.stdout == ""
    errors = res.stderr.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("ERROR") and message in errors[0], errors


def test_segments_rules(recipe):
    d = recipe / "data/train"
    (d / "segments").write_text("".join(
        f"{u} rec1 {i}.0 {i}.5\n" for i, (u, _) in enumerate(UTTS)))
    (d / "wav.scp").write_text("rec1 audio/spka-u1.wav\n")
    (d / "reco2dur").write_text("rec1 4.5\n")
    assert validate(recipe, "data/train").returncode == 0
    edit(d / "segments", "spka-u2 rec1 1.0 1.5", "spka-u2 rec1 1.5 1.0")
    assert validate(recipe, "data/train").stderr.strip().endswith(
        "data/train/segments:2: need 0 <= start < end, got 1.5 1.0")
    edit(d / "segments", "spka-u2 rec1 1.5 1.0", "spka-u2 rec2 1.0 1.5")
    assert validate(recipe, "data/train").stderr.strip().endswith(
        "data/train/segments:2: recording 'rec2' is not in wav.scp")


def test_fix_filters_every_table_as_kaldi(recipe):
    d = recipe / "data/train"
    # unsorted utt2spk with a duplicate line, stale spk2utt, spka-u2 without feats,
    # spkb-u1 without text, a wav.scp entry and a vad.scp entry without utt2spk,
    # cmvn.scp with a speaker that has no utterances; reco2dur and no segments
    utt2spk = lines(d / "utt2spk")
    (d / "utt2spk").write_text("".join([utt2spk[4], *utt2spk[:4], utt2spk[0]]))
    (d / "spk2utt").write_text("spkb spkb-u1\nspka spka-u1\n")
    edit(d / "feats.scp", "spka-u2 f.ark:9\n", "")
    edit(d / "text", "spkb-u1 word 3\n", "")
    (d / "wav.scp").write_text((d / "wav.scp").read_text() + "zz-extra audio/none.wav\n")
    (d / "vad.scp").write_text("".join(f"{u} vad.ark:{i}\n" for i, (u, _) in enumerate(UTTS))
                               + "zz-extra vad.ark:99\n")
    (d / "cmvn.scp").write_text("spka c.ark:1\nspkb c.ark:2\nspkc c.ark:3\n")
    original = {p.name: p.read_text() for p in d.iterdir()}
    assert validate(recipe, "data/train").returncode == 1

    res = run(recipe, "fix_data_dir.sh", "data/train")
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == ["fix_data_dir.sh: kept 3 utterances out of 5",
                                       "fix_data_dir.sh: removed 1 duplicate lines",
                                       "fix_data_dir.sh: old files are kept in data/train/.backup"]
    kept = ["spka-u1", "spka-u3", "spkb-u2"]
    for name in ("utt2spk", "wav.scp", "feats.scp", "text", "utt2num_frames", "reco2dur",
                 "vad.scp"):
        assert keys(d / name) == kept, name
    assert (d / "reco2dur").read_text() == "spka-u1 1.5\nspka-u3 0.9\nspkb-u2 0.9\n"
    assert (d / "spk2utt").read_text() == "spka spka-u1 spka-u3\nspkb spkb-u2\n"
    assert (d / "cmvn.scp").read_text() == "spka c.ark:1\nspkb c.ark:2\n"
    assert validate(recipe, "data/train").returncode == 0
    assert {p.name: p.read_text() for p in (d / ".backup").iterdir()} == original
    res = run(recipe, "fix_data_dir.sh", "data/train")
    assert res.stdout.splitlines()[0] == "fix_data_dir.sh: kept all 3 utterances."


def test_fix_with_segments_keeps_recordings_of_kept_utterances(recipe):
    d = recipe / "data/train"
    (d / "segments").write_text("spka-u1 r1 0 1\nspka-u2 r1 1 2\nspka-u3 r2 0 1\n"
                                "spkb-u1 r3 0 1\nspkb-u2 r2 1 2\n")
    (d / "wav.scp").write_text("r1 audio/spka-u1.wav\nr2 audio/spka-u2.wav\n"
                               "r3 audio/spka-u3.wav\n")
    (d / "reco2dur").write_text("r1 2.0\nr2 2.0\nr3 1.0\n")
    (d / "reco2file_and_channel").write_text("r1 r1 A\nr2 r2 A\nr3 r3 A\n")
    edit(d / "feats.scp", "spkb-u1 f.ark:27\n", "")
    res = run(recipe, "fix_data_dir.sh", "data/train")
    assert res.returncode == 0, res.stderr
    assert keys(d / "segments") == ["spka-u1", "spka-u2", "spka-u3", "spkb-u2"]
    for name in ("wav.scp", "reco2dur", "reco2file_and_channel"):
        assert keys(d / name) == ["r1", "r2"], name


def test_fix_refuses_when_no_utterance_remains(recipe):
    d = recipe / "data/train"
    (d / "text").write_text("nobody hello\n")
    before = {p.name: p.read_text() for p in d.iterdir()}
    res = run(recipe, "fix_data_dir.sh", "data/train")
    assert res.returncode == 1
    assert "data/train: no utterances remained" in res.stderr
    assert {p.name: p.read_text() for p in d.iterdir() if p.is_file()} == before


@pytest.mark.parametrize("args, kept", [
    # Kaldi's own command lines: [--option] <src> <num> <dst>
    (["--shortest", "data/train", 3, "data/train_3short"], ["spka-u2", "spka-u3", "spkb-u2"]),
    (["--first", "data/train", 2, "data/train_first2"], ["spka-u1", "spka-u2"]),
    (["--last", "data/train", 2, "data/train_last2"], ["spkb-u1", "spkb-u2"]),
    (["--per-spk", "data/train", 1, "data/train_1perspk"], ["spka-u1", "spkb-u1"]),
    (["--per-spk", "data/train", 2, "data/train_2perspk"],
     ["spka-u1", "spka-u2", "spkb-u1", "spkb-u2"]),
    # no option: spread evenly through utt2spk (lines 1, 3, 5 of 5 for 3)
    (["data/train", 3, "data/train_3"], ["spka-u1", "spka-u3", "spkb-u2"]),
    (["data/train", 5, "data/train_all"], [u for u, _ in UTTS]),
])
def test_subset_kaldi_command_lines(recipe, args, kept):
    res = run(recipe, "subset_data_dir.sh", *args)
    assert res.returncode == 0, res.stderr
    assert res.stdout == f"subset_data_dir.sh: reducing #utt from 5 to {len(kept)}\n"
    dst = recipe / args[-1]
    for name in ("utt2spk", "feats.scp", "text", "wav.scp", "utt2num_frames", "reco2dur"):
        assert keys(dst / name) == kept, name
    assert validate(recipe, args[-1]).returncode == 0


def test_subset_speakers_keeps_whole_speakers(recipe):
    res = run(recipe, "subset_data_dir.sh", "--speakers", "data/train", 3, "data/spk3")
    assert res.returncode == 0, res.stderr
    kept = keys(recipe / "data/spk3/utt2spk")
    # speakers are added in a fixed random order until there are >= 3 utterances: spka
    # alone (3), or spkb (2, too few) then spka; never a part of a speaker
    assert kept in ([u for u, s in UTTS if s == "spka"], [u for u, _ in UTTS])
    assert run(recipe, "subset_data_dir.sh", "--speakers", "data/train", 3,
               "data/spk3b").returncode == 0
    assert keys(recipe / "data/spk3b/utt2spk") == kept


def test_subset_lists_skip_unknown_ids_as_kaldi(recipe):
    (recipe / "spks").write_text("spkb\nspkz\n")
    res = run(recipe, "subset_data_dir.sh", "--spk-list", "spks", "data/train", "data/b")
    assert res.returncode == 0, res.stderr
    assert "spks:2: speaker 'spkz' is not in data/train/utt2spk (1 such ids skipped)" in res.stderr
    assert (recipe / "data/b/feats.scp").read_text() == "spkb-u1 f.ark:27\nspkb-u2 f.ark:36\n"
    assert (recipe / "data/b/spk2utt").read_text() == "spkb spkb-u1 spkb-u2\n"
    (recipe / "utts").write_text("spkb-u2\nspka-u3 extra fields\n")
    res = run(recipe, "subset_data_dir.sh", "--utt-list", "utts", "data/train", "data/u")
    assert res.returncode == 0, res.stderr
    assert (recipe / "data/u/utt2spk").read_text() == "spka-u3 spka\nspkb-u2 spkb\n"
    assert validate(recipe, "data/u").returncode == 0


@pytest.mark.parametrize("args, message", [
    (["--first", 2, "data/train", "data/x"], "<num> must be a positive integer, got 'data/train'"),
    (["data/train", 6, "data/x"], "data/train/utt2spk: cannot subset to 6 utterances, it has only 5"),
    (["--middle", "data/train", 2, "data/x"], "usage: subset_data_dir.sh"),
    (["--utt-list", "nolist", "data/train", "data/x"], "nolist: no such file"),
])
def test_subset_bad_command_lines(recipe, args, message):
    res = run(recipe, "subset_data_dir.sh", *args)
    assert res.returncode == 1 and message in res.stderr, res.stderr
    assert not (recipe / "data/x").exists()


def test_split_data_keeps_speakers_whole_and_skips_when_current(recipe):
    res = run(recipe, "split_data.sh", "data/train", 2)
    assert res.returncode == 0, res.stderr
    split = recipe / "data/train/split2"
    assert keys(split / "1/utt2spk") == ["spka-u1", "spka-u2", "spka-u3"]
    assert keys(split / "2/utt2spk") == ["spkb-u1", "spkb-u2"]
    for n in (1, 2):
        for name in ("feats.scp", "text", "wav.scp", "utt2num_frames", "reco2dur"):
            assert keys(split / f"{n}/{name}") == keys(split / f"{n}/utt2spk"), name
        assert validate(recipe, f"data/train/split2/{n}").returncode == 0
    stamp = (split / "1/feats.scp").stat().st_mtime_ns
    assert run(recipe, "split_data.sh", "data/train", 2).returncode == 0
    assert (split / "1/feats.scp").stat().st_mtime_ns == stamp  # up to date: not redone
    edit(recipe / "data/train/text", "word 0", "changed")
    future = (split / "1/text").stat().st_mtime + 10
    os.utime(recipe / "data/train/text", (future, future))
    assert run(recipe, "split_data.sh", "data/train", 2).returncode == 0
    assert (split / "1/text").read_text().startswith("spka-u1 changed\n")
    res = run(recipe, "split_data.sh", "data/train", 3)
    assert res.returncode == 1 and "data/train: cannot split 2 speakers into 3 parts" in res.stderr


def test_split_data_per_utt_and_per_reco(recipe):
    res = run(recipe, "split_data.sh", "--per-utt", "data/train", 2)
    assert res.returncode == 0, res.stderr
    parts = [keys(recipe / f"data/train/split2utt/{n}/utt2spk") for n in (1, 2)]
    assert parts == [["spka-u1", "spka-u2"], ["spka-u3", "spkb-u1", "spkb-u2"]]
    d = recipe / "data/train"
    (d / "segments").write_text("spka-u1 r1 0 1\nspka-u2 r2 0 1\nspka-u3 r1 1 2\n"
                                "spkb-u1 r2 1 2\nspkb-u2 r2 2 3\n")
    (d / "wav.scp").write_text("r1 audio/spka-u1.wav\nr2 audio/spka-u2.wav\n")
    (d / "reco2dur").write_text("r1 2.0\nr2 3.0\n")
    res = run(recipe, "split_data.sh", "--per-reco", "data/train", 2)
    assert res.returncode == 0, res.stderr
    split = d / "split2reco"
    assert keys(split / "1/utt2spk") == ["spka-u1", "spka-u3"]
    assert keys(split / "2/utt2spk") == ["spka-u2", "spkb-u1", "spkb-u2"]
    assert [keys(split / f"{n}/wav.scp") for n in (1, 2)] == [["r1"], ["r2"]]
    assert [keys(split / f"{n}/reco2dur") for n in (1, 2)] == [["r1"], ["r2"]]
