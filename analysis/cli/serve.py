"""The serve command: Datasette on a stemwatch database."""

from __future__ import annotations

import click

from analysis.cli.options import db_option, open_db


@click.command()
@db_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on")
@click.option("--port", default=8001, show_default=True, type=int, help="Port to listen on")
@click.option("--public-read-only", is_flag=True,
              help="Serve read-only: no verdicts can be recorded (and a non-loopback --host is allowed)")
def serve(db_path, host, port, public_read_only):
    """Browse a stemwatch database in Datasette.

    Claims are faceted by category, stance and site, with the matched words
    highlighted in their sentence. Anyone who reaches it can read; only a
    reviewer signed in at /-/stemwatch-login records verdicts (add one with
    `stemwatch users add`).

    It listens on 127.0.0.1. A --host other than loopback is refused unless
    the database has a reviewer, or --public-read-only is given. Passwords
    cross the network as sent: serve it behind HTTPS.

    \b
    Example: stemwatch serve --db data/clinics.db --port 8001
    """
    from analysis.store.reviewers import has_reviewers
    from analysis.web.plugin import LOOPBACK_HOSTS
    from analysis.web.serve import serve as run_serve

    with open_db(db_path) as store:  # refuses a missing, damaged or newer database; upgrades an older one
        reviewers = has_reviewers(store.db)
    if host not in LOOPBACK_HOSTS and not (public_read_only or reviewers):
        raise click.ClickException(
            f"--host {host} serves {db_path} beyond this machine, but it has no reviewer to sign in and "
            f"record verdicts: add one (stemwatch users add NAME --db {db_path}), serve on 127.0.0.1, "
            "or pass --public-read-only to serve it without writes")
    click.echo(f"Serving {db_path} at http://{host}:{port}/ (Ctrl-C to stop)"
               + (" read-only" if public_read_only else ""))
    run_serve(db_path, host=host, port=port, read_only=public_read_only)


COMMANDS = [serve]
