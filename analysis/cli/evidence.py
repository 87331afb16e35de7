"""The evidence command: export."""

from __future__ import annotations

import click

from analysis.cli.options import db_option, open_db


@click.command("export")
@click.argument("out_dir", type=click.Path(file_okay=False))
@db_option
@click.option("--site", help="Only this site (its domain, or its name from the seed list)")
@click.option("--claim", "claim_ids", type=int, multiple=True, metavar="ID", help="Only these claim ids (repeatable)")
@click.option("--category", help="Only this category id")
@click.option("--stance", default="promoted", show_default=True, help="Only claims with this stance ('' for all)")
@click.option("--crawl", "crawl_id", type=int, help="Claims of this crawl (default: each site's latest)")
def export(out_dir, db_path, site, claim_ids, category, stance, crawl_id):
    """Export an evidence bundle for a complaint to a regulator.

    Writes the archived pages (WARC, rebuilt from the exact bytes fetched),
    the claims as CSV and JSONL with quote, URL and capture time, a readable
    report.html, and SHA256SUMS so anyone can check nothing was altered.

    Example: stemwatch export complaint/ --db data/clinics.db --site example-clinic.com
    """
    from analysis.evidence.export import export_evidence
    from analysis.store.database import StoreError

    with open_db(db_path, read_only=True) as store:
        try:
            result = export_evidence(store, out_dir, site=site, claim_ids=claim_ids, category=category,
                                     stance=stance or None, crawl_id=crawl_id)
        except StoreError as e:
            raise click.ClickException(str(e))
    click.echo(f"Exported {result['claims']} claims from {result['pages']} archived pages to {result['dir']}")
    click.echo("Check the files with: sha256sum -c SHA256SUMS (inside that folder)")


COMMANDS = [export]
