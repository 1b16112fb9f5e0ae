"""Property-based fuzzing of the command line's own parsers: any text ends in a value or one line."""

from __future__ import annotations

import argparse
import contextlib
import io

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cli
from engine.errors import InputError
from engine.params import StyleJob, StyleParams

# Text an attacker or a typo could produce: digits, separators, units, signs, exponents, odd Unicode.
tokens = st.sampled_from(
    ["0", "1", "16", "256", "512", "9" * 30, "-", "+", ".", ",", ":", "e", "E", "5", "nan", "inf", "cm", "mm",
     "in", "inches", " ", "_", "\x00", "\x1b", "٣", "²", "1e308", "0x10", "\n"]
)  # fmt: skip
texts = st.one_of(st.text(max_size=40), st.lists(tokens, max_size=12).map("".join))

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(texts)
def test_value_parsers_return_a_value_or_a_usage_error(text: str) -> None:
    parsers = (cli._level_list, cli._number_list, cli._print_length, cli._dpi, cli._whole_number, cli._count)
    for parse in parsers:
        try:
            value = parse(text)
        except argparse.ArgumentTypeError as error:
            assert "\n" not in str(error)
            continue
        if parse is cli._dpi:
            assert 1 <= value <= 10_000
        if parse is cli._count:
            assert value >= 0
        if parse is cli._print_length:
            assert value > 0


@FUZZ
@given(
    flag=st.sampled_from(
        ["--levels", "--blend", "--print-size", "--dpi", "--seed", "--size", "--iterations", "--save-every",
         "--style-layers", "--tile-size", "--start-size", "--style-scale"]
    ),
    text=texts,
)  # fmt: skip
def test_any_flag_value_becomes_params_or_one_line(flag: str, text: str) -> None:
    argv = ["stylize", "--content", "c.png", "--style", "s.png", "--out", "o.png", flag, text]
    if flag == "--blend":
        argv += ["--style", "t.png"]
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            args = cli.build_parser().parse_args(argv)
        params = cli.params_from_args(args)
        StyleJob(content="c.png", styles=tuple(args.style), params=params, blend=args.blend or ())
    except SystemExit as exit_:
        assert exit_.code == cli.EXIT_INPUT
        lines = stderr.getvalue().strip().splitlines()
        assert len(lines) == 1 and lines[0].isprintable(), stderr.getvalue()
        return
    except InputError as error:
        assert "\n" not in str(error) and str(error).isprintable()
        return
    assert isinstance(params, StyleParams)
