"""The stemwatch Datasette plugin (hooks in plugin.py, signin.py and face.py, templates in templates/)."""

from analysis.web.face import extra_template_vars, menu_links, startup
from analysis.web.plugin import asgi_wrapper, canned_queries, get_metadata, register_routes, render_cell
from analysis.web.signin import permission_allowed, prepare_connection

# the hooks Datasette finds here
__all__ = ["asgi_wrapper", "canned_queries", "extra_template_vars", "get_metadata", "menu_links",
           "permission_allowed", "prepare_connection", "register_routes", "render_cell", "startup"]
