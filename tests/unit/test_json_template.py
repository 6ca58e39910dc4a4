"""JsonWriter's line templates (one per record shape) write what json.dumps
writes for the same record, byte for byte, whatever the values."""

import io
import itertools
import json

from rsttrace import abi
from rsttrace.context.enrich import Shared
from rsttrace.output.writers import JsonWriter
from rsttrace.trace.decode import WHO_FIELDS, Decoder
from test_event import REASONS, Kallsyms, raw, v6


def explain(facts):
    # every character the template must keep as it is, % above all
    return "cause-%s" % facts.hook, '100% "quoted" \\ \u2013 %s %d'


def decoder():
    ks = Kallsyms()
    return Decoder(REASONS, 250, ks.stack, ks.ksym, attribute=explain)


VARIANTS = [
    dict(),
    dict(family=0, flags=0),
    dict(family=6, saddr=v6("2001:db8::1"), daddr=v6("fe80::2")),
    dict(flags=0xff, lingertime=125, linger2=-1, state=10, backlog=5),
    dict(flags=abi.EV_SOCK | abi.EV_TCP_SOCK, linger2=2500),
    dict(flags=abi.EV_LINGER, lingertime=0),
    dict(netns=0, comm=b'a"b\\c\n\xff'.ljust(16, b"\0")),
    dict(comm=b"caf\xc3\xa9".ljust(16, b"\0"), reason=11),
    dict(flags=abi.EV_PACKET | abi.EV_SEQ, seg_flags=0x12, seg_len=7),
    dict(stack_key=7), dict(stack_key=8), dict(stack_key=9),
    dict(hook=99, kind=42),
]


def lines(records, stacks):
    out = io.StringIO()
    w = JsonWriter(out, stacks=stacks)
    for r in records:
        w.event(r)
    w.flush()
    return out.getvalue().splitlines()


def test_template_lines_are_json_dumps():
    dec = decoder()
    # each variant twice, and with another value of its own, so that the
    # template made by the first record is used by the others
    records = [dec.record(raw(**dict(v, ts_ns=ts, sport=p)))
               for v, ts, p in itertools.product(
                   VARIANTS, (1, 10 ** 18 + 7), (80, 65535))]
    assert len({id(r.shape) for r in records}) > 10
    for stacks in (True, False):
        got = lines(records, stacks)
        want = [json.dumps({k: v for k, v in r.items()
                            if stacks or k != "stack"},
                           separators=(",", ":")) for r in records]
        assert got == want
        assert all(json.loads(g) == json.loads(w) for g, w in zip(got, want))


def test_template_is_the_shapes():
    dec = decoder()
    a = dec.record(raw(sport=1))
    b = dec.record(raw(sport=2, ts_ns=5))
    assert a.shape is b.shape
    assert dec.record(raw(family=6)).shape is not a.shape
    assert lines([a, b], True)[1] == json.dumps(b, separators=(",", ":"))


def test_records_of_a_shape_share_its_values():
    dec = decoder()
    r = dec.record(raw(stack_key=7))
    for k in ("kind", "hook", "family", "state", "reason", "context",
              "seg_flags", "cause", "explanation", "stack"):
        assert r[k] == getattr(r.shape, k)


def test_who_fields_and_layouts_of_one_shape():
    # the who-fields (filled in after decoding) take any value; records of
    # one shape with other rst_event.flags have layouts of their own
    dec = decoder()
    records = []
    for flags in (abi.EV_SOCK | abi.EV_TCP_SOCK, abi.EV_SOCK,
                  abi.EV_SOCK | abi.EV_TCP_SOCK | abi.EV_OWNER):
        for who in (None, "x", 'q"%s\u2013', {"runtime": "podman",
                                             "name": "a%d"}, 7):
            r = dec.record(raw(flags=flags, state=1, seq=3))
            for k in ("netns_name", "container", "pod", "owner_pid",
                      "owner_comm", "owner_source"):
                r[k] = who
            records.append(r)
    assert len({id(r.shape) for r in records}) == 1
    assert len({id(r.layout) for r in records}) == 3
    for stacks in (True, False):
        assert lines(records, stacks) == [
            json.dumps({k: v for k, v in r.items() if stacks or k != "stack"},
                       separators=(",", ":")) for r in records]


def test_a_value_not_of_its_keys_type_is_written_as_json_dumps():
    dec = decoder()
    rec = [dec.record(raw(sport=p)) for p in (1, 2, 3)]
    rec[1]["sport"] = None          # an int key, changed by someone
    rec[2]["sport"] = "80"
    assert lines(rec, True) == [json.dumps(r, separators=(",", ":"))
                                for r in rec]


def test_a_layout_has_values_where_its_flags_say():
    dec = decoder()
    bare = dec.record(raw(flags=0, family=0))
    assert bare.layout.absent >= {"saddr", "sport", "seq", "rcv_unread",
                                  "linger", "backlog", "seg_len"}
    assert all(bare[k] is None for k in bare.layout.absent)
    full = dec.record(raw(flags=0xff, state=10))
    assert not full.layout.absent


def test_code_is_made_once_per_set_of_keys():
    # the generated code (Decoder._valuer, JsonWriter._head_maker) depends
    # only on which keys a record has own values for: layouts of other
    # shapes with the same flags share it (made per layout, it cost more
    # than it saved on a varied workload: bench/CACHES.md)
    dec = decoder()
    records = [dec.record(raw(stack_key=k, sport=p))
               for k in (7, 8, 9) for p in (1, 2)]
    assert len({id(r.layout) for r in records}) == 3
    assert len({id(r.layout.values) for r in records}) == 1
    out = io.StringIO()
    w = JsonWriter(out)
    for r in records:
        w.event(r)
    assert len(w._head_makers) == 1
    assert len([t for t in w._templates.values() if t]) == 3
    other = dec.record(raw(family=6, saddr=v6("2001:db8::1")))
    assert other.layout.values is not records[0].layout.values


CTR = {"runtime": "podman", "id": "ab", "name": 'a"%s', "image": None}
POD = {"namespace": "shop", "name": "web-0"}
WHOS = [(None,) * len(WHO_FIELDS),
        (None, None, None, 40, "nginx", "socket"),
        # plain dicts (no who-text kept: not hashable)
        ("host", CTR, POD, 7, 'q"%s\u2013', "task"),
        # the enricher's (hashed by identity), two equal ones apart
        ("host", Shared(CTR), Shared(POD), 7, "nginx", "fd"),
        ("host", Shared(CTR), None, 7, "nginx", "fd"),
        ("host", Shared(CTR, name="b"), None, 7, "nginx", "fd")]


def test_lines_of_an_events_values_are_its_records():
    # a session that only writes lines hands the writer an event's values
    # (JsonWriter.event_of), no record made: the lines are the record's,
    # whatever who answered (each answer's text kept where it can be)
    dec = decoder()
    events = [raw(**dict(v, ts_ns=ts)) for v in VARIANTS for ts in (1, 5)]
    for stacks in (True, False):
        out = io.StringIO()
        w = JsonWriter(out, stacks=stacks)
        want = []
        for ev in events:
            for who in WHOS:
                layout, values = dec.event(ev)
                w.event_of(layout, values, who)
                rec = layout.record(values, who)
                assert rec == dec.record(ev) | dict(zip(WHO_FIELDS, who))
                want.append(json.dumps(
                    {k: v for k, v in rec.items() if stacks or k != "stack"},
                    separators=(",", ":")))
        assert out.getvalue().splitlines() == want
    assert len(w._who_texts) == len(WHOS) - 1   # not the plain dicts


def test_a_layouts_first_event_is_written_whole_without_a_template():
    # a layout seen once (a new stack's) costs less encoded whole: its
    # template is made at its second event, by either way in
    dec = decoder()
    for second in ("event", "event_of"):
        w = JsonWriter(io.StringIO())
        layout, values = dec.event(raw(stack_key=7))
        w.event_of(layout, values, WHOS[0])
        assert w._templates == {layout: None} and not w._head_makers
        rec = layout.record(values, WHOS[0])
        if second == "event":
            w.event(rec)
        else:
            w.event_of(layout, values, WHOS[0])
        assert w._templates[layout] is not None
        assert w.stream.getvalue().splitlines() == [
            json.dumps(rec, separators=(",", ":"))] * 2
