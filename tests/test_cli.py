"""The command line: the common options work before and after the subcommand (the README's form is the latter)."""

from __future__ import annotations

import pytest

from falante.cli import build_parser


@pytest.mark.parametrize("argv", [["serve", "--config", "my.toml"], ["--config", "my.toml", "serve"],
                                  ["serve", "--host", "127.0.0.1", "--config", "my.toml", "-v"]])
def test_config_before_or_after_the_subcommand(argv):
    """Regression: `falante serve --config my.toml` (README) exited with 'unrecognized arguments: --config'."""
    args = build_parser().parse_args(argv)
    assert args.command == "serve" and args.config == "my.toml"


def test_defaults_and_precedence():
    args = build_parser().parse_args(["transcribe", "x.wav"])
    assert args.config is None and args.verbose is False
    args = build_parser().parse_args(["-v", "--config", "a.toml", "say", "oi", "-o", "o.wav"])
    assert args.config == "a.toml" and args.verbose is True  # not reset by the subcommand's defaults
    args = build_parser().parse_args(["--config", "a.toml", "prepare", "--config", "b.toml"])
    assert args.config == "b.toml"  # the later, nearer one wins
