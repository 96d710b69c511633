"""The dev-sweep table: rows from train_metrics.tsv and eval_dev/summary.json."""

import json

import pytest

from fhvae.bin.sweep_table import main
from fhvae.errors import FhvaeError


def fake_setting(root, name, eers, intervals, dev_lbs):
    exp = root / name
    (exp / "eval_dev").mkdir(parents=True)
    rows = ["step\tseq_batch\tloss\tdev_lb\telapsed"]
    rows += [f"{250 * (k + 1)}\t1\t0\t{lb}\t{60.0 * (k + 1)}" for k, lb in enumerate(dev_lbs)]
    rows.append(f"{250 * (len(dev_lbs) + 1)}\t1\t0\t\t{60.0 * (len(dev_lbs) + 1)}")
    (exp / "train_metrics.tsv").write_text("\n".join(rows) + "\n")
    systems = {f"{emb}_{key}": {"eer": eer} for (emb, key), eer in eers.items()}
    comparisons = {f"c{k}": {"interval": iv} for k, iv in enumerate(intervals)}
    probes = {"speaker": {"z1": 0.05, "z2": 0.5}, "phone class": {"z1": 0.8, "z2": 0.6}}
    swap = {"z1_swap": {"cost": 1520.4}, "z2_utt_mean": {"cost": 243.1}}
    recombination = {"speaker: B's rather than A's": {"decoded": 0.785}}
    (exp / "eval_dev" / "summary.json").write_text(json.dumps(
        {"systems": systems, "comparisons": comparisons, "probes": probes, "swap": swap,
         "recombination": recombination}))


def test_sweep_table_rows(tmp_path, capsys):
    fake_setting(tmp_path, "base", {("svector", "lda-plda"): 4.5, ("fbank-mean", "lda-plda"): 6.0,
                                    ("svector", "cosine_matched"): 20.25},
                 [(-3.0, -1.0), (-1.0, 2.0), (0.5, 1.0)], [-900.0, -700.5, -800.0])
    fake_setting(tmp_path, "z2_32", {("svector", "lda-plda"): 7.0}, [(1.0, 2.0)], [-650.0])
    assert main([str(tmp_path), "base=", "z2_32=--set model.z2_dim=32", "--title", "T"]) == 0
    text = (tmp_path / "sweep.md").read_text()
    assert text == capsys.readouterr().out.rstrip("\n") + "\n" and text.startswith("# T\n")
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[1:-1]]
            for line in text.splitlines() if line.startswith("| ") and "---" not in line}
    base = rows["base"]
    assert base[1:5] == ["(base config)", "1000", "4.0", "-700.5"]
    assert base[5] == "" and base[7] == "4.50" and base[8] == "20.25"
    assert base[11] == "1 / 1 of 3"                     # one interval below 0, one above
    assert base[12:16] == ["50.0", "5.0", "80.0", "60.0"]
    assert base[16:] == ["1520", "243", "78.5", ""]     # A's phone score absent: empty cell
    assert rows["z2_32"][1] == "`--set model.z2_dim=32`" and rows["z2_32"][11] == "0 / 1 of 1"
    assert rows["mean-FBank baseline"][7] == ""          # from the last setting's summary


def test_sweep_table_missing_outputs_are_one_line_errors(tmp_path):
    with pytest.raises(FhvaeError, match="train_metrics.tsv: no such file"):
        main([str(tmp_path), "base="])
    with pytest.raises(FhvaeError, match="expected <name>=<trainer options>"):
        main([str(tmp_path), "base"])
