"""The ``cityledger`` command.

Built on click (nested command groups, typed options, generated help) and rich
(tables, timelines, progress bars). Every command exits non-zero with a one-line
reason on failure; ``--json`` gives machine-readable output where it applies.
"""

from __future__ import annotations

import sys

import click
from rich.markup import escape

from cli.commands import LazyGroup
from cli.output import err_console, fail
from ledger.errors import LedgerError


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="cityledger")
def cli() -> None:
    """CityLedger: a permissioned BFT ledger for municipal records and trade."""


def main() -> None:
    try:
        cli(standalone_mode=False)
    except click.exceptions.Abort as exc:
        if isinstance(exc.__context__, KeyboardInterrupt):  # click's for Ctrl-C or SIGTERM
            err_console.print("interrupted", highlight=False)
            sys.exit(130)  # as a shell reports a command ended by SIGINT
        fail("aborted")
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except LedgerError as exc:  # its text is not markup ("[storage] …", a node's message)
        fail(escape(str(exc)))
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
