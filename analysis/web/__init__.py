"""The stemwatch Datasette plugin (hooks in plugin.py, templates in templates/)."""

from analysis.web.plugin import (  # noqa: F401  (the hooks Datasette finds here)
    asgi_wrapper, canned_queries, get_metadata, register_routes, render_cell)
