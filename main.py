"""Painterly's entry point.

``python main.py`` opens the desktop studio; ``python main.py stylize ...`` and
``python main.py info FILE`` run the headless command line on the same engine.
"""

from __future__ import annotations

import sys

CLI_COMMANDS = {"stylize", "variations", "info", "presets", "devices", "-h", "--help", "--version"}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in CLI_COMMANDS:
        import cli

        return cli.main(args)
    return gui_main(args)


def gui_main(args: list[str] | None = None) -> int:
    # Imported here so the command line never loads Qt.
    from ui.app import run_app

    return run_app(sys.argv[:1] + list(sys.argv[1:] if args is None else args))


def cli_main() -> int:
    import cli

    return cli.main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
