#!/usr/bin/env python3
"""Extracts the response schemas the tests validate against from OpenAI's openapi.yaml.

Run once when the spec is updated; the output is committed as a test fixture so the repository
stands alone:

    python3 scripts/extract-openai-schemas.py ../shared/openai/openapi.yaml \
        > crates/llm-proxy/tests/fixtures/openai-schemas.json

Repairs make the spec match what OpenAI really sends (see the spec's SOURCE notes and the
recorded streams): leftover OpenAPI 3.0 `nullable: true` becomes an explicit null alternative,
`system_fingerprint` and a Response's `user` and `usage` (while in progress) may be null, usage may lack
`cache_write_tokens` and `function_call_arguments.done` its `name`, which recorded streams
predate.
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
    "Response",
    "ResponseStreamEvent",
    "ResponseItemList",
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
    # The live API sends `"user": null` (recorded streams in tests/fixtures/responses), and
    # streams recorded before `cache_write_tokens` existed lack it.
    props = repaired["ModelResponseProperties"]["properties"]
    props["user"] = {"anyOf": [props["user"], {"type": "null"}]}
    props = next(p["properties"] for p in repaired["Response"]["allOf"] if "usage" in p.get("properties", {}))
    props["usage"] = {"anyOf": [props["usage"], {"type": "null"}]}
    done = repaired["ResponseFunctionCallArgumentsDoneEvent"]
    done["required"] = [r for r in done["required"] if r != "name"]
    details = repaired["ResponseUsage"]["properties"]["input_tokens_details"]
    details["required"] = [r for r in details.get("required", []) if r != "cache_write_tokens"]
    json.dump({"components": {"schemas": repaired}}, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
