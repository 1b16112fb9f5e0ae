"""Entry script of the bundle's ``painterly-cli`` executable: the command line, never the window.

The spec builds it as a second, console executable beside ``Painterly`` (the
windowed one), sharing the same collected libraries.  On Windows that is what
makes ``painterly-cli stylize ...`` print to the terminal, which a windowed
(console=False) executable cannot.  Same as the ``painterly-cli`` console
script pyproject.toml declares (``main:cli_main``).
"""

import sys

import cli

sys.exit(cli.main(sys.argv[1:]))
