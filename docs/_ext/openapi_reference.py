"""Render the accounting service's OpenAPI file as a reference page.

At ``builder-inited`` this writes ``reference/gen/accounting-api.md`` from
``eohub/accounting/service/openapi.yaml``: one section per operation, with its parameters,
request body, responses and the scope it needs. The YAML file itself is linked for
download, for tools that read OpenAPI.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

import eohub.accounting.service

SPEC = Path(eohub.accounting.service.__file__).with_name("openapi.yaml")
METHODS = ("get", "post", "put", "delete")


def _ref_name(schema: dict[str, Any]) -> str | None:
    ref = schema.get("$ref")
    return ref.rsplit("/", 1)[1] if isinstance(ref, str) else None


def _schema_block(schema: dict[str, Any]) -> list[str]:
    name = _ref_name(schema)
    if name:
        return [f"Schema: [{name}](#schema-{name.lower()})", ""]
    text = yaml.safe_dump(schema, sort_keys=False, allow_unicode=True).rstrip()
    return ["```yaml", text, "```", ""]


def _operation(
    path: str, method: str, op: dict[str, Any], shared: list[dict[str, Any]]
) -> list[str]:
    lines = [f"### {method.upper()} `{path}`", "", f"**{op.get('summary', '')}**", ""]
    if op.get("description"):
        lines += [op["description"].strip(), ""]
    if op.get("x-scope"):
        lines += [f"Needs the scope `{op['x-scope']}`.", ""]
    params = shared + op.get("parameters", [])
    if params:
        lines += ["| parameter | in | type | description |", "|---|---|---|---|"]
        for p in params:
            schema = p.get("schema", {})
            kind = schema.get("type", "")
            if "enum" in schema:
                kind = " \\| ".join(f"`{v}`" for v in schema["enum"])
            lines.append(f"| `{p['name']}` | {p['in']} | {kind} | {p.get('description', '')} |")
        lines.append("")
    body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
    if body:
        lines += ["Request body (JSON):", "", *_schema_block(body["schema"])]
    lines += ["Responses:", ""]
    for status, response in op.get("responses", {}).items():
        name = _ref_name(response)
        text = (
            f"see [{name}](#response-{name.lower()})" if name else response.get("description", "")
        )
        lines.append(f"- **{status}**: {text}")
    return [*lines, ""]


def render(spec: dict[str, Any]) -> str:
    info = spec["info"]
    lines = [
        "# Accounting REST API",
        "",
        f"Version {info['version']}. The OpenAPI file: {{download}}`openapi.yaml`.",
        "",
        info["description"].strip(),
        "",
        "## Operations",
        "",
    ]
    for path, item in spec["paths"].items():
        shared = item.get("parameters", [])
        for method in METHODS:
            if method in item:
                lines += _operation(path, method, item[method], shared)
    lines += ["## Shared responses", ""]
    for name, response in spec["components"]["responses"].items():
        lines += [f"### Response {name}", "", f"({'response-' + name.lower()})=", ""]
        lines += [response["description"], ""]
        lines += _schema_block(response["content"]["application/json"]["schema"])
    lines += ["## Schemas", ""]
    for name, schema in spec["components"]["schemas"].items():
        lines += [f"(schema-{name.lower()})=", "", f"### {name}", "", *_schema_block(schema)]
    return "\n".join(lines)


def on_builder_inited(app: Any) -> None:
    outdir = Path(app.srcdir) / "reference" / "gen"
    outdir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SPEC, outdir / "openapi.yaml")
    (outdir / "accounting-api.md").write_text(render(yaml.safe_load(SPEC.read_text())))


def setup(app: Any) -> dict[str, Any]:
    app.connect("builder-inited", on_builder_inited)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
