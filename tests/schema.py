"""docs/record.schema.json, for the tests that check real output with it."""

import json
import os

import jsonschema

SCHEMA_PATH = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "docs", "record.schema.json")

with open(SCHEMA_PATH) as _f:
    SCHEMA = json.load(_f)
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def check_line(line):
    """Validate one output line; returns the record."""
    rec = json.loads(line)
    VALIDATOR.validate(rec)
    return rec
