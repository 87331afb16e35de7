"""The users commands: the reviewers who sign in to Datasette to record verdicts."""

from __future__ import annotations

import sys

import click

from analysis.cli.options import db_option, format_option, format_rows, open_db


@click.group()
def users():
    """Reviewers who can sign in to Datasette and record verdicts.

    They are kept in the database itself, so `stemwatch serve` and plain
    `datasette` on it both know them; a password is stored only as its
    PBKDF2 hash. Reviewers sign in at /-/stemwatch-login.

    \b
    Example: stemwatch users add ana --db data/clinics.db
    """


def _store_errors(fn, *args):
    from analysis.store.database import StoreError

    try:
        return fn(*args)
    except StoreError as e:
        raise click.ClickException(str(e))


def _password_from_stdin() -> str:
    # the first line only, without its line ending: `echo "$PW" | stemwatch users add ...`
    return sys.stdin.readline().rstrip("\r\n")


@users.command(name="add")
@click.argument("name")
@db_option
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input")
def add(name, db_path, password_stdin):
    """Add a reviewer. Prompts for the password twice, shown as nothing.

    A name is 1 to 40 lower-case letters, digits, '.', '-' or '_'; a
    password has at least 8 characters. To set a new password, remove the
    reviewer and add them again: their old sign-in stops working.

    \b
    Example: stemwatch users add ana --db data/clinics.db
    """
    from analysis.store.reviewers import add_reviewer, check_name

    _store_errors(check_name, name)  # before the prompt: a bad name fails at once
    with open_db(db_path) as store:
        password = (_password_from_stdin() if password_stdin
                    else click.prompt("Password", hide_input=True, confirmation_prompt=True))
        _store_errors(add_reviewer, store.db, name, password)
    click.echo(f"Added reviewer {name}: they sign in at /-/stemwatch-login to record verdicts")


def _table(rows: list[dict]) -> str:
    if not rows:
        return "No reviewers yet (stemwatch users add NAME --db DB)"
    width = max(len(r["name"]) for r in rows)
    return "\n".join(f"{r['name']:<{width}}  added {r['created_at']}{'  disabled' if r['disabled'] else ''}"
                     for r in rows)


@users.command(name="list")
@db_option
@format_option()
def list_(db_path, fmt):
    """List the reviewers, when each was added and whether they are disabled.

    \b
    Example: stemwatch users list --db data/clinics.db
    """
    from analysis.store.reviewers import list_reviewers

    with open_db(db_path, read_only=True) as store:
        rows = list_reviewers(store.db)
    click.echo(format_rows(rows, fmt, _table))


@users.command()
@click.argument("name")
@db_option
def remove(name, db_path):
    """Remove a reviewer. Their sign-in stops working at once; the verdicts
    they recorded stay in the history under their name.

    \b
    Example: stemwatch users remove ana --db data/clinics.db
    """
    from analysis.store.reviewers import remove_reviewer

    with open_db(db_path) as store:
        _store_errors(remove_reviewer, store.db, name)
    click.echo(f"Removed reviewer {name}")


@users.command()
@click.argument("name")
@db_option
@click.option("--enable", is_flag=True, help="Let a disabled reviewer sign in and record verdicts again")
def disable(name, db_path, enable):
    """Stop a reviewer from signing in or recording verdicts, keeping the account.

    \b
    Example: stemwatch users disable ana --db data/clinics.db
    """
    from analysis.store.reviewers import set_disabled

    with open_db(db_path) as store:
        _store_errors(set_disabled, store.db, name, not enable)
    click.echo(f"Reviewer {name} {'enabled' if enable else 'disabled'}")


COMMANDS = [users]
