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
    if table == "claims" and column == "sentence" and isinstance(value, str):
        try:
            text = row["text"]
        except (KeyError, IndexError):
            return None
        return highlight(value, text)
    return None

