"""What JsonWriter writes (events of every recording, losses, both
summaries) is what docs/record.schema.json says, and the schema is strict
enough to refuse what it should."""

import copy
import io
import json

import jsonschema
import pytest

from rsttrace.causes import CAUSES
from rsttrace.output.summary import Summary
from rsttrace.output.writers import JsonWriter
from rsttrace.trace.decode import FIELDS, WHO_FIELDS
from schema import SCHEMA, VALIDATOR, check_line
from test_attribution import recorded

# Keys added since some recordings were made: null there, as this
# rsttrace writes a value it does not know.
NEWER = ("snd_nxt",)
# recordings of this schema's rsttrace (the oldest lack linger2; those
# made before the who-fields lack them, which are optional)
EVENTS = [{k: e.get(k) if k in NEWER else e[k] for k in FIELDS
           if k in e or k in NEWER}
          for e in (p.values[0] for p in recorded())
          if set(FIELDS) - set(WHO_FIELDS) - set(NEWER) <= set(e)]


def written(records, summary=None, lost=None, stacks=True):
    out = io.StringIO()
    w = JsonWriter(out, stacks=stacks)
    for r in records:
        w.event(r)
    if lost:
        w.lost(*lost)
    if summary is not None:
        w.summary(summary)
    return out.getvalue().splitlines()


def test_the_schema_is_valid_json_schema():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$id"] == "rsttrace-record/2"
    assert SCHEMA["$defs"]["event"]["required"] == [
        k for k in FIELDS if k != "stack" and k not in WHO_FIELDS]
    assert set(SCHEMA["$defs"]["event"]["properties"]) == set(FIELDS)


def test_every_recorded_event_as_written():
    assert len(EVENTS) > 200
    summary = Summary()
    for e in EVENTS:
        summary.add(e)
    lines = written(EVENTS, summary, lost=(2, 5))
    assert len(lines) == len(EVENTS) + 2
    for line in lines:
        rec = check_line(line)
        if rec["kind"] in ("sent", "received", "challenge_ack", "abort"):
            assert rec["cause"] in CAUSES
    for line in written(EVENTS[:20], stacks=False):
        assert "stack" not in check_line(line)


def test_the_empty_summary():
    check_line(written([], Summary())[0])


@pytest.mark.parametrize("change", [
    lambda r: r.update(kind="reset"),
    lambda r: r.update(sport=70000),
    lambda r: r.update(sport="80"),
    lambda r: r.pop("cause"),
    lambda r: r.update(extra=1),
    lambda r: r.update(seg_flags="SYN|BOGUS"),
    lambda r: r.update(time="yesterday"),
    lambda r: r.update(stack=[1]),
])
def test_the_schema_refuses_what_rsttrace_never_writes(change):
    rec = copy.deepcopy(EVENTS[0])
    VALIDATOR.validate(rec)
    change(rec)
    with pytest.raises(jsonschema.ValidationError):
        VALIDATOR.validate(json.loads(json.dumps(rec)))


WHO = dict(netns_name="host", owner_pid=812, owner_comm="nginx",
           owner_source="socket", pod={"namespace": None, "name": "web"},
           container={"runtime": "podman", "id": "ab" * 32, "name": "web",
                      "image": "localhost/web:1"})


def test_the_who_fields_as_written():
    for extra in (WHO, {k: None for k in WHO},
                  dict(WHO, owner_pid=None, owner_comm=None,
                       owner_source="no-socket", container=dict(
                           WHO["container"], runtime=None, name=None))):
        rec = dict(EVENTS[0], **extra)
        check_line(written([rec])[0])


@pytest.mark.parametrize("change", [
    lambda r: r.update(container={"runtime": "lxc", "id": "ab" * 32,
                                  "name": None, "image": None}),
    lambda r: r.update(container=dict(WHO["container"], id="abc")),
    lambda r: r.update(container=dict(WHO["container"], extra=1)),
    lambda r: r.update(pod={"name": "web"}),
    lambda r: r.update(owner_source="guess"),
    lambda r: r.update(owner_pid=-1),
])
def test_the_schema_refuses_bad_who_fields(change):
    rec = dict(copy.deepcopy(EVENTS[0]), **copy.deepcopy(WHO))
    VALIDATOR.validate(rec)
    change(rec)
    with pytest.raises(jsonschema.ValidationError):
        VALIDATOR.validate(json.loads(json.dumps(rec)))
