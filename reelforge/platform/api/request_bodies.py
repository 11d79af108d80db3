"""OpenAPI descriptions of the request bodies that routes parse themselves.

The create routes read their bodies by hand, to cap size and depth before any parsing, so FastAPI
cannot infer them; these declarations put the same pydantic models into `/openapi.json`.
"""

from __future__ import annotations

from pydantic import BaseModel


def inline_schema(model: type[BaseModel]) -> dict:
    """`model`'s JSON schema with its `$defs` inlined (OpenAPI resolves `#` against its own document)."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})

    def resolve(node):
        if isinstance(node, dict):
            if "$ref" in node:
                name = node["$ref"].rsplit("/", 1)[-1]
                rest = {key: value for key, value in node.items() if key != "$ref"}
                return {**resolve(definitions[name]), **resolve(rest)}
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(value) for value in node]
        return node

    return resolve(schema)


def json_body(model: type[BaseModel], *, also_form: bool = False, form_files: tuple[str, ...] = ()) -> dict:
    """`openapi_extra` declaring `model` as the required JSON body (and as form fields, with `also_form`,
    plus the binary parts `form_files`)."""
    schema = inline_schema(model)
    content = {"application/json": {"schema": schema}}
    if also_form:
        files = {name: {"type": "string", "format": "binary"} for name in form_files}
        content["multipart/form-data"] = {"schema": {**schema, "properties": {**schema["properties"], **files}}}
    return {"requestBody": {"required": True, "content": content}}


def upload_body(fields: dict[str, dict], required: list[str]) -> dict:
    """`openapi_extra` declaring a multipart body with one binary `file` part and text `fields`."""
    properties = {"file": {"type": "string", "format": "binary"}, **fields}
    schema = {"type": "object", "properties": properties, "required": ["file", *required]}
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}}
