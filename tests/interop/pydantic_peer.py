"""A Python peer reading our JSON Schemas, as Jina's gateway does with endpoint_discovery's models.

stdin:  {"schema": <JSON Schema of a document type>, "docs": [<JSON documents>]}
stdout: {"valid": [<errors from jsonschema, per doc>], "docs": [<docs after pydantic validate+dump>],
         "errors": [<pydantic error locations per doc, or null>]}

The model is rebuilt from the schema alone, the way Jina's create_base_doc_from_schema does:
properties -> fields, $ref -> nested models from $defs, anyOf [X, null] -> Optional[X], arrays,
dicts (additionalProperties), defaults and required fields.
"""
import json
import sys
from typing import Any, Dict, List, Optional

import jsonschema
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

SIMPLE = {"string": str, "integer": int, "number": float, "boolean": bool}


def build(schema: Dict[str, Any], defs: Dict[str, Any], cache: Dict[str, Any]):
    def annotation(prop: Dict[str, Any]):
        if "$ref" in prop:
            name = prop["$ref"].split("/")[-1]
            if name not in cache:
                cache[name] = None  # recursion guard: a self-reference becomes a forward ref
                cache[name] = model(name, defs[name])
            return cache[name] if cache[name] is not None else name
        if "anyOf" in prop:
            kinds = [k for k in prop["anyOf"] if k.get("type") != "null"]
            inner = annotation(kinds[0]) if len(kinds) == 1 else Any
            return Optional[inner]
        kind = prop.get("type")
        if kind in SIMPLE:
            if prop.get("format") == "binary":
                return str  # base64 text in JSON
            return SIMPLE[kind]
        if kind == "array":
            return List[annotation(prop.get("items", {}))]
        if kind == "object":
            extra = prop.get("additionalProperties", True)
            return Dict[str, Any if extra is True else annotation(extra)]
        return Any

    def model(name: str, s: Dict[str, Any]):
        required = set(s.get("required", []))
        fields = {}
        for key, prop in s.get("properties", {}).items():
            ann = annotation(prop)
            if key in required:
                fields[key] = (ann, ...)
            elif "default" in prop:
                fields[key] = (ann, Field(default=prop["default"]))
            else:
                fields[key] = (Optional[ann], None)
        m = create_model(name, __config__=ConfigDict(extra="ignore"), **fields)
        return m

    root = model(schema.get("title", "Root"), schema)
    for m in list(cache.values()) + [root]:
        if isinstance(m, type) and issubclass(m, BaseModel):
            m.model_rebuild(_types_namespace={k: v for k, v in cache.items() if v is not None})
    return root


def main() -> None:
    data = json.load(sys.stdin)
    schema, docs = data["schema"], data["docs"]
    validator = jsonschema.Draft202012Validator(schema)
    model = build(schema, schema.get("$defs", {}), {})
    out = {"valid": [], "docs": [], "errors": []}
    for doc in docs:
        out["valid"].append([e.message for e in validator.iter_errors(doc)])
        try:
            out["docs"].append(model.model_validate(doc).model_dump(mode="json", exclude_none=True))
            out["errors"].append(None)
        except ValidationError as err:
            out["docs"].append(None)
            out["errors"].append([".".join(str(p) for p in e["loc"]) for e in err.errors()])
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
