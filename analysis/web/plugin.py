"""Datasette plugin: show each claim highlighted inside its sentence."""

from __future__ import annotations

from datasette import hookimpl
from markupsafe import Markup, escape


def highlight(sentence: str, text: str) -> Markup:
    """The sentence with the claim's words wrapped in <mark>."""
    if not sentence:
        return Markup("")
    i = sentence.lower().find((text or "").lower()) if text else -1
    if i < 0:
        return escape(sentence)
    j = i + len(text)
    return Markup("{}<mark>{}</mark>{}").format(sentence[:i], sentence[i:j], sentence[j:])


@hookimpl
def render_cell(row, value, column, table, database, datasette):
    if table == "claims" and column == "claim_key" and isinstance(value, str):
        # The claim's identity links to the review form, pre-filled with its id.
        # (Datasette renders the primary key column itself, so not there.)
        return Markup('<a href="{path}?claim_id={id}" title="Mark this claim">review</a> {key}').format(
            id=row["id"], key=value, path=datasette.urls.database(database) + "/mark_claim"
        )
    if column == "claim_id" and table is None and isinstance(value, int):
        # Canned queries: each claim links to the review form.
        return Markup('<a href="{path}?claim_id={id}" title="Mark this claim">{id}: review</a>').format(
            id=value, path=datasette.urls.database(database) + "/mark_claim"
        )
    if column == "sentence" and isinstance(value, str):
        # Any table, view or query that shows a claim's sentence beside its words.
        try:
            text = row["text"]
        except (KeyError, IndexError):
            return None
        return highlight(value, text)
    return None

