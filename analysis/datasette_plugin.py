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
    if table in ("claims", "claim_changes", "claim_status") and column == "sentence" and isinstance(value, str):
        try:
            text = row["text"]
        except (KeyError, IndexError):
            return None
        return highlight(value, text)
    return None

