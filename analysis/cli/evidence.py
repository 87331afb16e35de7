"""The evidence commands: export a signed bundle, make the signing key."""

from __future__ import annotations

from pathlib import Path

import click

from analysis.cli.options import db_option, open_db


@click.command("export")
@db_option
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), metavar="BUNDLE.zip",
              help="The bundle to write (never replaced without --force)")
@click.option("--site", help="Only this site: its name, its domain, or a URL on it")
@click.option("--claim", "claim_ids", type=int, multiple=True, metavar="ID", help="Only these claim ids (repeatable)")
@click.option("--verdict", type=click.Choice(["confirmed", "false-alarm", "unsure"]),
              help="Only claims whose latest verdict is this")
@click.option("--category", help="Only this category id")
@click.option("--stance", default="promoted", show_default=True, help="Only claims with this stance ('' for all)")
@click.option("--crawl", "crawl_id", type=int, help="Claims of this crawl (default: each site's latest)")
@click.option("--key", "key_path", type=click.Path(dir_okay=False),
              help="Signing key (default: $STEMWATCH_KEY or ~/.config/stemwatch/signing-key.pem)")
@click.option("--unsigned", is_flag=True, help="Export without a signature")
@click.option("--tsa", "tsa_url", metavar="URL", help="Also timestamp the manifest at this RFC 3161 authority")
@click.option("--operator", help="Who exports (default: $STEMWATCH_OPERATOR)")
@click.option("--contact", help="How to reach the operator (default: the crawl's contact)")
@click.option("--no-browser", is_flag=True, help="No screenshots and no PDF (they need Chromium)")
@click.option("--force", is_flag=True, help="Replace an existing bundle")
def export(db_path, out, site, claim_ids, verdict, category, stance, crawl_id, key_path, unsigned, tsa_url,
           operator, contact, no_browser, force):
    """Export a signed evidence bundle for a complaint to a regulator.

    One zip: the pages as captured when fetched (evidence.wacz, opens in
    ReplayWeb.page and pywb), a screenshot of each page rendered from the
    captured bytes with the network cut off, the claims as CSV and JSONL,
    report.html and report.pdf, and manifest.json with every file's SHA-256,
    signed with your key (`stemwatch keys init`). Check it with
    `stemwatch verify BUNDLE.zip`.

    \b
    Example: stemwatch export --db data/clinics.db --site "NovaCell Stem Cell Institute" --out novacell.zip
    """
    from analysis.evidence.bundle import export_bundle
    from analysis.evidence.signing import SigningError, default_key_path, load_key
    from analysis.store.database import StoreError

    with open_db(db_path, read_only=True) as store:
        key = None
        if not unsigned:
            try:
                key = load_key(Path(key_path) if key_path else default_key_path())
            except SigningError as e:
                raise click.ClickException(f"{e} (or export with --unsigned)")
        try:
            with _renderer(no_browser) as renderer:
                result = export_bundle(
                    store, out, site=site, claim_ids=claim_ids, category=category, stance=stance or None,
                    crawl_id=crawl_id, verdict=verdict, force=force, key=key, tsa_url=tsa_url,
                    operator=operator, contact=contact, renderer=renderer)
        except StoreError as e:
            raise click.ClickException(str(e))
    click.echo(f"Exported {result.claims} claims from {result.pages} pages to {result.path}")
    if result.rebuilt:
        click.echo(f"  {result.rebuilt} pages were crawled before capture: their records are rebuilt "
                   "from the stored pages")
    click.echo(f"  signed by {result.signer}" if result.signer else "  not signed")
    click.echo(f"Check it with: stemwatch verify {result.path}")


def _renderer(no_browser: bool):
    import contextlib

    if no_browser:
        return contextlib.nullcontext(None)
    from analysis.evidence.render import RenderError, Renderer

    class _Open(Renderer):
        def __enter__(self):
            try:
                return super().__enter__()
            except RenderError as e:
                raise click.ClickException(f"{e} (or export with --no-browser)")

    return _Open()


@click.group()
def keys():
    """The operator's signing key for evidence bundles.

    \b
    Example: stemwatch keys init
    """


@keys.command("init")
@click.option("--key", "key_path", type=click.Path(dir_okay=False),
              help="Where to write it (default: $STEMWATCH_KEY or ~/.config/stemwatch/signing-key.pem)")
@click.option("--force", is_flag=True, help="Replace an existing key (bundles it signed stay checkable by fingerprint)")
def keys_init(key_path, force):
    """Make an Ed25519 signing key; prints its fingerprint to share.

    \b
    Example: stemwatch keys init
    """
    from analysis.evidence.signing import SigningError, default_key_path, generate_key

    path = Path(key_path) if key_path else default_key_path()
    try:
        key = generate_key(path, force=force)
    except SigningError as e:
        raise click.ClickException(str(e))
    click.echo(f"Signing key written to {path} (public key: {path}.pub)")
    click.echo(f"Fingerprint: {key.fingerprint}")


COMMANDS = [export, keys]
