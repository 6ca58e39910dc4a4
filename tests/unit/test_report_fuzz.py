"""`rsttrace report` fed what a broken disk, a kill, a wrong file or a
hostile user might give it: random bytes, random gzip streams, random
JSON, JSON with the record's keys and any values, and real records
(tests/data) mutated, alone or as a rotated set. Every input ends in a
report, or in one `rsttrace: error:` line and exit 1 (warnings on lines
of their own); never a traceback. How many of each kind is
tests/reliability.py's (docs/reliability.md)."""

import glob
import gzip
import json
import os
import re
import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import reliability
from cli_runner import cli_runner
from rsttrace.cli import main
from rsttrace.trace.decode import FIELDS

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))), "data")
REAL = [json.loads(line) for path in sorted(glob.glob(os.path.join(
    DATA, "*.jsonl"))) for line in open(path) if line.strip()]
REAL += [{"kind": "lost", "count": 3, "total": 3},
         {"kind": "summary", "events": 1, "lost": 0, "rows": []}]
KEYS = FIELDS + ("count", "total", "events", "lost", "rows")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=30) |
    st.floats(allow_nan=True, allow_infinity=True),
    lambda inner: st.lists(inner, max_size=4) |
    st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12)


def settled(kind):
    return settings(max_examples=reliability.FUZZ[kind][0],
                    derandomize=True, database=None, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.data_too_large])


def report(files):
    """Write {name: bytes} into a fresh directory, run `rsttrace report`
    on the first, check the outcome is one of the two allowed."""
    with tempfile.TemporaryDirectory(prefix="rsttrace-fuzz-") as d:
        for name, data in files.items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
        res = cli_runner().invoke(main, ["report", os.path.join(
            d, next(iter(files)))])
    assert res.exception is None or isinstance(res.exception, SystemExit), \
        repr(res.exception)
    err = res.stderr.splitlines()
    if res.exit_code == 0:
        assert re.match(r"\d+ events( \(\d+ [a-z ]+(, \d+ [a-z ]+)*\))?, "
                        r"\d+ lost$", res.stdout.splitlines()[0]), res.stdout
        assert all(l.startswith("rsttrace: warning: ") for l in err), err
    else:
        assert res.exit_code == 1 and res.stdout == ""
        assert err and err[-1].startswith("rsttrace: error: "), err
        assert all(l.startswith("rsttrace: warning: ") for l in err[:-1]), \
            err
    return res.exit_code


def lines(values):
    return "".join(json.dumps(v) + "\n" for v in values).encode()


class Counted:
    """How many inputs a property gave `report` (hypothesis also starts
    examples it drops, when a draw runs past its size limit)."""

    def __init__(self):
        self.n = 0

    def __call__(self):
        self.n += 1


def run(kind, prop):
    count = Counted()
    prop(count)
    assert count.n == reliability.FUZZ[kind][0]


def test_random_bytes():
    @settled("bytes")
    @given(st.binary(max_size=4096))
    def prop(count, data):
        report({"cap.jsonl": data})
        count()
    run("bytes", prop)


def test_random_gzip_streams():
    @settled("gzip")
    @given(st.binary(max_size=2048), st.integers(0, 3000))
    def prop(count, data, cut):
        report({"cap.jsonl.gz": gzip.compress(data)[:cut or None]})
        count()
    run("gzip", prop)


def test_random_json_lines():
    @settled("json")
    @given(st.lists(json_values, max_size=12))
    def prop(count, values):
        report({"cap.jsonl": lines(values)})
        count()
    run("json", prop)


def test_records_with_any_values():
    kinds = st.sampled_from(("sent", "received", "challenge_ack", "lost",
                             "summary")) | json_values
    records = st.fixed_dictionaries(
        {"kind": kinds}, optional={k: json_values for k in KEYS
                                   if k != "kind"})

    @settled("fields")
    @given(st.lists(records, min_size=1, max_size=12))
    def prop(count, recs):
        report({"cap.jsonl": lines(recs)})
        count()
    run("fields", prop)


@st.composite
def mutated_record(draw):
    rec = dict(draw(st.sampled_from(REAL)))
    for _ in range(draw(st.integers(0, 3))):
        how = draw(st.sampled_from(("replace", "drop", "add")))
        key = draw(st.sampled_from(sorted(rec) or ["kind"]))
        if how == "replace":
            rec[key] = draw(json_values)
        elif how == "drop":
            rec.pop(key, None)
        else:
            rec[draw(st.text(max_size=8))] = draw(json_values)
    return rec


@st.composite
def damaged(draw, data):
    """`data` cut short, with bytes flipped or inserted."""
    data = bytearray(data)
    for _ in range(draw(st.integers(0, 3))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        how = draw(st.sampled_from(("flip", "insert", "cut")))
        if how == "flip":
            data[at] ^= draw(st.integers(1, 255))
        elif how == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        else:
            del data[at:]
    return bytes(data)


def test_mutated_real_records():
    @settled("mutated")
    @given(st.data())
    def prop(count, data):
        files = {}
        for number in range(data.draw(st.integers(1, 3))):
            text = lines(data.draw(st.lists(mutated_record(), min_size=1,
                                            max_size=6)))
            text = data.draw(damaged(text))
            name = "cap.jsonl" + (".%d" % number if number else "")
            if data.draw(st.booleans()):
                text, name = gzip.compress(text), name + ".gz"
            files[name] = text
        report(files)
        count()
    run("mutated", prop)


def test_the_mutations_reach_both_outcomes():
    """The fuzzing is not all one outcome: real records, untouched, make a
    report; a cut-in-the-middle one fails in one line."""
    real = lines(REAL[:5])
    assert report({"cap.jsonl": real}) == 0
    assert report({"cap.jsonl": real[:40] + b"\n" + real}) == 1
