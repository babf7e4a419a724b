"""Validates Responses API bodies and stream events against OpenAI's own schemas, the ones the
Rust tests use too: extracted from its openapi.yaml by scripts/extract-openai-schemas.py.

A stream event is validated against the one schema its `type` names (ResponseStreamEvent is an
anyOf of 58 event schemas, each with its own one-value `type` enum), so a failure names what is
wrong rather than 58 mismatches; a type the spec does not have is a failure too."""
import json
import pathlib

import jsonschema

FIXTURE = pathlib.Path(__file__).resolve().parents[2] / "crates/llm-proxy/tests/fixtures/openai-schemas.json"
DOCUMENT = json.loads(FIXTURE.read_text())
SCHEMAS = DOCUMENT["components"]["schemas"]


def _validator(name):
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$ref": f"#/components/schemas/{name}",
              "components": DOCUMENT["components"]}
    return jsonschema.Draft202012Validator(schema)


def _event_schemas():
    by_type = {}
    for alternative in SCHEMAS["ResponseStreamEvent"]["anyOf"]:
        name = alternative["$ref"].rsplit("/", 1)[-1]
        (event_type,) = SCHEMAS[name]["properties"]["type"]["enum"]
        assert event_type not in by_type, f"two event schemas for {event_type}"
        by_type[event_type] = name
    return by_type


EVENT_SCHEMAS = _event_schemas()
_validators = {}


def check(name, instance):
    """Raises jsonschema.ValidationError (with the failing path) unless `instance` is a `name`."""
    if name not in _validators:
        _validators[name] = _validator(name)
    error = jsonschema.exceptions.best_match(_validators[name].iter_errors(instance))
    if error is not None:
        raise AssertionError(f"not a valid {name}: {error.message} at {list(error.absolute_path)}\n"
                             f"{json.dumps(instance)[:2000]}")


def check_response(body):
    check("Response", body)


def check_event(event):
    name = EVENT_SCHEMAS.get(event.get("type"))
    assert name, f"the spec has no stream event of type {event.get('type')!r}: {json.dumps(event)[:500]}"
    check(name, event)
    check("ResponseStreamEvent", event)


def check_item_list(body):
    check("ResponseItemList", body)


def check_error(body):
    check("ErrorResponse", body)
