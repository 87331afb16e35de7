"""python -m analysis.cli: the same as the `stemwatch` command."""

from analysis.cli import cli

cli()
