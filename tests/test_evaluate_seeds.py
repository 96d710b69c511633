"""The training-seed table: EERs per seed with mean and range, verdicts per seed."""

import json

import pytest

from fhvae.bin.cli import run_main
from fhvae.bin.seed_table import main


def write_run(root, name, eers, verdicts):
    out = root / name / "eval_test"
    out.mkdir(parents=True)
    record = {"data_dir": "data/test", "model": f"exp/{name}/final.pt (step 9000)",
              "systems": {k: {"eer": v} for k, v in eers.items()},
              "comparisons": {k: {"difference": d, "verdict": v}
                              for k, (d, v) in verdicts.items()}}
    (out / "summary.json").write_text(json.dumps(record))
    return root / name


def test_seed_table_means_ranges_and_verdict_counts(tmp_path, capsys):
    cmp = "svector_lda-plda - ivector_lda-plda"
    dirs = [write_run(tmp_path, "seed1", {"svector_lda-plda": 3.0, "ivector_lda-plda": 5.0},
                      {cmp: (-2.0, "s-vector better")}),
            write_run(tmp_path, "seed2", {"svector_lda-plda": 6.0, "ivector_lda-plda": 5.0},
                      {cmp: (1.0, "no difference shown")}),
            write_run(tmp_path, "seed3", {"svector_lda-plda": 4.5, "ivector_lda-plda": 5.0},
                      {cmp: (-0.5, "baseline better")})]
    out = tmp_path / "seeds.md"
    assert main(["--out", str(out), "test", *map(str, dirs)]) == 0
    text = out.read_text()
    assert text in capsys.readouterr().out
    assert "| svector_lda-plda | 3.00 | 6.00 | 4.50 | 4.50 | 3.00 … 6.00 |" in text
    assert "| ivector_lda-plda | 5.00 | 5.00 | 5.00 | 5.00 | 5.00 … 5.00 |" in text
    assert f"| {cmp} | -2.00 (+) | +1.00 (0) | -0.50 (−) | -0.50 | 1 of 3 |" in text
    assert "over 3 training seeds" in text


def test_seed_table_names_a_missing_run(tmp_path, capsys):
    with pytest.raises(SystemExit):
        run_main(main, ["test", str(tmp_path / "nothing")])
    assert f"{tmp_path / 'nothing' / 'eval_test' / 'summary.json'}: no such file" in \
        capsys.readouterr().err


def test_seed_table_refuses_a_summary_without_corrected_verdicts(tmp_path, capsys):
    old = write_run(tmp_path, "old", {"svector_cosine": 3.0}, {"a - b": (-1.0, "x")})
    path = old / "eval_test" / "summary.json"
    record = json.loads(path.read_text())
    del record["comparisons"]["a - b"]["verdict"]       # as stage 5 wrote it before Holm
    path.write_text(json.dumps(record))
    with pytest.raises(SystemExit):
        run_main(main, ["test", str(old)])
    assert f"{path}: comparisons without a corrected verdict" in capsys.readouterr().err
