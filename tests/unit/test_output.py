"""Writers and the summary (rsttrace.output)."""

import io
import json

from rsttrace.event import FIELDS
from rsttrace.output import JsonWriter, RowWriter, Summary, path_of


class Stream(io.StringIO):
    """A StringIO that counts flushes."""

    def __init__(self):
        super().__init__()
        self.flushes = 0

    def flush(self):
        self.flushes += 1
        super().flush()

    def lines(self):
        return self.getvalue().splitlines()


def record(**kw):
    rec = {k: None for k in FIELDS}
    rec.update(time="2024-05-01T12:34:56.789012+00:00", ts_ns=1, kind="sent",
               hook="tcp_v4_send_reset", family=4, saddr="10.0.0.1",
               sport=80, daddr="10.0.0.2", dport=40000, state="ESTABLISHED",
               reason="NO_SOCKET", pid=1, comm="curl", context="softirq",
               stack=["tcp_v4_send_reset", "tcp_v4_rcv.cold",
                      "ip_protocol_deliver_rcu", "ip_local_deliver_finish",
                      "net_rx_action"])
    rec.update(kw)
    return rec


# -- JSON ----------------------------------------------------------------------

def test_json_one_object_per_line():
    s = Stream()
    w = JsonWriter(s)
    recs = [record(), record(sport=81, stack=[]), record(comm='a"b\\c\n')]
    for r in recs:
        w.event(r)
    w.flush()
    lines = s.lines()
    assert len(lines) == 3
    for line, r in zip(lines, recs):
        obj = json.loads(line)
        assert obj == r
        assert list(obj) == list(FIELDS)       # key order kept, stack last
    assert s.getvalue().endswith("\n")
    assert s.flushes == 1


def test_json_event_leaves_record_intact():
    s = Stream()
    w = JsonWriter(s)
    r = record()
    before = dict(r)
    w.event(r)
    assert r == before and list(r) == list(before)


def test_json_shared_stack_list_encoded_correctly():
    """The writer caches a stack's JSON per list: records sharing the
    decoder's cached list, and different lists, both come out right."""
    s = Stream()
    w = JsonWriter(s)
    shared = ["tcp_reset", "tcp_rcv_state_process"]
    w.event(record(stack=shared))
    w.event(record(stack=shared, sport=1))
    w.event(record(stack=["tcp_send_active_reset"]))
    w.event(record(stack=list(shared) + ["x"]))
    stacks = [json.loads(line)["stack"] for line in s.lines()]
    assert stacks == [shared, shared, ["tcp_send_active_reset"],
                      shared + ["x"]]


def test_json_record_without_stack():
    s = Stream()
    w = JsonWriter(s)
    r = record()
    del r["stack"]
    w.event(r)
    assert json.loads(s.getvalue()) == r


def test_json_no_event_flush_until_asked():
    s = Stream()
    w = JsonWriter(s)
    w.event(record())
    assert s.flushes == 0
    w.flush()
    assert s.flushes == 1


def test_json_lost():
    s = Stream()
    w = JsonWriter(s)
    w.lost(3, 10)
    assert s.flushes == 1                    # immediately
    assert s.getvalue().endswith("\n")
    assert json.loads(s.getvalue()) == {"kind": "lost", "count": 3,
                                        "total": 10}
    assert list(json.loads(s.getvalue())) == ["kind", "count", "total"]


def test_json_summary():
    s = Stream()
    w = JsonWriter(s)
    summ = Summary()
    summ.add(record())
    w.summary(summ)
    obj = json.loads(s.getvalue())
    assert obj["kind"] == "summary"
    assert obj["events"] == 1
    assert s.flushes == 1


# -- rows --------------------------------------------------------------------------

def test_rows_header_once_and_stack_indented():
    s = Stream()
    w = RowWriter(s)
    w.event(record())
    w.event(record(saddr="2001:db8::1", daddr="2001:db8::2", family=6,
                   stack=["tcp_reset"]))
    lines = s.lines()
    assert lines[0].split() == ["TIME", "KIND", "HOOK", "STATE", "REASON",
                                "SOURCE", "DEST", "PID", "COMM", "CTX"]
    assert sum(1 for l in lines if l.startswith("TIME")) == 1
    row = lines[1]
    assert row.startswith("12:34:56.789012 ")
    for text in ("sent", "tcp_v4_send_reset", "ESTABLISHED", "NO_SOCKET",
                 "10.0.0.1:80", "10.0.0.2:40000", "curl", "softirq"):
        assert text in row
    assert lines[2:7] == ["    tcp_v4_send_reset", "    tcp_v4_rcv.cold",
                          "    ip_protocol_deliver_rcu",
                          "    ip_local_deliver_finish",
                          "    net_rx_action"]
    assert "[2001:db8::1]:80" in lines[7]
    assert "[2001:db8::2]:40000" in lines[7]
    assert lines[8] == "    tcp_reset"
    assert len(lines) == 9


def test_rows_columns_are_aligned():
    s = Stream()
    w = RowWriter(s, stacks=False)
    w.event(record())
    header, row = s.lines()
    for col in ("KIND", "HOOK", "STATE", "REASON", "SOURCE"):
        i = header.index(col)
        assert row[i - 2:i] == "  " and row[i] != " "


def test_rows_missing_values():
    s = Stream()
    w = RowWriter(s, stacks=False)
    w.event(record(state=None, reason=None, saddr=None, daddr=None,
                   sport=None, dport=None, context=None, stack=None))
    row = s.lines()[1].split()
    assert row.count("-") == 3          # state, reason, context
    assert row.count("?") == 2          # source, dest
    assert len(s.lines()) == 2


def test_rows_cause_line_and_no_stacks():
    s = Stream()
    w = RowWriter(s, stacks=False)
    w.event(record(cause="no-listener", explanation="nothing listens"))
    lines = s.lines()
    assert lines[2] == "    cause: no-listener: nothing listens"
    assert len(lines) == 3


def test_rows_lost():
    s = Stream()
    RowWriter(s).lost(2, 7)
    assert s.getvalue() == "LOST 2 events (ring buffer full), 7 in all\n"
    assert s.flushes == 1


# -- summary ------------------------------------------------------------------------

def test_summary_counts():
    summ = Summary()
    summ.add(record())
    summ.add(record(state=None, reason=None, cause="no-listener"))
    summ.add(record(kind="received", hook="tcp_reset",
                    stack=["tcp_reset", "tcp_validate_incoming"]))
    summ.lost = 4
    summ.kernel_events = 7
    d = summ.as_dict()
    assert d["events"] == 3 and d["lost"] == 4 and d["kernel_events"] == 7
    assert d["by_kind"] == {"sent": 2, "received": 1}
    assert d["by_hook"] == {"tcp_v4_send_reset": 2, "tcp_reset": 1}
    assert d["by_state"] == {"ESTABLISHED": 2, "-": 1}
    assert d["by_reason"] == {"NO_SOCKET": 2, "-": 1}
    assert d["by_cause"] == {"-": 2, "no-listener": 1}
    assert d["top_paths"] == {
        "tcp_v4_send_reset < tcp_v4_rcv < ip_protocol_deliver_rcu < "
        "ip_local_deliver_finish": 2,
        "tcp_reset < tcp_validate_incoming": 1}
    assert list(d["by_kind"]) == ["sent", "received"]   # most common first
    json.dumps(d)


def test_summary_empty():
    summ = Summary()
    d = summ.as_dict()
    assert d["events"] == 0 and d["kernel_events"] is None
    assert d["by_kind"] == {} and d["top_paths"] == {}
    assert summ.as_text() == "0 events, 0 lost"


def test_summary_text():
    summ = Summary()
    for _ in range(3):
        summ.add(record())
    summ.add(record(kind="received", stack=[]))
    summ.lost = 1
    text = summ.as_text()
    assert text.startswith("4 events, 1 lost\n\n")
    lines = text.splitlines()
    kind_hdr = next(i for i, l in enumerate(lines) if l.split()[:2] ==
                    ["kind", "count"])
    assert lines[kind_hdr + 1].startswith("---")
    assert lines[kind_hdr + 2].split() == ["sent", "3"]
    assert lines[kind_hdr + 3].split() == ["received", "1"]
    assert "kernel path (innermost first)" in text
    assert "tcp_v4_send_reset < tcp_v4_rcv <" in text


def test_path_of():
    stack = ["tcp_send_challenge_ack.constprop.0", "tcp_validate_incoming",
             "tcp_rcv_established", "tcp_v4_do_rcv", "tcp_v4_rcv"]
    assert path_of(stack) == ("tcp_send_challenge_ack < "
                              "tcp_validate_incoming < tcp_rcv_established "
                              "< tcp_v4_do_rcv")
    assert path_of(stack, depth=2) == ("tcp_send_challenge_ack < "
                                       "tcp_validate_incoming")
    assert path_of(["a.isra.0"]) == "a"
    assert path_of([]) == "-"
    assert path_of(None) == "-"


def test_table_wraps_columns_itself():
    """Wrapping does not rely on tabulate's maxcolwidths (0.8.10+): Debian
    11 and 12 ship older tabulate."""
    from rsttrace.output import table
    text = table([["a", "one two three four five six", 7]], ["x", "y", "n"],
                 [None, 9, None])
    body = text.splitlines()[2:]
    assert [line.split()[-1] for line in body][0] == "7"
    assert [line.strip() for line in body][1:] == ["three", "four five",
                                                   "six"]
    assert "one two" in body[0]
    assert "one two three four" not in text     # wrapped


def test_table_keeps_line_breaks_in_cells():
    from rsttrace.output import table
    text = table([["a", "first\nsecond"]], ["x", "y"], [None, 40])
    assert "first" in text.splitlines()[2] and "second" in text.splitlines()[3]


def test_json_lines_are_exactly_json_dumps():
    """The writer's cached tails and once-made encoder write what
    json.dumps would, byte for byte."""
    s = Stream()
    w = JsonWriter(s)
    recs = [record(), record(comm="caf\u00e9\t\"x\"", cause="unknown",
                            explanation="a \u2013 b"),
            record(cause=None, explanation=None, stack=["f.cold", "g"]),
            record(), record(linger=0.5, seq=None)]
    for r in recs:
        w.event(r)
    want = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in recs)
    assert s.getvalue() == want


def test_json_same_explanation_other_stack():
    s = Stream()
    w = JsonWriter(s)
    w.event(record(stack=["a"]))
    w.event(record(stack=["b"]))
    assert [json.loads(l)["stack"] for l in s.lines()] == [["a"], ["b"]]
