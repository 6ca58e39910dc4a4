"""`rsttrace report` on a saved capture: offline, no root."""

import json
import subprocess
import sys

import pytest

from rsttrace.errors import RsttraceError
from rsttrace.output.report import Tally, load, summarise
from rsttrace.output.report import events as report_events

RSTTRACE = [sys.executable, "-m", "rsttrace"]


def capture(tmp_path, records):
    path = tmp_path / "cap.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(path)


def ev(kind, cause, saddr, sport, daddr, dport):
    return {"kind": kind, "cause": cause, "saddr": saddr, "sport": sport,
            "daddr": daddr, "dport": dport, "stack": []}


RECORDS = [
    ev("sent", "no-listener", "10.0.0.1", 80, "10.0.0.9", 5555),
    ev("sent", "no-listener", "10.0.0.1", 80, "10.0.0.9", 5556),
    ev("received", "reset-received", "10.0.0.7", 443, "10.0.0.1", 4000),
    {"kind": "lost", "count": 3, "total": 3},
    {"kind": "summary", "events": 3},
]


def report_of(path, warnings=None):
    warn = (warnings.append if warnings is not None else
            lambda m: pytest.fail("unexpected warning: " + m))
    return summarise(load(path, warn), path)


def test_summarise_counts_by_cause_peer_and_port(tmp_path):
    rep = report_of(capture(tmp_path, RECORDS))
    assert rep["events"] == 3 and rep["lost"] == 3
    causes = {c["cause"]: c["count"] for c in rep["by_cause"]}
    assert causes == {"no-listener": 2, "reset-received": 1}
    # the peer is the far end: destination of a sent RST, source of a
    # received one
    assert rep["by_peer"] == {"10.0.0.9": 2, "10.0.0.7": 1}
    assert rep["by_local_port"] == {"80": 2, "4000": 1}
    assert all(c["explanation"].endswith(".") for c in rep["by_cause"])
    assert rep["by_kind"] == {"sent": 2, "received": 1}


ABORT_FRAMES = ["tcp_reset", "tcp_rcv_state_process", "tcp_v4_do_rcv"]


def test_an_old_capture_s_own_aborts_are_not_received_rsts(tmp_path):
    """Schema version 1 reported the kernel's own abort (tcp_reset from
    tcp_rcv_state_process, no RST arrived) as received: the report counts
    it as an abort, and its peer as the source of the segment."""
    phantom = dict(ev("received", "data-after-close", "10.0.0.7", 443,
                      "10.0.0.1", 4000), hook="tcp:tcp_receive_reset",
                   state="FIN_WAIT2", stack=ABORT_FRAMES)
    real = dict(ev("received", "reset-received", "10.0.0.7", 443,
                   "10.0.0.1", 4001), hook="tcp:tcp_receive_reset",
                state="CLOSE_WAIT", stack=["tcp_reset",
                                           "tcp_validate_incoming"])
    rep = report_of(capture(tmp_path, [phantom, real]))
    assert rep["by_kind"] == {"abort": 1, "received": 1}
    assert rep["by_peer"] == {"10.0.0.7": 2}


def test_not_json_is_one_clear_error(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"kind": "sent"}\nnot json\n')
    with pytest.raises(RsttraceError) as e:
        report_of(str(path))
    assert "line 2 is not JSON" in str(e.value)


def test_binary_file_is_one_clear_error(tmp_path):
    path = tmp_path / "random"
    path.write_bytes(bytes(range(255, -1, -1)) * 12)
    with pytest.raises(RsttraceError) as e:
        report_of(str(path))
    assert "not text" in str(e.value) and "\n" not in str(e.value)


def test_cut_last_line_is_skipped_with_a_warning(tmp_path):
    path = capture(tmp_path, RECORDS)
    with open(path, "a") as f:
        f.write('{"kind": "sent", "cau')        # killed mid-line
    warnings = []
    rep = report_of(path, warnings)
    assert rep["events"] == 3
    assert len(warnings) == 1 and "cut off" in warnings[0]


def test_empty_capture_says_so(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("")
    with pytest.raises(RsttraceError) as e:
        report_of(str(path))
    assert str(e.value).startswith("no events in ")


def test_records_of_the_wrong_shape_are_skipped(tmp_path):
    bad = [{"kind": "sent", "sport": "x", "cause": {"a": 1},
            "stack": "notalist"},
           {"kind": "sent", "stack": [1, 2]}, {"kind": "sent", "sport": True},
           {"kind": "received", "cause": "made-up"}, [1, 2][:0] or {"x": 1}]
    warnings = []
    rep = report_of(capture(tmp_path, RECORDS + bad), warnings)
    assert rep["events"] == 3
    assert len(warnings) == 1 and "skipped 5 records" in warnings[0]


def test_a_json_value_that_is_not_an_object(tmp_path):
    path = tmp_path / "list.jsonl"
    path.write_text("[1, 2]\n")
    with pytest.raises(RsttraceError) as e:
        report_of(str(path))
    assert "not a JSON object" in str(e.value)


def test_report_command(tmp_path):
    res = subprocess.run(RSTTRACE + ["report", capture(tmp_path, RECORDS)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "no-listener" in res.stdout
    assert "3 events (2 sent, 1 received), 3 lost" in res.stdout
    res = subprocess.run(RSTTRACE + ["report", str(tmp_path / "nope")],
                         capture_output=True, text=True)
    assert res.returncode == 1
    assert res.stderr.startswith("rsttrace: error: cannot read")


def test_report_command_on_bad_input_is_one_line(tmp_path):
    for name, data in (("bin", bytes(range(256))), ("empty", b""),
                       ("text", b"hello\n")):
        path = tmp_path / name
        path.write_bytes(data)
        res = subprocess.run(RSTTRACE + ["report", str(path)],
                             capture_output=True, text=True)
        assert res.returncode == 1, name
        assert res.stderr.startswith("rsttrace: error: "), res.stderr
        assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr


# -- exact results (each detail of the report is asserted) ----------------------

def test_load_exact_warning_and_lost_sum(tmp_path):
    recs = [RECORDS[0],
            {"kind": "lost", "count": 2, "total": 2},
            {"kind": "lost", "count": 5, "total": 7},
            {"kind": "lost", "count": "x"},          # not a count: skipped?
            {"kind": "weird"},
            dict(RECORDS[0], sport="80"),
            dict(RECORDS[0], cause="x" * 50),
            dict(RECORDS[0], stack=["f", 1]),
            dict(RECORDS[0], family=True)]
    warnings = []
    lost = []
    events = list(report_events(capture(tmp_path, recs), warnings.append,
                                lost.append))
    assert events == [RECORDS[0]]
    assert lost == [2, 5]
    assert load(capture(tmp_path, recs), lambda m: None).lost == 7
    path = str(tmp_path / "cap.jsonl")
    assert warnings == [
        "%s: skipped 5 records that are not rsttrace events (line 5: kind "
        "'weird'; line 6: sport is str; line 7: cause '%s' is not one of "
        "rsttrace's)" % (path, "x" * 40)]


@pytest.mark.parametrize("rec, why", [
    (dict(RECORDS[0], stack=["f", 1]),
     "stack holds something other than frame names"),
    (dict(RECORDS[0], family=True), "family is bool"),
    (dict(RECORDS[0], hook=3), "hook is int"),
    (dict(RECORDS[0], cause=None), None),
    (RECORDS[0], None)])
def test_malformed(rec, why):
    from rsttrace.output.report import _malformed
    assert _malformed(rec) == why


def test_records_without_a_cause_are_attributed(tmp_path):
    from rsttrace.attribution import attribute_record
    rec = dict(RECORDS[0], cause=None, hook="tcp_v4_send_reset",
               state=None, seg_flags="SYN", stack=["tcp_v4_send_reset"])
    rep = report_of(capture(tmp_path, [rec]))
    assert [c["cause"] for c in rep["by_cause"]] == [
        attribute_record(rec)[0]]


def test_unknown_peer_and_port_and_top_20(tmp_path):
    unknown = ev("sent", "no-listener", "10.0.0.1", None, None, 1)
    rep = report_of(capture(tmp_path, [unknown]))
    assert (rep["by_peer"], rep["by_local_port"]) == ({"?": 1}, {"?": 1})
    recs = [ev("sent", "no-listener", "10.0.0.1", 1000 + i,
               "10.1.0.%d" % i, 9) for i in range(25) for _ in range(i + 1)]
    rep = report_of(capture(tmp_path, recs))
    assert list(rep["by_peer"]) == ["10.1.0.%d" % i
                                    for i in range(24, 4, -1)]
    assert list(rep["by_local_port"]) == [str(1000 + i)
                                          for i in range(24, 4, -1)]


def test_as_text_exact(tmp_path):
    from rsttrace.causes import explain
    from rsttrace.output.report import as_text
    from rsttrace.output.tables import table
    rep = report_of(capture(tmp_path, RECORDS))
    assert as_text(rep) == "\n\n".join([
        "3 events (2 sent, 1 received), 3 lost",
        table([("no-listener", 2, explain("no-listener")),
               ("reset-received", 1, explain("reset-received"))],
              ["cause", "events", "explanation"], [None, None, 80]),
        table([("10.0.0.9", 2), ("10.0.0.7", 1)], ["peer", "events"]),
        table([("80", 2), ("4000", 1)], ["local port", "events"])])
    assert as_text(rep).splitlines()[2].split() == [
        "cause", "events", "explanation"]


def test_no_events_line(tmp_path):
    with pytest.raises(RsttraceError) as e:
        summarise(Tally(), "cap.jsonl")
    assert str(e.value) == ("no events in cap.jsonl: give a capture of "
                            "`rsttrace trace --json` that saw RSTs")


def test_report_of_a_file_that_is_no_capture(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello\n")
    with pytest.raises(RsttraceError) as e:
        load(str(path), lambda m: None)
    assert str(e.value) == ("%s line 1 is not JSON: give a file written by "
                            "`rsttrace trace --json`" % path)


# -- who: per owner, container and pod ---------------------------------------

CTR = {"runtime": "podman", "id": "ab" * 32, "name": "web", "image": None}


def who(record, **kw):
    base = dict(owner_pid=None, owner_comm=None, owner_source="no-socket",
                container=None, pod=None)
    base.update(kw)
    return dict(record, **base)


def test_summarise_counts_by_owner_container_and_pod(tmp_path):
    recs = [who(RECORDS[0], container=CTR,
                pod={"namespace": "shop", "name": "web-0"}),
            who(RECORDS[1], container=dict(CTR, name=None)),
            dict(who(RECORDS[2]), owner_pid=812, owner_comm="nginx",
                 owner_source="socket")]
    rep = report_of(capture(tmp_path, recs))
    assert rep["by_owner"] == {"none (no-socket)": 2, "nginx[812]": 1}
    assert rep["by_container"] == {"web": 1, "abababababab": 1, "-": 1}
    assert rep["by_pod"] == {"shop/web-0": 1, "-": 2}
    from rsttrace.output.report import as_text
    text = as_text(rep)
    for heading in ("owner", "container", "pod"):
        assert "\n%s " % heading in text


def test_older_captures_have_no_who_tables(tmp_path):
    from rsttrace.output.report import as_text
    rep = report_of(capture(tmp_path, RECORDS))
    assert rep["by_container"] == {"-": 3}
    assert "container" not in as_text(rep)


@pytest.mark.parametrize("bad", [
    {"container": "web"}, {"container": {"name": 5}}, {"pod": []},
    {"pod": {"name": {"x": 1}}}, {"owner_pid": "812"}])
def test_malformed_who_fields_are_skipped(tmp_path, bad):
    warnings = []
    rep = report_of(capture(tmp_path, [RECORDS[0], dict(RECORDS[1], **bad)]),
                    warnings)
    assert rep["events"] == 1 and len(warnings) == 1
