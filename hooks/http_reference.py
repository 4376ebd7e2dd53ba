"""MkDocs hook: the HTTP reference page (reference/http.md), rendered from openapi/openapi.json at build time.

`render(document)` is plain Python over the document (tests/test_docs_site.py calls it); `on_files` adds its
markdown to the site as a generated page, so nothing is written into docs/.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OPENAPI = ROOT / "openapi" / "openapi.json"
PAGE = "reference/http.md"
METHODS = ("get", "post", "put", "patch", "delete", "head", "options")


def _cell(text: object) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _text(text: object) -> str:
    """A description in a table cell: brackets escaped, so that `W[l](x)` is not read as a link."""
    return _cell(text).replace("[", "\\[").replace("]", "\\]")


def _anchor(name: str) -> str:
    return "schema-" + name.lower()


def _type(schema: dict[str, Any]) -> str:
    """A schema's type in a few words, with a link for a reference."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{_anchor(name)})"
    for key, joiner in (("anyOf", " or "), ("oneOf", " or "), ("allOf", " and ")):
        if key in schema:
            return joiner.join(_type(s) for s in schema[key])
    kind = schema.get("type")
    if kind == "array":
        return f"array of {_type(schema.get('items', {}))}"
    if "enum" in schema:
        return "one of " + ", ".join(f"`{json.dumps(v)}`" for v in schema["enum"])
    if "const" in schema:
        return f"`{json.dumps(schema['const'])}`"
    if isinstance(kind, list):
        return " or ".join(kind)
    return kind or "any"


def _example(content: dict[str, Any]) -> Any:
    if "example" in content:
        return content["example"]
    for example in content.get("examples", {}).values():
        return example.get("value")
    return None


def _operation(method: str, path: str, op: dict[str, Any]) -> list[str]:
    out = [f"### {method.upper()} {path}", ""]
    if op.get("summary"):
        out += [f"**{op['summary']}**", ""]
    if op.get("description"):
        out += [_text(op["description"]), ""]
    params = op.get("parameters", [])
    if params:
        out += ["| parameter | in | type | required | description |", "|---|---|---|---|---|"]
        for p in params:
            out.append(
                f"| `{p['name']}` | {p['in']} | {_cell(_type(p.get('schema', {})))} | "
                f"{'yes' if p.get('required') else 'no'} | {_text(p.get('description', ''))} |"
            )
        out.append("")
    body = op.get("requestBody")
    if body:
        out += ["Request body" + (" (required)" if body.get("required") else "") + ":", ""]
        for media, content in body.get("content", {}).items():
            out.append(f"- `{media}`: {_type(content.get('schema', {}))}")
        out.append("")
        for media, content in body.get("content", {}).items():
            example = _example(content)
            if example is not None:
                out += [
                    f"Example (`{media}`):",
                    "",
                    "```json",
                    json.dumps(example, indent=2, ensure_ascii=False),
                    "```",
                    "",
                ]
    out += ["| status | description | media types |", "|---|---|---|"]
    for status, response in op.get("responses", {}).items():
        media = ", ".join(f"`{m}`" for m in response.get("content", {}))
        out.append(f"| {status} | {_text(response.get('description', ''))} | {media} |")
    out.append("")
    return out


def _schema(name: str, schema: dict[str, Any]) -> list[str]:
    out = [f"### {name} {{ #{_anchor(name)} }}", ""]
    if schema.get("description"):
        out += [_text(schema["description"]), ""]
    props = schema.get("properties", {})
    if props:
        required = set(schema.get("required", []))
        out += ["| field | type | required | description |", "|---|---|---|---|"]
        for field, sub in props.items():
            out.append(
                f"| `{field}` | {_cell(_type(sub))} | {'yes' if field in required else 'no'} | "
                f"{_text(sub.get('description', ''))} |"
            )
        out.append("")
    else:
        out += [f"Type: {_type(schema)}", ""]
    return out


def render(document: dict[str, Any]) -> str:
    """The reference page's markdown: every operation, then every schema."""
    info = document.get("info", {})
    out = [
        "# HTTP reference",
        "",
        f"{info.get('title', '')} {info.get('version', '')}, OpenAPI {document.get('openapi', '')}. "
        "Generated from `openapi/openapi.json` (`make openapi` regenerates it from the code) when the site is "
        "built; the service serves the same document at `GET /openapi.json`, and as pages at `/docs` and `/redoc`.",
        "",
        info.get("description", ""),
        "",
        "## Operations",
        "",
    ]
    for path, ops in document.get("paths", {}).items():
        for method in METHODS:
            if method in ops:
                out += _operation(method, path, ops[method])
    out += ["## Schemas", ""]
    for name, schema in document.get("components", {}).get("schemas", {}).items():
        out += _schema(name, schema)
    return "\n".join(out) + "\n"


def on_files(files: Any, config: Any) -> Any:
    """Add the generated page to the site (mkdocs >= 1.6: File.generated)."""
    from mkdocs.structure.files import File

    files.append(File.generated(config, PAGE, content=render(json.loads(OPENAPI.read_text()))))
    return files
