#!/usr/bin/env python3
"""Extracts the response schemas the tests validate against from OpenAI's openapi.yaml.

Run once when the spec is updated; the output is committed as a test fixture so the repository
stands alone:

    python3 scripts/extract-openai-schemas.py ../shared/openai/openapi.yaml \
        > crates/llm-proxy/tests/fixtures/openai-schemas.json

Two repairs make the spec match what OpenAI really sends (see the spec's SOURCE notes):
leftover OpenAPI 3.0 `nullable: true` becomes an explicit null alternative, and
`system_fingerprint` may be null.
"""
import json
import sys

import yaml

ROOTS = [
    "CreateChatCompletionResponse",
    "CreateChatCompletionStreamResponse",
    "CreateCompletionResponse",
    "CreateEmbeddingResponse",
    "ListModelsResponse",
    "Model",
    "ErrorResponse",
]


def refs(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value.rsplit("/", 1)[-1]
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def repair(node):
    if isinstance(node, dict):
        node = {k: repair(v) for k, v in node.items() if not k.startswith("x-")}
        if node.pop("nullable", False):
            node = {"anyOf": [node, {"type": "null"}]}
        return node
    if isinstance(node, list):
        return [repair(item) for item in node]
    return node


def main():
    spec = yaml.load(open(sys.argv[1]), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    schemas = spec["components"]["schemas"]
    wanted, queue = {}, list(ROOTS)
    while queue:
        name = queue.pop()
        if name in wanted:
            continue
        wanted[name] = schemas[name]
        queue.extend(refs(schemas[name]))
    repaired = {name: repair(schema) for name, schema in sorted(wanted.items())}
    for name in ("CreateChatCompletionResponse", "CreateChatCompletionStreamResponse", "CreateCompletionResponse"):
        props = repaired[name]["properties"]
        if "system_fingerprint" in props:
            props["system_fingerprint"] = {"anyOf": [props["system_fingerprint"], {"type": "null"}]}
    json.dump({"components": {"schemas": repaired}}, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
