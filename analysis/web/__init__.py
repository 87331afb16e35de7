"""The stemwatch Datasette plugin (hooks in plugin.py and signin.py, templates in templates/)."""

from analysis.web.plugin import asgi_wrapper, canned_queries, get_metadata, register_routes, render_cell
from analysis.web.signin import permission_allowed, prepare_connection

# the hooks Datasette finds here
__all__ = ["asgi_wrapper", "canned_queries", "get_metadata", "permission_allowed", "prepare_connection",
           "register_routes", "render_cell"]
