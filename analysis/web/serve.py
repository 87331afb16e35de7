"""Datasette on a stemwatch database; the plugin (analysis.web.plugin) brings the rest."""

from __future__ import annotations

import os
from pathlib import Path


def make_datasette(db_path: str | Path):
    from datasette.app import Datasette
    from datasette.plugins import pm

    import analysis.web as datasette_plugin

    if not pm.is_registered(datasette_plugin) and pm.get_plugin("stemwatch") is None:
        pm.register(datasette_plugin, name="stemwatch")
    return Datasette(
        files=[str(db_path)],
        settings={"facet_time_limit_ms": 500, "sql_time_limit_ms": 3000},
        # as `datasette` reads it: with it, reviewers stay signed in across restarts
        secret=os.environ.get("DATASETTE_SECRET") or None,
    )


def serve(db_path: str | Path, host: str = "127.0.0.1", port: int = 8001, read_only: bool = False):
    """Run Datasette until interrupted. The caller has opened the database
    with Store first, which refuses a bad file and upgrades an old one. The host it
    listens on is one the plugin answers to; read_only: the review form writes nothing."""
    import uvicorn

    from analysis.web.plugin import LOOPBACK_HOSTS

    if host not in LOOPBACK_HOSTS | {"0.0.0.0", "::"}:  # a name of its own: answer to it
        names = [h for h in os.environ.get("STEMWATCH_ALLOWED_HOSTS", "").split(",") if h.strip()]
        os.environ["STEMWATCH_ALLOWED_HOSTS"] = ",".join([*names, host])
    if read_only:
        os.environ["STEMWATCH_READ_ONLY"] = "1"

    ds = make_datasette(db_path)
    uvicorn.run(ds.app(), host=host, port=port, log_level="warning")
