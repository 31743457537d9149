"""The service's base handlers without a hub: the access log, JSON bodies, JSON errors."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from tornado import web

from eohub.access_log import service_log_request
from eohub.accounting.scopes import Caller, Kind
from eohub.accounting.service.handlers import MAX_BODY, APIHandler, BaseHandler
from eohub.adapters.accounting_db.errors import DatabaseUnavailable
from eohub.domain.accounting.access import Op
from eohub.domain.accounting.events import EventError
from tests.accounting.service.context_support import make_handler

LOGGER = "eohub.accounting.service.handlers"


def api(uri: str = "/api/usage", **kwargs: Any) -> Any:
    return make_handler(APIHandler, uri, **kwargs)


@pytest.mark.parametrize(
    ("status", "level"),
    [
        (200, logging.INFO),
        (302, logging.INFO),
        (400, logging.WARNING),
        (403, logging.WARNING),
        (500, logging.ERROR),
        (503, logging.ERROR),
    ],
)
def test_the_access_log_line_is_leveled_by_status_and_names_only_the_path(
    status: int, level: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, "eohub.access_log")
    handler = api("/api/usage?token=s3cret", method="POST")
    handler.set_status(status)
    service_log_request(handler)
    (record,) = [r for r in caplog.records if r.name == "eohub.access_log"]
    assert record.levelno == level
    assert record.getMessage().startswith(f"{status} POST /api/usage ")
    assert record.getMessage().endswith("ms")
    assert "s3cret" not in record.getMessage()


def test_an_http_error_is_logged_by_its_message_and_path_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    handler = api("/api/groups/x?token=s3cret")
    error = web.HTTPError(404, "No group %r", "x")
    handler.log_exception(type(error), error, None)
    assert [r.getMessage() for r in caplog.records if r.name == LOGGER] == [
        "404 GET /api/groups/x: No group 'x'"
    ]


@pytest.mark.parametrize(
    ("body", "value"),
    [(b"", None), (b'{"a": [1, 2]}', {"a": [1, 2]}), (b"3", 3)],
)
def test_a_json_body(body: bytes, value: Any) -> None:
    assert api(method="POST", body=body).json_body() == value


@pytest.mark.parametrize(
    ("body", "field_error"),
    [
        (b"{oops", "is not valid JSON"),
        (b"\xff\xfe", "is not UTF-8 text"),
        (b"[" * 200 + b"]" * 200, "nests arrays and objects more than"),
    ],
)
def test_a_body_that_is_not_json_is_a_field_error(body: bytes, field_error: str) -> None:
    with pytest.raises(EventError) as e:
        api(method="POST", body=body).json_body()
    assert field_error in e.value.errors["body"]


@pytest.mark.parametrize(
    ("declared", "size"),
    [(str(MAX_BODY + 1), 2), ("", MAX_BODY + 1)],
)
def test_a_body_too_large_declared_or_sent_is_413(declared: str, size: int) -> None:
    headers = {"Content-Length": declared} if declared else {}
    handler = api(method="POST", body=b"x" * size, headers=headers)
    with pytest.raises(web.HTTPError) as e:
        handler.raw_body()
    assert e.value.status_code == 413


def test_a_non_numeric_content_length_is_judged_by_the_body() -> None:
    handler = api(method="POST", body=b"{}", headers={"Content-Length": "lots"})
    assert handler.raw_body() == b"{}"


def test_json_answers_are_sorted_and_never_cached() -> None:
    handler = api()
    handler.set_header("Content-Disposition", "attachment")
    handler.write_json({"b": 1, "a": 2}, 201)
    assert handler.finished == ['{"a": 2, "b": 1}']
    assert handler.get_status() == 201
    assert handler._headers["Cache-Control"] == "no-store"
    assert handler._headers["Content-Type"] == "application/json; charset=UTF-8"
    assert "Content-Disposition" not in handler._headers


@pytest.mark.parametrize(
    ("error", "status", "message"),
    [
        (web.HTTPError(404, "No group %r", "x"), 404, "No group 'x'"),
        (web.HTTPError(403, "Only admins."), 403, "Only admins."),
        (web.HTTPError(405), 405, "Method Not Allowed"),
        (RuntimeError("internal detail"), 500, "Internal Server Error"),
    ],
)
def test_errors_are_json_with_a_message(error: Exception, status: int, message: str) -> None:
    handler = api()
    handler.set_status(status)
    handler.set_header("Content-Disposition", "attachment")
    handler.write_error(status, exc_info=(type(error), error, None))
    (text,) = handler.finished
    assert json.loads(text) == {"status": status, "message": message}
    assert "Content-Disposition" not in handler._headers


def test_field_errors_are_a_400_naming_the_fields() -> None:
    handler = api(method="POST")
    handler._handle_request_exception(EventError({"cpu": "must be greater than 0"}))
    (text,) = handler.finished
    assert handler.get_status() == 400
    assert json.loads(text) == {
        "status": 400,
        "message": "The request has invalid fields.",
        "errors": {"cpu": "must be greater than 0"},
    }


def test_an_unavailable_database_is_a_503_to_retry(caplog: pytest.LogCaptureFixture) -> None:
    handler = api("/api/events", method="POST")
    handler._handle_request_exception(DatabaseUnavailable("down"))
    (text,) = handler.finished
    assert handler.get_status() == 503
    assert json.loads(text)["message"] == "The accounting database is unavailable; retry."
    assert "Database unavailable for /api/events: DatabaseUnavailable" in caplog.messages


def test_authorisation_follows_the_table_and_refuses_with_403() -> None:
    handler = make_handler(BaseHandler, "/usage")
    assert handler.get_current_user() is None
    with pytest.raises(web.HTTPError) as e:
        handler.authorise(Op.METRICS)
    assert e.value.status_code == 403
    handler.caller = Caller("alice", Kind.USER, frozenset())
    assert handler.get_current_user() is handler.caller
    with pytest.raises(web.HTTPError) as e:
        handler.select(Op.METRICS)
    assert e.value.status_code == 403
