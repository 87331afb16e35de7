"""The serve command: Datasette on a stemwatch database."""

from __future__ import annotations

import click

from analysis.cli.options import db_option, open_db


@click.command()
@db_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on")
@click.option("--port", default=8001, show_default=True, type=int, help="Port to listen on")
def serve(db_path, host, port):
    """Browse a stemwatch database in Datasette.

    Claims are faceted by category, stance and site, with the matched words
    highlighted in their sentence.

    Example: stemwatch serve --db data/clinics.db --port 8001
    """
    from analysis.web.serve import serve as run_serve

    open_db(db_path).close()  # refuses a missing, damaged or newer database; upgrades an older one
    click.echo(f"Serving {db_path} at http://{host}:{port}/ (Ctrl-C to stop)")
    run_serve(db_path, host=host, port=port)


COMMANDS = [serve]
