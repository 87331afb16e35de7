"""What the commands share: the --db, --workers and --format options, opening the
database, and printing rows in the one format vocabulary."""

from __future__ import annotations

import csv
import io
import json
from typing import Callable

import click

from analysis.detect.pool import DEFAULT_WORKERS
from analysis.display import spreadsheet_safe, visible

FORMATS = ("table", "json", "jsonl", "csv")

db_option = click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False),
                         help="The stemwatch SQLite database")
workers_option = click.option("--workers", default=DEFAULT_WORKERS, show_default=True, type=click.IntRange(1, 64),
                              help="Detector processes (both cores by default)")


def format_option(choices=FORMATS):
    return click.option("--format", "fmt", type=click.Choice(choices), default="table", show_default=True,
                        help="table: for reading; json: one JSON array; jsonl: one JSON object a line; "
                             "csv: a header and one row a line")


def open_db(db_path: str, *, migrate: bool = True, create: bool = False, read_only: bool = False):
    """The Store behind a command's --db, its errors as ClickException."""
    from analysis.store.database import StoreError, open_store

    try:
        return open_store(db_path, migrate=migrate, create=create, read_only=read_only)
    except StoreError as e:
        raise click.ClickException(str(e))


def format_rows(rows: list[dict], fmt: str, table: Callable[[list[dict]], str]) -> str:
    """Rows as `fmt`; `table` formats them for reading."""
    if fmt == "json":
        return json.dumps(rows, indent=1, ensure_ascii=False, default=str)
    if fmt == "jsonl":
        return "\n".join(json.dumps(r, ensure_ascii=False, default=str) for r in rows)
    if fmt == "csv":
        out = io.StringIO()
        fields = list(dict.fromkeys(k for r in rows for k in r))
        writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: spreadsheet_safe(v) for k, v in r.items()} for r in rows)
        return out.getvalue().rstrip("\n")
    return visible(table(rows))
