"""The OpenAPI description is valid and documents exactly the routes the service serves."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from openapi_spec_validator import validate

import eohub.accounting
from eohub.accounting.api import api_routes
from eohub.accounting.routes import extra_routes

SPEC = Path(eohub.accounting.__file__).with_name("openapi.yaml")


def _spec() -> dict:  # type: ignore[type-arg]
    data: dict = yaml.safe_load(SPEC.read_text())  # type: ignore[type-arg]
    return data


def test_openapi_file_is_valid() -> None:
    validate(_spec())


def test_every_api_route_is_documented_and_nothing_else() -> None:
    prefix = "/services/eohub-accounting/"
    served = set()
    for route in [*api_routes(prefix), *extra_routes(prefix)]:
        path = "/" + route[0][len(prefix) :]
        if path.startswith(("/api/", "/metrics")):
            served.add(re.sub(r"\(\[\^/\]\+\)", "{param}", path))
    documented = {re.sub(r"\{[^}]+\}", "{param}", p) for p in _spec()["paths"]}
    assert served == documented


def test_every_operation_documents_403() -> None:
    for path, item in _spec()["paths"].items():
        for method, operation in item.items():
            if method in ("get", "post", "put"):
                assert "403" in operation["responses"], f"{method.upper()} {path}"
