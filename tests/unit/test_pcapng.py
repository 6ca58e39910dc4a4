"""The pcapng writer (rsttrace/output/pcapng.py) and `rsttrace convert`,
read back by real clients: every recorded event of tests/data (seven
kernels, every mode) written as a packet, then tshark's view of each packet
compared field by field with its JSON record, and tcpdump (libpcap) reading
the same file; malformed captures give one line and no traceback."""

import glob
import io
import json
import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from pcaptools import check_packet, tcpdump_lines, tshark
from rsttrace.output.pcapng import PACKET_KINDS, PcapngWriter

DATA = os.path.join(os.path.dirname(__file__), "..", "data")
RSTTRACE = os.path.join(os.path.dirname(sys.executable), "rsttrace")


def rsttrace(*args):
    return subprocess.run([RSTTRACE, *map(str, args)], capture_output=True,
                          text=True, timeout=60)


def recorded():
    out = []
    for path in sorted(glob.glob(os.path.join(DATA, "events-*.jsonl"))):
        with open(path) as f:
            out += [r for r in map(json.loads, f)
                    if r.get("kind") in PACKET_KINDS]
    return out


RECORDS = recorded()


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    path = tmp_path_factory.mktemp("pcap") / "all.pcapng"
    with open(path, "wb") as f:
        writer = PcapngWriter(f)
        for r in RECORDS:
            writer.event(r)
    assert writer.skipped == 0
    return path


def test_tshark_sees_every_field_of_every_event(converted):
    packets = tshark(converted)
    assert len(packets) == len(RECORDS) > 300
    for packet, record in zip(packets, RECORDS):
        check_packet(packet, record)
    # the recordings hold every kind, both families, and records without
    # seq/ack (tracepoint mode's received RSTs)
    assert {r["kind"] for r in RECORDS} == set(PACKET_KINDS)
    assert {r["family"] for r in RECORDS} == {4, 6}
    assert any(r["seq"] is None for r in RECORDS)


def test_one_interface_per_namespace(converted):
    names = {p["frame.interface_name"][0] for p in tshark(converted)}
    assert names == {"netns:%d" % r["netns"] for r in RECORDS}
    out = subprocess.run(["capinfos", "-M", str(converted)],
                         capture_output=True, text=True, check=True).stdout
    assert "Number of interfaces in file: %d" % len(names) in out


def test_tcpdump_reads_the_file(converted):
    lines = tcpdump_lines(converted)
    assert len(lines) == len(RECORDS)
    assert all(" IP " in line or " IP6 " in line for line in lines)


def test_named_namespace_and_owner_keys_go_into_the_packet(tmp_path):
    record = dict(RECORDS[0], netns_name="web-1", owner_pid=4242,
                  owner_comm="nginx: worker", owner_source="socket",
                  container={"name": "web", "id": "abc123"},
                  pod={"namespace": "shop", "name": None})
    path = tmp_path / "one.pcapng"
    with open(path, "wb") as f:
        PcapngWriter(f).event(record)
    [packet] = tshark(path)
    check_packet(packet, record)
    first = packet["frame.comment"][0]
    assert "owner_comm='nginx: worker'" in first
    assert "container.name=web container.id=abc123 pod.namespace=shop " \
        "pod.name=-" in first
    assert packet["frame.interface_name"] == ["web-1"]


def write_capture(path, lines):
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def test_no_stack_leaves_the_stack_comment_out(tmp_path):
    path = tmp_path / "nostack.pcapng"
    with open(path, "wb") as f:
        PcapngWriter(f, stacks=False).event(RECORDS[0])
    [packet] = tshark(path)
    assert RECORDS[0]["stack"] and len(packet["frame.comment"]) == 2
    assert not any(c.startswith("stack: ") for c in packet["frame.comment"])


def test_a_comment_longer_than_an_option_holds_is_cut(tmp_path):
    path = tmp_path / "long.pcapng"
    with open(path, "wb") as f:
        PcapngWriter(f).event(dict(RECORDS[0], explanation="x" * 70000))
    [packet] = tshark(path)
    assert packet["frame.comment"][1] == "x" * 0xFFFF


def test_convert_writes_what_the_writer_writes(tmp_path):
    capture = write_capture(tmp_path / "c.jsonl", RECORDS[:20] + [
        {"kind": "lost", "count": 3, "total": 3}])
    out = tmp_path / "c.pcapng"
    r = rsttrace("convert", capture, "-w", out)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    packets = tshark(out)
    assert len(packets) == 20
    for packet, record in zip(packets, RECORDS[:20]):
        check_packet(packet, record)


def test_convert_skips_events_it_cannot_make_packets_of(tmp_path):
    good = RECORDS[:3]
    bad = [dict(good[0], family=None, saddr=None, daddr=None),
           dict(good[0], saddr="not-an-address"),
           dict(good[0], time="yesterday"), dict(good[0], sport=1 << 20),
           dict(good[0], seq=-5)]
    capture = write_capture(tmp_path / "c.jsonl", bad + good)
    out = tmp_path / "c.pcapng"
    r = rsttrace("convert", capture, "-w", out)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("\n") == 1
    assert "5 of 8 events left out" in r.stderr
    assert len(tshark(out)) == 3


@pytest.mark.parametrize("content, message", [
    ("", "no events in"),
    ("not json\n", "line 1 is not JSON"),
    ('{"kind": "lost", "count": 1, "total": 1}\n', "no events in"),
    ("\x00\xff\xfe\n", "not text"),
])
def test_convert_bad_capture_one_line(tmp_path, content, message):
    capture = tmp_path / "c.jsonl"
    capture.write_bytes(content.encode("latin-1"))
    out = tmp_path / "c.pcapng"
    r = rsttrace("convert", capture, "-w", out)
    assert r.returncode == 1
    assert r.stderr.startswith("rsttrace: error: ") and message in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not out.exists() and os.listdir(tmp_path) == ["c.jsonl"]


def test_convert_needs_w():
    r = rsttrace("convert", "x.jsonl")
    assert r.returncode == 2 and "-w" in r.stderr


def test_writer_costs_per_event_are_cached_per_diagnosis():
    """A storm repeats a few diagnoses: their options are encoded once."""
    stream = io.BytesIO()
    writer = PcapngWriter(stream)
    for _ in range(3):
        for r in RECORDS[:50]:
            writer.event(r)
    assert 0 < len(writer._options) <= 50
    assert stream.getvalue().count(b"rsttrace: cause=") == 150


def test_a_key_absent_is_cached_apart_from_a_key_null():
    """Recordings of an older rsttrace lack the owner keys; a newer one's
    have them null (`netns_name=-`): the options cache keeps them apart."""
    old = {k: v for k, v in RECORDS[0].items() if k != "netns_name"}
    new = dict(old, netns_name=None)
    stream = io.BytesIO()
    writer = PcapngWriter(stream)
    for r in (new, old, new):
        writer.event(r)
    assert stream.getvalue().count(b" netns_name=- ") == 2


def test_convert_to_standard_output(tmp_path):
    capture = write_capture(tmp_path / "c.jsonl", RECORDS[:5])
    r = subprocess.run([RSTTRACE, "convert", str(capture), "-w", "-"],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "stdout.pcapng"
    out.write_bytes(r.stdout)
    assert len(tshark(out)) == 5


@pytest.mark.parametrize("args, message", [
    (["-w", "-", "--json"], "-w - writes the capture to standard output"),
    (["-w", "-", "--summary"], "-w - writes the capture to standard output"),
    (["-w", "x.pcapng", "--summary-only"], "-w needs the event stream"),
    (["tcp", "prot", "443"], "filter expression 'tcp prot 443': "
     "can't parse filter expression: syntax error"),
    (["ip6 and tcp[13] & 4 != 0"], "expression rejects all packets"),
    (["ip6 protochain 6"], "cannot run in the kernel: it loops"),
])
def test_trace_refuses_before_loading_anything(tmp_path, args, message):
    r = subprocess.run([RSTTRACE, "trace", *args], capture_output=True,
                       text=True, timeout=60, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("rsttrace: error: ") and message in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert os.listdir(tmp_path) == []


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) |
    st.floats(allow_nan=False) | st.text(max_size=20) |
    st.text(st.characters(blacklist_categories=()), max_size=4),
    lambda inner: st.lists(inner, max_size=3) |
    st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=6)


@settings(max_examples=600, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(RECORDS[:40]),
       st.dictionaries(st.sampled_from(sorted(RECORDS[0])), JSON,
                       min_size=1, max_size=4))
def test_any_values_make_a_packet_or_a_counted_skip(record, changes):
    """Records `convert` reads are anyone's: whatever their values, the
    writer writes a packet or counts a skip, never raises."""
    stream = io.BytesIO()
    writer = PcapngWriter(stream)
    writer.event(dict(record, **changes))
    assert writer.skipped == 1 or stream.getvalue().count(
        b"\x06\x00\x00\x00") >= 1


def test_an_abort_is_no_packet():
    """The kernel's abort of its own socket (kind abort) crossed no wire:
    no packet, and not counted as an event left out."""
    aborts = []
    for path in sorted(glob.glob(os.path.join(DATA, "events-*.jsonl"))):
        with open(path) as f:
            aborts += [r for r in map(json.loads, f) if r["kind"] == "abort"]
    assert aborts
    stream = io.BytesIO()
    writer = PcapngWriter(stream)
    start = len(stream.getvalue())
    for r in aborts:
        writer.event(r)
    assert len(stream.getvalue()) == start and writer.skipped == 0
