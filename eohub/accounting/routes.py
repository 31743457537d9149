"""Routes beyond the JSON API: metrics (and, as they land, pages and exports)."""

from __future__ import annotations

from typing import Any

from tornado import web

from eohub.accounting.handlers_base import BaseHandler
from eohub.accounting.pages import page_routes


class MetricsHandler(BaseHandler):
    async def get(self) -> None:
        if self.service.authenticate_metrics and (
            self.caller is None or not self.caller.reads_all
        ):
            raise web.HTTPError(403, "Metrics need a token with custom:eohub-accounting:read.")
        self.set_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.finish(self.service.metrics.render())


def extra_routes(prefix: str) -> list[Any]:
    from eohub.accounting.api_exports import ExportHandler

    return [
        (prefix + "metrics", MetricsHandler),
        (prefix + r"api/export/([^/]+)", ExportHandler),
        *page_routes(prefix),
    ]
