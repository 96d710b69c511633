"""Every CLI default is its config dataclass's default, so the two cannot drift apart."""

import argparse

from fhvae.bin import evaluate, extract, train_ivector
from fhvae.bin.cli import field_defaults
from fhvae.evaluate.pipeline import EvalConfig
from fhvae.inference import ExtractOptions
from fhvae.ivector.system import IvectorConfig


def option_defaults(parser: argparse.ArgumentParser) -> dict[str, object]:
    return {a.dest: a.default for a in parser._actions if a.dest != "help"}


def test_evaluate_defaults_are_eval_config_defaults():
    options = option_defaults(evaluate.build_parser())
    options["backends"] = tuple(options.pop("backend").split(","))
    config = vars(field_defaults(EvalConfig))
    config.pop("adaptation")           # built from the --adapt-* options
    assert {k: options[k] for k in config} == config


def test_extract_defaults_are_extract_options_defaults():
    options = option_defaults(extract.build_parser())
    config = vars(field_defaults(ExtractOptions))
    assert {k: options[k] for k in config} == config


def test_train_ivector_defaults_are_ivector_config_defaults():
    parser = argparse.ArgumentParser()
    train_ivector.add_config_options(parser)
    args = parser.parse_args([])
    assert train_ivector.config_from_args(args) == IvectorConfig()


def test_help_shows_the_defaults(capsys):
    for module in (evaluate, extract):
        module.build_parser().print_help()
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: 0.01)" in text and "(default: 1000)" in text
    assert "(default 4096)" in text and "(default all)" in text
