"""utils/split_scp.sh: contiguous, balanced, complete parts; speaker-preserving mode."""

from pathlib import Path

import pytest

import helpers
from fhvae.io.split import balanced_cuts

ROOT = Path(__file__).resolve().parents[1]


def split(tmp_path, *args):
    return helpers.run([str(ROOT / "utils/split_scp.sh"), *map(str, args)], cwd=tmp_path,
                       timeout=60)


def write_scp(path, keys):
    path.write_text("".join(f"{k} /feats/{k}.ark:12\n" for k in keys))
    return path


def test_split_is_contiguous_balanced_and_complete(tmp_path):
    lines = write_scp(tmp_path / "in.scp", [f"u{i:02d}" for i in range(10)]).read_text()
    outs = [tmp_path / f"out.{j}.scp" for j in range(1, 5)]
    res = split(tmp_path, "in.scp", *outs)
    assert res.returncode == 0, res.stderr
    parts = [o.read_text() for o in outs]
    assert "".join(parts) == lines  # contiguous, in order, each line exactly once
    assert sorted(p.count("\n") for p in parts) == [2, 2, 3, 3]


def test_num_parts_pattern(tmp_path):
    write_scp(tmp_path / "in.scp", ["a", "b", "c"])
    res = split(tmp_path, "--num-parts", 3, "in.scp", "split/JOB.scp")
    assert res.returncode == 0, res.stderr
    assert [(tmp_path / f"split/{j}.scp").read_text().split()[0] for j in (1, 2, 3)] == ["a", "b", "c"]


def test_more_parts_than_lines_is_an_error(tmp_path):
    write_scp(tmp_path / "in.scp", ["a", "b"])
    res = split(tmp_path, "in.scp", "1.scp", "2.scp", "3.scp")
    assert res.returncode == 1
    assert "in.scp: cannot split 2 lines into 3 parts" in res.stderr
    assert not (tmp_path / "1.scp").exists()


def test_utt2spk_keeps_speakers_whole(tmp_path):
    # speakers of sizes 5, 1, 1, 4, 1 -> 12 lines in 3 parts
    sizes = {"s1": 5, "s2": 1, "s3": 1, "s4": 4, "s5": 1}
    utts = [(f"{s}-{i}", s) for s, n in sizes.items() for i in range(n)]
    (tmp_path / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s in utts))
    write_scp(tmp_path / "in.scp", [u for u, _ in utts])
    res = split(tmp_path, "--utt2spk", "utt2spk", "in.scp", "1.scp", "2.scp", "3.scp")
    assert res.returncode == 0, res.stderr
    parts = [[ln.split()[0].split("-")[0] for ln in (tmp_path / f"{j}.scp").read_text().splitlines()]
             for j in (1, 2, 3)]
    assert parts == [["s1"] * 5, ["s2", "s3"], ["s4"] * 4 + ["s5"]]
    res = split(tmp_path, "--utt2spk", "utt2spk", "in.scp", *[f"{j}.scp" for j in range(6)])
    assert res.returncode == 1 and "cannot split 5 speakers into 6 parts" in res.stderr


def test_utt2spk_non_contiguous_speaker_names_the_line(tmp_path):
    (tmp_path / "utt2spk").write_text("a s1\nb s2\nc s1\n")
    write_scp(tmp_path / "in.scp", ["a", "b", "c"])
    res = split(tmp_path, "--utt2spk", "utt2spk", "in.scp", "1.scp", "2.scp")
    assert res.returncode == 1
    assert "in.scp:3: lines of speaker 's1' are not contiguous" in res.stderr


@pytest.mark.parametrize("total, parts", [(7, 7), (100, 7), (13, 5), (1, 1)])
def test_balanced_cuts_unit_sizes_differ_by_at_most_one(total, parts):
    cuts = balanced_cuts([1] * total, parts)
    sizes = [b - a for a, b in zip(cuts, cuts[1:])]
    assert cuts[0] == 0 and cuts[-1] == total and len(sizes) == parts
    assert min(sizes) >= 1 and max(sizes) - min(sizes) <= 1


def test_kaldi_forms_utt2spk_equals_and_dash_j(tmp_path):
    # split_scp.pl --utt2spk=F in.scp out...; and -j N k writes only part k (0-based)
    (tmp_path / "utt2spk").write_text("a s1\nb s1\nc s2\nd s3\n")
    write_scp(tmp_path / "in.scp", ["a", "b", "c", "d"])
    res = split(tmp_path, "--utt2spk=utt2spk", "in.scp", "1.scp", "2.scp")
    assert res.returncode == 0, res.stderr
    assert [(tmp_path / f"{j}.scp").read_text().split()[::2] for j in (1, 2)] == [
        ["a", "b"], ["c", "d"]]
    for job, expected in ((0, ["a", "b"]), (1, ["c", "d"])):
        res = split(tmp_path, "--utt2spk=utt2spk", "-j", 2, job, "in.scp", f"j{job}.scp")
        assert res.returncode == 0, res.stderr
        assert (tmp_path / f"j{job}.scp").read_text().split()[::2] == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "1.scp", "2.scp", "in.scp", "j0.scp", "j1.scp", "utt2spk"]
    res = split(tmp_path, "-j", 2, 2, "in.scp", "j2.scp")
    assert res.returncode == 1 and "-j 2 2 needs 0 <= 2 < 2" in res.stderr
