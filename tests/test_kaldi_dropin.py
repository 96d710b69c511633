"""docs/kaldi.md "Use it in your Kaldi recipe", run as written from a Kaldi-style recipe dir that
is not the checkout: every command that needs no Kaldi binary runs (training shrunk to a few
steps of a tiny model), and every file the Kaldi commands name is read back with two independent
readers, kaldiio and kaldi_native_io."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import kaldi_native_io as kni
import kaldiio
import numpy as np
import pytest

from helpers import clean_env, python, run

ROOT = Path(__file__).resolve().parents[1]
DIM = 80
SPEAKERS = {"train": [f"tr{i:02d}" for i in range(12)], "test": ["te1", "te2", "te3"]}
UTTS_PER_SPK = 2
# Sizes for the test only: appended to the documented training command.
TINY_TRAINING = (" --max-steps 2 --seq-batch-size 4 --device cpu --num-threads 1"
                 " --set model.hidden=8 --set model.num_layers=1 --set model.z1_dim=4"
                 " --set model.z2_dim=6 --set batch_size=16 --set dev_every=1000")
# First words of the documented commands that need Kaldi (not installed here).
KALDI = ("utils/", "steps/", "copy-feats", "feat-to-dim", "apply-cmvn", "ivector-")
DOC_S = 200       # the documented commands (~40 s on 2 idle cores), below the per-test limit

pytestmark = pytest.mark.slow


def documented_commands() -> list[str]:
    """The shell block of docs/kaldi.md's Kaldi-recipe section, continuation lines joined."""
    text = (ROOT / "docs" / "kaldi.md").read_text()
    section = text.split("## Use it in your Kaldi recipe", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    commands, current = [], ""
    for line in block.splitlines():
        line = re.sub(r"\s+#.*$", "", line) if not line.startswith("#") else ""
        if not line.strip():
            continue
        current += line.rstrip("\\").rstrip() + " " if line.endswith("\\") else line
        if not line.endswith("\\"):
            commands.append(current.strip())
            current = ""
    return commands


def kaldi_data_dir(recipe: Path, name: str, rng: np.random.Generator) -> None:
    """data/<name> as Kaldi's make_fbank.sh leaves it: CM-compressed arks in fbank/ (absolute
    paths in feats.scp), utt2num_frames, utt2dur, frame_shift, text, wav.scp."""
    data = recipe / "data" / name
    data.mkdir(parents=True)
    utts = {f"{spk}-u{j}": spk for spk in SPEAKERS[name] for j in range(UTTS_PER_SPK)}
    frames = {utt: int(rng.integers(30, 70)) for utt in utts}
    (recipe / "fbank").mkdir(exist_ok=True)
    ark, scp = recipe / "fbank" / f"raw_fbank_{name}.1.ark", recipe / "fbank" / f"raw_fbank_{name}.1.scp"
    with kni.CompressedMatrixWriter(f"ark,scp:{ark},{scp}") as writer:
        for utt in sorted(utts):
            feats = rng.normal(10.0, 3.0, size=(frames[utt], DIM)).astype(np.float32)
            writer.write(utt, feats, kni.CompressionMethod.kAutomaticMethod)

    def table(file: str, values: dict[str, object]) -> None:
        (data / file).write_text("".join(f"{k} {values[k]}\n" for k in sorted(values)))
    (data / "feats.scp").write_text(scp.read_text())
    table("utt2spk", utts)
    table("spk2utt", {s: " ".join(u for u in sorted(utts) if utts[u] == s) for s in SPEAKERS[name]})
    table("utt2num_frames", frames)
    table("utt2dur", {u: f"{(n - 1) * 0.01 + 0.025:.3f}" for u, n in frames.items()})
    table("text", {u: "HELLO WORLD" for u in utts})
    table("wav.scp", {u: f"sph2pipe -f wav corpus/{u}.sph |" for u in utts})
    (data / "frame_shift").write_text("0.01\n")


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    """(recipe dir, completed bash process) after running the documented commands."""
    recipe = tmp_path_factory.mktemp("kaldi_recipe")
    rng = np.random.default_rng(7)
    for name in SPEAKERS:
        kaldi_data_dir(recipe, name, rng)
    runnable = []
    for command in documented_commands():
        if command.startswith(KALDI):
            continue
        assert command.startswith(("fhvae=", ". $fhvae/", "python -m fhvae", "$fhvae/utils/",
                                   "s=")), f"unclassified documented command: {command}"
        command = command.replace("fhvae=/path/to/fhvae-kaldi", f"fhvae={ROOT}")
        command = command.replace("--nj 8", "--nj 2")              # 2 cores here
        if command.startswith("python -m fhvae train"):
            command += TINY_TRAINING
        runnable.append(command)
    script = "set -euo pipefail\n" + "\n".join(runnable) + "\n"
    # path.sh takes the interpreter running the tests (no .venv needed in the checkout).
    env = clean_env(drop=("PYTHONPATH", "FHVAE_ROOT"), train_cmd="run_local.sh", LC_ALL="C",
                    FHVAE_PYTHON=python())
    proc = run(["bash", "-c", script], cwd=recipe, env=env, timeout=DOC_S)
    assert proc.returncode == 0, script + proc.stderr[-3000:]
    return recipe, proc


def both_readers(scp: Path, kind: str) -> dict[str, np.ndarray]:
    """The table through kaldiio and kaldi_native_io (must agree), from the current dir."""
    ours = {k: np.asarray(v) for k, v in kaldiio.load_scp(str(scp)).items()}
    reader = getattr(kni, f"Sequential{kind}Reader")
    with reader(f"scp:{scp}") as table:
        theirs = {k: np.array(v, copy=True) for k, v in table}
    assert list(theirs) == sorted(ours)
    for key, value in ours.items():
        np.testing.assert_allclose(theirs[key], value, rtol=1e-6, atol=1e-5, err_msg=key)
    return ours


def utt2spk(data: Path) -> dict[str, str]:
    return dict(line.split() for line in (data / "utt2spk").read_text().splitlines())


def test_documented_commands_ran_from_the_recipe_dir(recipe):
    root, proc = recipe
    assert f"{len(SPEAKERS['train']) * UTTS_PER_SPK} utterances and 12 speakers extracted" \
        in proc.stdout
    assert not (ROOT / "data" / "train_z1").exists()         # nothing written in the checkout


@pytest.mark.parametrize("name", ["train", "test"])
def test_latent_data_dirs_are_kaldi_feature_dirs(recipe, name, tmp_path):
    root, _ = recipe
    os.chdir(tmp_path)                                       # absolute paths: any cwd works
    data, frames = root / "data" / name, {}
    for line in (data / "utt2num_frames").read_text().splitlines():
        frames[line.split()[0]] = int(line.split()[1])
    for z, dim in (("z1", 4), ("z2", 6)):
        zdir = root / "data" / f"{name}_{z}"
        feats = both_readers(zdir / "feats.scp", "FloatMatrix")
        assert {k: v.shape for k, v in feats.items()} == {k: (n, dim) for k, n in frames.items()}
        ark, offset = (zdir / "feats.scp").read_text().split()[1].rsplit(":", 1)
        assert Path(ark).is_absolute() and Path(ark).parent == root / "exp/fhvae" / f"latents_{name}"
        with open(ark, "rb") as handle:                      # --compress true: Kaldi CM
            handle.seek(int(offset))
            assert handle.read(5) == b"\0BCM "
        assert utt2spk(zdir) == utt2spk(data)
        for same in ("spk2utt", "text", "utt2dur", "wav.scp", "frame_shift", "utt2num_frames"):
            assert (zdir / same).read_text() == (data / same).read_text(), same
        cmvn = both_readers(zdir / "cmvn.scp", "DoubleMatrix")
        assert sorted(cmvn) == SPEAKERS[name]
        for spk, stats in cmvn.items():
            rows = np.concatenate([feats[u] for u, s in utt2spk(data).items() if s == spk])
            rows = rows.astype(np.float64)
            assert stats.shape == (2, dim + 1) and stats.dtype == np.float64
            np.testing.assert_allclose(stats[0, :dim], rows.sum(0), rtol=1e-6, atol=1e-6)
            np.testing.assert_allclose(stats[1, :dim], (rows ** 2).sum(0), rtol=1e-6, atol=1e-6)
            assert (stats[0, dim], stats[1, dim]) == (len(rows), 0.0)


def test_svector_tables_for_the_ivector_tools(recipe, tmp_path):
    root, _ = recipe
    os.chdir(tmp_path)
    for name in ("train", "test"):
        lat = root / "exp/fhvae" / f"latents_{name}"
        spk_of = utt2spk(root / "data" / name)
        svec = both_readers(lat / "svector.scp", "FloatVector")
        assert set(svec) == set(spk_of) and all(v.shape == (6,) for v in svec.values())
        spk = both_readers(lat / "spk_svector.scp", "FloatVector")
        assert sorted(spk) == SPEAKERS[name]
        for speaker, mean in spk.items():
            np.testing.assert_allclose(
                mean, np.mean([v for u, v in svec.items() if spk_of[u] == speaker], 0),
                rtol=1e-5, atol=1e-6)
        with kni.SequentialInt32Reader(f"ark:{lat / 'num_utts.ark'}") as reader:
            counts = dict(reader)
        assert counts == {s: UTTS_PER_SPK for s in SPEAKERS[name]}
        text = (lat / "num_utts.ark").read_text()       # ivector-mean's ark,t: lines
        assert text == "".join(f"{s} {n} \n" for s, n in sorted(counts.items()))
    with kni.SequentialFloatMatrixReader(f"scp:{root}/data/train_z1/feats.scp") as reader:
        assert sum(1 for _ in reader) == len(SPEAKERS["train"]) * UTTS_PER_SPK


def _compressed(scp: Path) -> dict[str, tuple[bytes, np.ndarray, np.ndarray]]:
    """Every entry of a table of Kaldi compressed matrices, parsed as Kaldi's
    CompressedMatrix stores it: (format and global header bytes, per-column headers, codes).

    "CM " (kOneByteWithColHeaders, more than 8 rows under kAutomaticMethod): min and range
    (float32), rows and cols (int32), four uint16 percentiles per column, then one byte per
    value column by column; "CM2 " (kTwoByte): the same global header, then uint16 codes."""
    out = {}
    for line in scp.read_text().splitlines():
        key, where = line.split()
        ark, offset = where.rsplit(":", 1)
        with open(ark, "rb") as handle:
            handle.seek(int(offset))
            magic = handle.read(6)
            fmt = b"CM2 " if magic[2:] == b"CM2 " else magic[2:5]
            assert magic[:2] == b"\0B" and fmt in (b"CM ", b"CM2 "), (key, magic)
            handle.seek(int(offset) + 2 + len(fmt))
            header = handle.read(16)
            rows, cols = np.frombuffer(header[8:], dtype=np.int32)
            if fmt == b"CM ":
                columns = np.frombuffer(handle.read(8 * cols), dtype=np.uint16).reshape(cols, 4)
                codes = np.frombuffer(handle.read(rows * cols), dtype=np.uint8)
            else:
                columns = np.zeros((0, 4), dtype=np.uint16)
                codes = np.frombuffer(handle.read(2 * rows * cols), dtype=np.uint16)
        out[key] = (fmt + header, columns.astype(np.int64), codes.astype(np.int64))
    return out


def _kaldi_compress(matrices: dict[str, np.ndarray], reference: str, tmp: Path) -> Path:
    """`copy-feats --compress=true` of float matrices (kAutomaticMethod) by Kaldi's own
    code, kaldi_native_io's CompressedMatrixWriter or the copy-feats binary: its scp."""
    ark, scp = tmp / f"{reference}.ark", tmp / f"{reference}.scp"
    if reference == "kaldi-native-io":
        with kni.CompressedMatrixWriter(f"ark,scp:{ark},{scp}") as writer:
            for key, value in matrices.items():
                writer.write(key, value, kni.CompressionMethod.kAutomaticMethod)
        return scp
    copy_feats = shutil.which("copy-feats") or "/opt/kaldi/bin/copy-feats"
    if not os.access(copy_feats, os.X_OK):
        pytest.skip("no Kaldi copy-feats here (kaldi-native-io is the reference)")
    plain = tmp / "plain-input.ark"
    with kni.FloatMatrixWriter(f"ark:{plain}") as writer:
        for key, value in matrices.items():
            writer.write(key, value)
    done = run([copy_feats, "--compress=true", f"ark:{plain}", f"ark,scp:{ark},{scp}"],
               timeout=60)
    assert done.returncode == 0, done.stderr
    return scp


@pytest.fixture(scope="module")
def plain_latents(recipe, tmp_path_factory):
    """The documented --compress latents' plain twin: the same model and data, uncompressed."""
    root, _ = recipe
    plain = tmp_path_factory.mktemp("plain")
    proc = run([python(), "-m", "fhvae", "extract", "--device", "cpu",
                str(root / "exp/fhvae/final.pt"), str(root / "data/train"), str(plain)],
               cwd=plain, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return plain


def test_compressed_latents_are_smaller(recipe, plain_latents):
    """The documented --compress against a plain extraction of the same data: ~4x smaller."""
    root, _ = recipe
    packed = root / "exp/fhvae/latents_train"
    for z in ("z1", "z2"):
        small = sum(p.stat().st_size for p in packed.glob(f"{z}.*.ark"))
        big = (plain_latents / f"{z}.ark").stat().st_size
        print(f"{z}: compressed {small} bytes, plain {big} bytes")
        assert small < big / 2.5


@pytest.mark.parametrize("reference", ["kaldi-native-io", "copy-feats"])
def test_compressed_latents_are_kaldis_compression(recipe, plain_latents, tmp_path, reference):
    """Each compressed latent matrix is what Kaldi's own compression of the plain matrix
    writes: the same format (CM, or CM2 for at most 8 rows), the same global header and
    per-column percentile headers, and codes that differ by at most one quantisation step
    (kaldiio and Kaldi round a value on a step boundary differently)."""
    root, _ = recipe
    packed = root / "exp/fhvae/latents_train"
    for z in ("z1", "z2"):
        plain = both_readers(plain_latents / f"{z}.scp", "FloatMatrix")
        got = _compressed(packed / f"{z}.scp")
        want = _compressed(_kaldi_compress(plain, reference, tmp_path))
        assert got.keys() == want.keys() == plain.keys()
        for key, (header, columns, codes) in got.items():
            w_header, w_columns, w_codes = want[key]
            assert header == w_header, (z, key, header, w_header)
            assert np.abs(columns - w_columns).max(initial=0) <= 1, (z, key)
            assert codes.shape == w_codes.shape and np.abs(codes - w_codes).max() <= 1, \
                (z, key, np.abs(codes - w_codes).max())
            assert np.mean(codes != w_codes) < 0.05, (z, key)   # boundary cases only
