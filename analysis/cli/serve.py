"""The serve command: Datasette on a stemwatch database."""

from __future__ import annotations

import click

from analysis.cli.options import db_option, open_db


@click.command()
@db_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on")
@click.option("--port", default=8001, show_default=True, type=int, help="Port to listen on")
@click.option("--public-read-only", is_flag=True,
              help="Allow a non-loopback --host by serving read-only: no verdicts can be recorded")
def serve(db_path, host, port, public_read_only):
    """Browse a stemwatch database in Datasette.

    Claims are faceted by category, stance and site, with the matched words
    highlighted in their sentence.

    Example: stemwatch serve --db data/clinics.db --port 8001
    """
    from analysis.web.serve import serve as run_serve

    from analysis.web.plugin import LOOPBACK_HOSTS

    if host not in LOOPBACK_HOSTS and not public_read_only:
        raise click.ClickException(
            f"--host {host} would let anyone who reaches it record verdicts: reviewers cannot sign in yet, "
            "so serve on 127.0.0.1, or pass --public-read-only to serve it without writes")
    open_db(db_path).close()  # refuses a missing, damaged or newer database; upgrades an older one
    click.echo(f"Serving {db_path} at http://{host}:{port}/ (Ctrl-C to stop)"
               + (" read-only" if public_read_only else ""))
    run_serve(db_path, host=host, port=port, read_only=public_read_only)


COMMANDS = [serve]
