"""Writers and the summary (rsttrace.output)."""

import io
import json

from rsttrace.output.summary import Summary
from rsttrace.output.tables import table
from rsttrace.output.writers import LINE_WIDTH, JsonWriter, RowWriter
from rsttrace.trace.decode import FIELDS
from rsttrace.trace.stacks import path_of


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
    """The writer caches a stack's JSON per value: records sharing the
    decoder's cached list, equal lists and different lists all come out
    right."""
    s = Stream()
    w = JsonWriter(s)
    shared = ["tcp_reset", "tcp_rcv_state_process"]
    w.event(record(stack=shared))
    w.event(record(stack=shared, sport=1))
    w.event(record(stack=["tcp_send_active_reset"]))
    w.event(record(stack=list(shared) + ["x"]))
    w.flush()
    stacks = [json.loads(line)["stack"] for line in s.lines()]
    assert stacks == [shared, shared, ["tcp_send_active_reset"],
                      shared + ["x"]]


def test_json_record_without_stack():
    s = Stream()
    w = JsonWriter(s)
    r = record()
    del r["stack"]
    w.event(r)
    w.flush()
    assert json.loads(s.getvalue()) == r


def test_json_event_written_whole_and_flushed_only_when_asked():
    s = Stream()
    w = JsonWriter(s)
    w.event(record())
    assert s.flushes == 0 and s.getvalue().count("\n") == 1
    w.lost(3, 3)                # in order, after the event
    assert s.flushes == 1
    assert [json.loads(l).get("kind") for l in s.lines()] == ["sent", "lost"]


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
    assert lines[0].split() == ["TIME", "KIND", "STATE", "SOURCE", "DEST"]
    assert sum(1 for line in lines if line.startswith("TIME")) == 1
    row = lines[1]
    assert row.startswith("12:34:56.789 ")
    assert row.split() == ["12:34:56.789", "sent", "ESTABLISHED",
                           "10.0.0.1:80", "10.0.0.2:40000"]
    assert lines[2:7] == ["    tcp_v4_send_reset", "    tcp_v4_rcv.cold",
                          "    ip_protocol_deliver_rcu",
                          "    ip_local_deliver_finish",
                          "    net_rx_action"]
    assert "[2001:db8::1]:80" in lines[7]
    assert "[2001:db8::2]:40000" in lines[7]
    assert lines[8] == "    tcp_reset"
    assert len(lines) == 9


def test_default_rows_fit_80_columns():
    """The widest IPv4 row, its cause and its stack stay within 79."""
    s = Stream()
    w = RowWriter(s)
    w.event(record(saddr="255.255.255.255", sport=65535,
                   daddr="255.255.255.255", dport=65535, kind="received",
                   state="NEW_SYN_RECV", cause="accept-queue-overflow",
                   explanation="The listener's accept queue was full and "
                   "net.ipv4.tcp_abort_on_overflow=1 made the kernel reset "
                   "the new connection; accept faster, raise the listen() "
                   "backlog and net.core.somaxconn, or set it to 0."))
    lines = s.lines()
    assert len(lines) > 4
    assert max(len(line) for line in lines) <= LINE_WIDTH
    assert lines[2].startswith("    cause: accept-queue-overflow: The ")
    assert lines[3].startswith("      ")      # wrapped, indented


def test_wide_rows_have_every_column():
    s = Stream()
    w = RowWriter(s, wide=True)
    w.event(record())
    lines = s.lines()
    assert lines[0].split() == ["TIME", "KIND", "HOOK", "STATE", "REASON",
                                "SOURCE", "DEST", "PID", "COMM", "CTX",
                                "OWNER", "CONTAINER"]
    row = lines[1]
    assert row.startswith("12:34:56.789012 ")
    for text in ("sent", "tcp_v4_send_reset", "ESTABLISHED", "NO_SOCKET",
                 "10.0.0.1:80", "10.0.0.2:40000", "curl", "softirq"):
        assert text in row
    s = Stream()
    RowWriter(s, wide=True, stacks=False).event(record(**WHO))
    row = s.lines()[1].split()
    assert row[-2:] == ["nginx[812]", "web"]
    assert len(s.lines()) == 2          # no who line in wide rows


def test_rows_columns_are_aligned():
    for wide, cols in ((False, ("KIND", "STATE", "SOURCE", "DEST")),
                       (True, ("KIND", "HOOK", "STATE", "REASON", "SOURCE"))):
        s = Stream()
        w = RowWriter(s, stacks=False, wide=wide)
        w.event(record())
        header, row = s.lines()
        for col in cols:
            i = header.index(col)
            assert row[i - 1] == " " and row[i] != " ", (wide, col)


def test_long_values_push_not_cut():
    s = Stream()
    w = RowWriter(s, stacks=False)
    w.event(record(saddr="2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff",
                   sport=65535, family=6))
    assert "[2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff]:65535 " in s.lines()[1]


def test_rows_missing_values():
    s = Stream()
    w = RowWriter(s, stacks=False, wide=True)
    w.event(record(state=None, reason=None, saddr=None, daddr=None,
                   sport=None, dport=None, context=None, stack=None))
    row = s.lines()[1].split()
    assert row.count("-") == 5          # state, reason, context, owner,
    assert row.count("?") == 2          # container; source, dest
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
    assert s.getvalue() == "LOST 2 events (event buffer full), 7 in all\n"
    assert s.flushes == 1


# -- summary ------------------------------------------------------------------------

def test_summary_counts():
    summ = Summary()
    summ.add(record(cause="no-connection"))
    summ.add(record(state=None, reason=None, cause="no-listener"))
    summ.add(record(kind="received", hook="tcp_reset", cause="reset-received",
                    stack=["tcp_reset", "tcp_validate_incoming"]))
    summ.add(record(cause="no-connection"), count=2)
    summ.lost = 4
    summ.kernel_events = 9
    d = summ.as_dict()
    assert d["kind"] == "summary"
    assert d["events"] == 5 and d["lost"] == 4 and d["kernel_events"] == 9
    assert d["by_kind"] == {"sent": 4, "received": 1}
    assert d["by_hook"] == {"tcp_v4_send_reset": 4, "tcp_reset": 1}
    assert d["by_state"] == {"ESTABLISHED": 4, "-": 1}
    assert d["by_reason"] == {"NO_SOCKET": 4, "-": 1}
    assert d["by_cause"] == {"no-connection": 3, "no-listener": 1,
                             "reset-received": 1}
    assert list(d["by_kind"]) == ["sent", "received"]   # most common first
    assert d["rows"][0] == {
        "cause": "no-connection", "kind": "sent", "hook": "tcp_v4_send_reset",
        "state": "ESTABLISHED", "reason": "NO_SOCKET", "family": 4,
        "path": "tcp_v4_send_reset < tcp_v4_rcv < ip_protocol_deliver_rcu",
        "count": 3}
    assert sum(r["count"] for r in d["rows"]) == 5 and len(d["rows"]) == 3
    json.dumps(d)


def test_summary_empty():
    summ = Summary()
    d = summ.as_dict()
    assert d["events"] == 0 and d["kernel_events"] is None
    assert d["by_kind"] == {} and d["rows"] == []
    assert summ.as_text() == "0 events, 0 lost"


def test_summary_text():
    summ = Summary()
    for _ in range(3):
        summ.add(record(cause="no-listener"))
    summ.add(record(kind="received", stack=[], cause="reset-received"))
    summ.lost = 1
    summ.kernel_events = 5
    text = summ.as_text()
    assert text.startswith("4 events, 1 lost (5 matched in the kernel)\n\n")
    lines = text.splitlines()
    hdr = next(i for i, line in enumerate(lines)
               if line.split()[:2] == ["cause", "events"])
    assert lines[hdr + 1].startswith("---")
    assert lines[hdr + 2].split()[:3] == ["no-listener", "3", "a"]
    assert lines[hdr + 3].split()[:2] == ["reset-received", "1"]
    assert "tcp_v4_send_reset < tcp_v4_rcv <" in text
    rows = next(i for i, line in enumerate(lines)
                if line.split()[:2] == ["cause", "kind"])
    assert lines[rows + 2].split()[-1] == "3"


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
    text = table([["a", "one two three four five six", 7]], ["x", "y", "n"],
                 [None, 9, None])
    body = text.splitlines()[2:]
    assert [line.split()[-1] for line in body][0] == "7"
    assert [line.strip() for line in body][1:] == ["three", "four five",
                                                   "six"]
    assert "one two" in body[0]
    assert "one two three four" not in text     # wrapped


def test_table_keeps_line_breaks_in_cells():
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
    w.flush()
    want = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in recs)
    assert s.getvalue() == want


def test_json_same_explanation_other_stack():
    s = Stream()
    w = JsonWriter(s)
    w.event(record(stack=["a"]))
    w.event(record(stack=["b"]))
    w.flush()
    assert [json.loads(l)["stack"] for l in s.lines()] == [["a"], ["b"]]


def test_summary_text_exact():
    """The whole text: head, the cause table (meaning wrapped at 70, an
    unknown cause with none), the rows table ('-' for a missing value,
    path wrapped at 60)."""
    from rsttrace.causes import CAUSES
    summ = Summary()
    summ.add(record(cause="no-listener"), count=2)
    summ.add(record(cause="made-up", state=None))
    assert summ.as_text() == "\n\n".join([
        "3 events, 0 lost",
        table([("no-listener", 2, CAUSES["no-listener"].what),
               ("made-up", 1, "")],
              ["cause", "events", "what it means"], [None, None, 70]),
        table([list(row[:3]) + ["-" if v is None else v for v in row[3:]]
               + [n] for row, n in summ.rows.most_common()],
              list(Summary.ROW) + ["count"],
              [None, None, None, None, None, None, 60])])
    assert "-" in summ.as_text().splitlines()[-1].split()


def test_rows_wrap_the_cause_at_line_width():
    s = Stream()
    w = RowWriter(s, stacks=False)
    w.event(record(cause="no-listener", explanation="word " * 40))
    cause = s.lines()[2:]
    assert cause[0].startswith("    cause: no-listener: word")
    assert all(l.startswith("      word") for l in cause[1:])
    assert 70 < max(len(l) for l in cause) <= LINE_WIDTH
    assert len(cause) == 4
    s = Stream()
    RowWriter(s, stacks=False, wide=True).event(
        record(cause="no-listener", explanation="word " * 40))
    assert s.lines()[2] == ("    cause: no-listener: " + "word " * 40)


def test_rows_strip_only_the_right():
    s = Stream()
    RowWriter(s, stacks=False).event(record())
    assert all(l == l.rstrip() and not l.startswith(" ")
               for l in s.lines()[:2])
    assert s.lines()[0].startswith("TIME ")


def test_rows_summary():
    s = Stream()
    summ = Summary()
    summ.add(record(cause="no-listener"))
    RowWriter(s).summary(summ)
    assert s.getvalue() == summ.as_text() + "\n"
    assert s.flushes == 1


def test_table_empty_cell():
    out = table([("a", ""), ("b", "x")], ["k", "v"])
    assert out.splitlines()[2].rstrip() == "a"
    assert "XX" not in out


def test_summary_rows_without_family():
    summ = Summary()
    summ.add(record(cause="no-listener", family=None))
    rows = summ.as_text().split("\n\n")[2].splitlines()
    assert rows[2].split()[5] == "-"          # family column


# -- who is behind the RST ------------------------------------------------------

WHO = dict(owner_pid=812, owner_comm="nginx", owner_source="socket",
           netns_name="netns-1f2e", pod={"namespace": "shop", "name": "web-0"},
           container={"runtime": "podman", "id": "ab" * 32, "name": "web",
                      "image": "localhost/web:1"})


def test_narrow_rows_name_who_below_the_row():
    s = Stream()
    RowWriter(s, stacks=False).event(record(**WHO))
    lines = s.lines()
    assert lines[2] == ("    owner nginx[812], container web (podman), pod "
                        "shop/web-0, netns netns-1f2e")
    assert max(len(line) for line in lines) <= LINE_WIDTH


def test_who_line_without_an_owner_says_why():
    s = Stream()
    RowWriter(s, stacks=False).event(record(
        owner_source="no-socket", netns_name="host"))
    assert s.lines()[2] == "    no owner (no-socket), netns host"
    s = Stream()                        # --no-owner: no who line at all
    RowWriter(s, stacks=False).event(record())
    assert len(s.lines()) == 2


def test_who_line_wraps_at_the_line_width():
    s = Stream()
    RowWriter(s, stacks=False).event(record(**dict(
        WHO, owner_comm="x" * 15, netns_name="n" * 40,
        container=dict(WHO["container"], name=None))))
    lines = s.lines()
    assert len(lines) == 4 and lines[3].startswith("      ")
    assert "container abababababab (podman)" in lines[2]
    assert max(len(line) for line in lines) <= LINE_WIDTH
