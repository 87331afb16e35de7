"""The `stemwatch` command line: a thin click layer over the library.

Each command parses options, calls one library function and turns the
library's errors into click.ClickException. One module per command family.
"""

from __future__ import annotations

import click

from analysis import __version__


@click.group()
@click.version_option(__version__, prog_name="stemwatch")
def cli():
    """Monitor misleading stem-cell marketing.

    Crawl clinic sites, flag the claims consumer warnings single out, store
    them in SQLite and browse them in Datasette.

    Example: stemwatch demo
    """


def _register():
    from analysis.cli import crawl, detect, evidence, history, imports, serve, users

    for family in (crawl, imports, detect, history, evidence, serve, users):
        for command in family.COMMANDS:
            cli.add_command(command)


_register()
