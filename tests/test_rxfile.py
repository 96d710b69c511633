"""fhvae.io.rxfile: every Kaldi rxfile form parses, reads, and fails in one line."""

import os

import kaldiio
import numpy as np
import pytest

from fhvae.errors import FhvaeError
from fhvae.io.rxfile import RxFile, absolute, open_rxfile, parse, read_matrix, split_offsets
from fhvae.io.tables import write_table


@pytest.mark.parametrize("text, want", [
    ("a.ark", RxFile("a.ark")),
    ("/x/a.ark:12", RxFile("/x/a.ark", 12)),
    ("a.ark:12[0:3]", RxFile("a.ark", 12, "[0:3]")),
    ("a.ark:12[0:3,1:]", RxFile("a.ark", 12, "[0:3,1:]")),
    ("a.mat[2:4]", RxFile("a.mat", None, "[2:4]")),
    ("x:1:2", RxFile("x:1", 2)),
    ("host:file", RxFile("host:file")),
    ("copy-feats ark:a.ark ark:- |", RxFile("copy-feats ark:a.ark ark:-", pipe=True)),
    ("  cat m.mat|  ", RxFile("cat m.mat", pipe=True)),
])
def test_parse_each_form(text, want):
    assert parse(text, "feats.scp:1 (u)") == want


@pytest.mark.parametrize("text, message", [
    ("", "feats.scp:3 (u): empty rxfile"),
    ("a.ark:12[0:x]", "feats.scp:3 (u): bad range in rxfile 'a.ark:12[0:x]' (expected "
                      "'[r0:r1]' or '[r0:r1,c0:c1]')"),
    (" |", "feats.scp:3 (u): empty pipe command in rxfile '|'"),
])
def test_parse_rejects_in_one_line(text, message):
    with pytest.raises(FhvaeError) as err:
        parse(text, "feats.scp:3 (u)")
    assert str(err.value) == message


def test_absolute_keeps_the_tail_and_pipes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert absolute("a.ark:12[0:3]", "w") == f"{tmp_path}/a.ark:12[0:3]"
    assert absolute("a.mat", "w") == f"{tmp_path}/a.mat"
    assert absolute("cat a |", "w") == "cat a |"
    assert absolute("| gzip", "w") == "| gzip"


def test_split_offsets_marks_the_plain_form():
    values = np.array([b"/a.ark:10", b"b.mat", b"c.ark:5[0:1]", b"cat x |", b":7"])
    files, offsets, plain = split_offsets(values)
    assert plain.tolist() == [True, False, False, False, False]
    assert (files[0], offsets[0]) == (b"/a.ark", b"10")


def test_read_matrix_of_every_form(tmp_path):
    mat = np.arange(20, dtype=np.float32).reshape(5, 4)
    write_table(tmp_path / "m.ark", tmp_path / "m.scp", [("u", mat)])
    rx = (tmp_path / "m.scp").read_text().split()[1]
    single = tmp_path / "single.mat"
    kaldiio.save_mat(str(single), mat)
    np.testing.assert_array_equal(read_matrix(rx, "w"), mat)
    np.testing.assert_array_equal(read_matrix(rx + "[1:2,0:1]", "w"), mat[1:3, 0:2])
    np.testing.assert_array_equal(read_matrix(f"{single}[3:]", "w"), mat[3:])
    np.testing.assert_array_equal(read_matrix(str(single), "w"), mat)
    np.testing.assert_array_equal(read_matrix(f"cat {single} |", "w"), mat)


def test_read_matrix_errors_name_the_line(tmp_path):
    ark = tmp_path / "m.ark"
    write_table(ark, tmp_path / "m.scp", [("u", np.ones((2, 2)))])
    size = os.path.getsize(ark)
    with pytest.raises(FhvaeError, match=rf"^s.scp:4 \(u\): offset {size} is past the end "
                                         rf"of {ark} \({size} bytes; truncated ark or stale "
                                         r"scp\?\)$"):
        read_matrix(f"{ark}:{size}", "s.scp:4 (u)")
    with pytest.raises(FhvaeError, match=r"^s.scp:4 \(u\): 'false \|' failed or did not "
                                         r"write one binary Kaldi matrix$"):
        read_matrix("false |", "s.scp:4 (u)")


def test_open_rxfile_seeks_and_runs_pipes(tmp_path):
    (tmp_path / "f").write_bytes(b"0123456789")
    with open_rxfile(f"{tmp_path}/f:4", "w") as handle:
        assert handle.read() == b"456789"
    with open_rxfile("printf abc |", "w") as handle:
        assert handle.read() == b"abc"
    with pytest.raises(FhvaeError, match=r"^wav.scp:2: command 'echo no >&2; exit 3' failed "
                                         r"with exit status 3: no$"):
        open_rxfile("echo no >&2; exit 3 |", "wav.scp:2")
    with pytest.raises(FhvaeError, match=r"^wav.scp:2: audio file not found: /nonexistent$"):
        open_rxfile("/nonexistent", "wav.scp:2", "audio file")


def test_ranges_outside_the_matrix_fail_in_one_line(tmp_path):
    single = tmp_path / "single.mat"
    kaldiio.save_mat(str(single), np.zeros((5, 4), dtype=np.float32))
    with pytest.raises(FhvaeError, match=r"^s.scp:1 \(u\): range \[2:7\] is outside the "
                                         r"5x4 matrix$"):
        read_matrix(f"{single}[2:7]", "s.scp:1 (u)")
