"""Routes beyond the JSON API: metrics, exports and pages."""

from __future__ import annotations

from typing import Any

from tornado import web

from eohub.accounting.service.handlers import BaseHandler
from eohub.accounting.service.pages.handlers import page_routes
from eohub.domain.accounting.access import Op


class MetricsHandler(BaseHandler):
    async def get(self) -> None:
        # AccountingService.authenticate_metrics = False opens /metrics to anyone (a
        # private metrics port); otherwise the table decides, as for every endpoint.
        if self.context.authenticate_metrics:
            self.authorise(Op.METRICS)
        self.set_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        # The ledger gauges are read from the database at scrape time.
        self.finish(await self.context.store.read(self.context.metrics.render))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc_info = kwargs.get("exc_info")
        error = exc_info[1] if exc_info else None
        message = self._reason
        if isinstance(error, web.HTTPError) and error.log_message and status_code < 500:
            message = error.log_message % error.args if error.args else error.log_message
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(f"{status_code}: {message}\n")


def extra_routes(prefix: str) -> list[Any]:
    from eohub.accounting.service.exports_api import ExportHandler

    return [
        (prefix + "metrics", MetricsHandler),
        (prefix + r"api/export/([^/]+)", ExportHandler),
        *page_routes(prefix),
    ]
