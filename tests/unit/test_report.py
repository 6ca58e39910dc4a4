"""`rsttrace report` on a saved capture: offline, no root."""

import json
import subprocess
import sys

import pytest

from rsttrace.errors import RsttraceError
from rsttrace.report import load, summarise

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


def test_summarise_counts_by_cause_peer_and_port(tmp_path):
    rep = summarise(load(capture(tmp_path, RECORDS)))
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
        load(str(path))
    assert "line 2" in str(e.value)


def test_report_command(tmp_path):
    res = subprocess.run(RSTTRACE + ["report", capture(tmp_path, RECORDS)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "no-listener" in res.stdout and "3 events, 3 lost" in res.stdout
    res = subprocess.run(RSTTRACE + ["report", str(tmp_path / "nope")],
                         capture_output=True, text=True)
    assert res.returncode == 1
    assert res.stderr.startswith("rsttrace: error: cannot read")
