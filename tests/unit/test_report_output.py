"""`rsttrace report` prints any capture's strings: JSON allows lone
surrogates, which no output encoding holds; they come out escaped rather
than as a UnicodeEncodeError traceback."""

import json
import os


from cli_runner import cli_runner
from rsttrace.cli import main

RECORDING = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "data", "events-6.18.44-fc-v857.jsonl")


def test_a_lone_surrogate_is_printed_escaped(tmp_path):
    with open(RECORDING) as f:
        rec = json.loads(f.readline())
    rec["daddr"] = "\ud800x"
    capture = tmp_path / "capture.jsonl"
    capture.write_text(json.dumps(rec) + "\n")
    for args in ([], ["--json"]):
        res = cli_runner().invoke(main, ["report"] + args + [str(capture)])
        assert res.exit_code == 0, res.exception
        assert "\\ud800x" in res.stdout
