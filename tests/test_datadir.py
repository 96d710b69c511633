"""The DataDir value: its tables and features read against independent references (plain
text parsing, kaldiio), one-line errors that name the file and line, the one writer
(C-sorted tables, spk2utt derived from utt2spk), and fhvae/io free of import circles."""

import ast
from pathlib import Path

import kaldiio
import numpy as np
import pytest

from fhvae.errors import FhvaeError
from fhvae.io.datadir import FEATS_SCP, SPK2UTT, TEXT, UTT2SPK, DataDir

ROOT = Path(__file__).resolve().parents[1]
# utt -> (speaker, frames); unsorted on purpose ('B' < '_' < 'a' in C order)
UTTS = {"a3": ("s2", 7), "a1": ("s1", 5), "B9": ("s1", 3), "_x": ("s3", 4)}


@pytest.fixture
def data(tmp_path):
    """A data dir whose feats.scp (sorted, as Kaldi writes it) kaldiio wrote, and the
    matrices it holds."""
    rng = np.random.default_rng(0)
    feats = {u: rng.standard_normal((t, 3)).astype(np.float32) for u, (_, t) in UTTS.items()}
    path = tmp_path / "data"
    path.mkdir()
    ark, scp = tmp_path / "feats.ark", path / "feats.scp"
    with kaldiio.WriteHelper(f"ark,scp:{ark},{scp}") as writer:
        for utt in sorted(feats, key=str.encode):
            writer(utt, feats[utt])
    (path / "utt2spk").write_text("".join(f"{u} {s}\n" for u, (s, _) in UTTS.items()))
    (path / "utt2noise").write_text("a3 babble\na1 clean\nB9 clean\n_x car\n")
    (path / "text").write_text("a3 one two\na1\nB9 three\n_x four\n")
    return DataDir(path), feats


def reference_pairs(path: Path) -> list[tuple[str, str]]:
    """`<key> <value>` lines as plain Python splits them."""
    return [tuple((line.split(maxsplit=1) + [""])[:2])
            for line in path.read_text().splitlines()]


def test_tables_match_a_plain_parse(data):
    dd, _ = data
    assert dd.pairs(UTT2SPK) == reference_pairs(dd.utt2spk)
    assert dd.table(UTT2SPK) == dict(reference_pairs(dd.utt2spk))
    assert dd.pairs(TEXT) == [("a3", "one two"), ("a1", ""), ("B9", "three"), ("_x", "four")]
    assert dd.factors() == {"speaker": dd.table(UTT2SPK), "noise": dd.table("utt2noise")}
    assert dd.kinds() == {"feats.scp": "utt", "text": "utt", "utt2noise": "utt",
                          "utt2spk": "utt"}


def test_feats_match_kaldiio(data):
    dd, feats = data
    read = dict(dd.feats())
    assert list(read) == sorted(feats)
    for utt, mat in kaldiio.load_scp(str(dd.feats_scp)).items():
        np.testing.assert_array_equal(read[utt], mat)
        np.testing.assert_array_equal(read[utt], feats[utt])
    assert [u for u, _ in dd.feats(["a3", "B9"], dim=3)] == ["a3", "B9"]   # order asked for
    entries = dd.feats_entries()
    assert [(n, u) for n, u, _ in entries] == [(1, "B9"), (2, "_x"), (3, "a1"), (4, "a3")]
    assert [u for u, _ in dd.read_feats(entries[2:], "test")] == ["a1", "a3"]
    streamed = list(dd.stream_feats(dim=3))        # a line at a time: feats()'s matrices
    assert [u for u, _ in streamed] == list(read)
    for utt, mat in streamed:
        np.testing.assert_array_equal(mat, read[utt])
    assert [u for u, _ in dd.stream_feats(rows={0, 3})] == ["B9", "a3"]
    assert (dd.feats_dim(), dd.num_feats()) == (3, 4)


def test_fast_locations_match_the_line_reader(data):
    dd, _ = data
    utts, arks, offsets = dd.feats_locations()
    assert [u.decode() for u in utts] == [u for _, u, _ in dd.feats_entries()]
    assert [f"{a.decode()}:{o}" for a, o in zip(arks, offsets)] == \
        [rx for _, _, rx in dd.feats_entries()]


@pytest.mark.parametrize("bad_line, reader, message", [
    ("a2\n", "feats_entries", "feats.scp:3: key 'a2' has no value"),
    ("a2\n", "feats_locations", "feats.scp:3: expected '<utt> <rxfile>', got 'a2'"),
    ("a2 x.ark:0\n", "feats", "feats.scp:3 (a2): ark file not found"),
    ("B9 x.ark:0\n", "feats_entries", "feats.scp:3: duplicate key 'B9'"),
    ("B9 x.ark:0\n", "feats_locations", "feats.scp:3: duplicate key 'B9'"),
    ("a2\n", "stream_feats", "feats.scp:3: key 'a2' has no value"),
    ("_x x.ark:0\n", "stream_feats", "feats.scp:3: duplicate key '_x'"),
    ("B9 x.ark:0\n", "stream_feats", "feats.scp:3: not sorted (LC_ALL=C): 'B9' comes after '_x'"),
])
def test_a_bad_line_is_one_line_naming_file_and_line(data, bad_line, reader, message):
    dd, _ = data
    lines = dd.feats_scp.read_text().splitlines(True)
    dd.feats_scp.write_text("".join(lines[:2] + [bad_line] + lines[2:]))
    with pytest.raises(FhvaeError) as err:
        result = getattr(dd, reader)()
        if reader in ("feats", "stream_feats"):
            list(result)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert str(err.value).startswith(str(dd.feats_scp))


def test_unsorted_feats_scp_and_wrong_dims_are_named(data):
    dd, _ = data
    lines = dd.feats_scp.read_text().splitlines(True)
    dd.feats_scp.write_text("".join(reversed(lines)))
    with pytest.raises(FhvaeError, match=r"feats.scp:2: not sorted \(LC_ALL=C\): 'a1'"):
        dd.feats_entries()
    with pytest.raises(FhvaeError, match=r"feats.scp:2: not sorted \(LC_ALL=C\): 'a1'"):
        list(dd.stream_feats())
    with pytest.raises(FhvaeError, match=r"feats.scp: 'a3' has shape \(7, 3\), expected \(T, 4\)"):
        list(dd.feats(["a3"], dim=4))
    with pytest.raises(FhvaeError, match="feats.scp: no features for utterance 'zz'"):
        list(dd.feats(["a3", "zz"]))


def test_the_writer_sorts_and_derives_spk2utt(tmp_path):
    out = DataDir(tmp_path / "new")
    assert out.write_utt2spk([("s2-b", "s2"), ("s1-b", "s1"), ("s2-a", "s2"), ("s1-a", "s1")]) == 2
    out.write(FEATS_SCP, [("s2-a", "x.ark:9"), ("s1-a", "x.ark:1")])
    out.write_text("phone_ali.ctm", "s1-a 1 0.00 0.10 sil sil\n")
    assert out.utt2spk.read_text() == "s1-a s1\ns1-b s1\ns2-a s2\ns2-b s2\n"
    assert out.file(SPK2UTT).read_text() == "s1 s1-a s1-b\ns2 s2-a s2-b\n"
    assert out.feats_scp.read_text() == "s1-a x.ark:1\ns2-a x.ark:9\n"
    assert sorted(p.name for p in out.path.iterdir()) == \
        ["feats.scp", "phone_ali.ctm", "spk2utt", "utt2spk"]     # no temporary left
    out.remove(FEATS_SCP)
    out.remove(FEATS_SCP)                                         # absent: nothing to do
    assert not out.feats_scp.exists() and out.ctms() == ["phone_ali.ctm"]


def test_write_lines_streams_a_file_in_place_or_leaves_it_as_it_was(tmp_path):
    """A corpus's CTM is written from a generator, possibly while the old file is read."""
    out = DataDir(tmp_path)
    out.write_text("phone_ali.ctm", "a 1 0.0 0.1 sil sil\nb 1 0.0 0.1 sil sil\n")
    with open(out.file("phone_ali.ctm")) as old:
        out.write_lines("phone_ali.ctm", (line for line in old if line.startswith("b")))
    assert out.file("phone_ali.ctm").read_text() == "b 1 0.0 0.1 sil sil\n"

    def failing():
        yield "c 1 0.0 0.1 sil sil\n"
        raise FhvaeError("reading stopped")
    with pytest.raises(FhvaeError, match="reading stopped"):
        out.write_lines("phone_ali.ctm", failing())
    assert out.file("phone_ali.ctm").read_text() == "b 1 0.0 0.1 sil sil\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["phone_ali.ctm"]   # no temporary


def _io_imports(path: Path) -> set[str]:
    """The fhvae.io modules that a module of fhvae/io imports (at any depth of its code)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("fhvae.io."):
            names.add(node.module.split(".")[2])
    return names


def test_fhvae_io_has_no_import_circle():
    modules = {p.stem: _io_imports(p) for p in (ROOT / "fhvae" / "io").glob("*.py")}
    done: set[str] = set()

    def visit(name: str, stack: tuple[str, ...]) -> None:
        assert name not in stack, f"import circle: {' -> '.join(stack + (name,))}"
        if name not in done:
            for dep in modules.get(name, ()):
                visit(dep, stack + (name,))
            done.add(name)

    for name in modules:
        visit(name, ())
