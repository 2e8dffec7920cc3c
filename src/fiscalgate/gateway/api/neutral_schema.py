"""The OpenAPI document types the neutral invoice and the certification: the routes keep reading
the invoice as a plain object (so `parse_invoice` reports every problem with its field, like the
CLI does), and the document points those fields at the `Invoice` and `Certification` models."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from fiscalgate.core.certification import Certification
from fiscalgate.core.invoice import Invoice

MODELS: dict[str, type[BaseModel]] = {"Invoice": Invoice, "Certification": Certification}
# What a field's schema says in place of a `$ref` (pydantic would try to resolve one itself).
MODEL_MARK = "x-fiscalgate-model"


def _point_at_models(node: Any) -> Any:
    if isinstance(node, dict):
        if MODEL_MARK in node:  # keeps the field's title and description beside the $ref (3.1)
            return {**{k: v for k, v in node.items() if k != MODEL_MARK}, **ref(node[MODEL_MARK])}
        return {k: _point_at_models(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_point_at_models(v) for v in node]
    return node


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def document_models(app: FastAPI) -> None:
    """Wrap `app.openapi` so the components hold the neutral models (and their sub-models)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema: dict[str, Any] = _point_at_models(build())
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for name, model in MODELS.items():
            found = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(found.pop("$defs", {}))
            components[name] = found
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
