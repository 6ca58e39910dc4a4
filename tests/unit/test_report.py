"""`rsttrace report` on a saved capture: offline, no root."""

import json
import subprocess
import sys

import pytest

from rsttrace.errors import RsttraceError
from rsttrace.output.report import load, summarise

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
    assert "no-listener" in res.stdout and "3 events, 3 lost" in res.stdout
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
