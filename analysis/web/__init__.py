"""The stemwatch Datasette plugin (hooks in plugin.py, templates in templates/)."""

from analysis.web.plugin import canned_queries, get_metadata, register_routes, render_cell  # noqa: F401
