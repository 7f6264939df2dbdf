"""Command line: ``ecgbench list | run | table | leaderboard | report | audit | bench | data |
check | tune | track``.

:mod:`.parser` declares the subcommands and their flags, :mod:`.arguments` turns flags into values
(a bad one is one line, exit 2), :mod:`.commands` holds one thin handler per subcommand that calls
the layer doing the work. Misuse exits 2 with one line, a failed run 1, an interrupt 130.
"""

from __future__ import annotations

import sys

from ecgbench.cli.arguments import UsageError, config_file
from ecgbench.cli.parser import build_parser
from ecgbench.core.config import ConfigError, RunFailed
from ecgbench.core.registry import METHODS, TASKS, RegistryError, UnknownNameError, include

_config_file = config_file  # the name tests and scripts of 0.1.0 import

__all__ = ["UsageError", "build_parser", "main"]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # for relaunching under torchrun
    try:
        _scan_external(args)
        return args.handler(args)
    except (UsageError, UnknownNameError, RegistryError) as error:
        print(f"ecgbench: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ecgbench: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except ConfigError as error:
        print(f"ecgbench: error: {error}", file=sys.stderr)
        return 2
    except RunFailed as error:
        print(f"ecgbench: error: {error}", file=sys.stderr)
        return 1



def _scan_external(args) -> None:
    """Add ``--include-path`` folders and scan them (and entry points) now: a bad external file
    is one line before any work."""
    if not hasattr(args, "include_path"):
        return
    include(args.include_path)
    METHODS.entries, TASKS.entries  # noqa: B018 - scanning is the point
