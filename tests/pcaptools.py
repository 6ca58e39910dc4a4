"""Reading pcapng and pcap files with Debian's tshark and tcpdump (both
installed by scripts/setup), and the check that a packet of `trace -w` or
`convert -w` says what its JSON event says."""

import datetime
import json
import shlex
import subprocess

from rsttrace.output.wire_header import wire_flags
from rsttrace.trace.stacks import base_name

TSHARK_FIELDS = (
    "frame.comment", "frame.interface_name", "frame.packet_flags_direction",
    "frame.time_epoch", "ip.src", "ip.dst", "ipv6.src", "ipv6.dst",
    "tcp.srcport", "tcp.dstport", "tcp.seq_raw", "tcp.ack_raw", "tcp.flags",
    "ip.checksum.status", "tcp.checksum.status", "tcp.len")
GOOD = "1"          # tshark's checksum status "Good"


def tshark(path, display_filter=None, fields=TSHARK_FIELDS):
    """One dict per packet {field: [values]} (tshark -T json -e ...)."""
    cmd = ["tshark", "-n", "-r", str(path), "-T", "json",
           "-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE"]
    if display_filter:
        cmd += ["-Y", display_filter]
    for f in fields:
        cmd += ["-e", f]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    return [p["_source"]["layers"] for p in json.loads(res.stdout or "[]")]


def one(packet, field):
    values = packet.get(field)
    assert values and len(values) == 1, (field, values)
    return values[0]


def comment_facts(comment):
    """{key: value} of a packet's first comment, `rsttrace: k=v ...`."""
    words = shlex.split(comment)
    assert words[0] == "rsttrace:", comment
    return dict(w.split("=", 1) for w in words[1:])


def wall_ns(record):
    """A record's wall-clock time in ns, worked out here on its own: its
    ISO time to the microsecond, the rest from ts_ns."""
    when = datetime.datetime.fromisoformat(record["time"])
    sec = int(when.replace(microsecond=0).timestamp())
    return (sec * 10 ** 6 + when.microsecond) * 1000 + record["ts_ns"] % 1000


def check_packet(packet, record):
    """Every field of a rsttrace packet against its event record."""
    fam = "ip" if record["family"] == 4 else "ipv6"
    assert one(packet, fam + ".src") == record["saddr"]
    assert one(packet, fam + ".dst") == record["daddr"]
    assert int(one(packet, "tcp.srcport")) == record["sport"]
    assert int(one(packet, "tcp.dstport")) == record["dport"]
    assert int(one(packet, "tcp.seq_raw")) == (record["seq"] or 0)
    assert int(one(packet, "tcp.ack_raw")) == (record["ack"] or 0)
    assert int(one(packet, "tcp.flags"), 16) == wire_flags(record)
    assert int(one(packet, "tcp.len")) == 0
    assert one(packet, "tcp.checksum.status") == GOOD
    if fam == "ip":
        assert one(packet, "ip.checksum.status") == GOOD
    sec, nsec = one(packet, "frame.time_epoch").split(".")
    assert int(sec) * 10 ** 9 + int(nsec.ljust(9, "0")) == wall_ns(record)
    assert int(one(packet, "frame.packet_flags_direction"), 16) == (
        1 if record["kind"] == "received" else 2)
    assert one(packet, "frame.interface_name") == (
        record.get("netns_name") or "netns:%s" % record["netns"])
    comments = packet["frame.comment"]
    facts = comment_facts(comments[0])
    for key in ("cause", "kind", "hook", "state", "reason", "seg_flags",
                "context", "pid", "comm", "netns"):
        value = record[key]
        assert facts.pop(key) == ("-" if value is None else str(value)), key
    for key in ("netns_name", "owner_pid", "owner_comm", "owner_source",
                "container", "pod"):
        value = record.get(key, "absent")
        if isinstance(value, dict):         # container.name, pod.namespace
            for sub, v in value.items():
                assert facts.pop("%s.%s" % (key, sub)) == (
                    "-" if v is None else str(v))
        elif value != "absent":
            assert facts.pop(key) == ("-" if value is None else str(value))
    if record["seq"] is None:
        assert facts.pop("seq") == facts.pop("ack") == "unknown"
    assert facts == {}
    rest = comments[1:]
    if record.get("explanation"):
        assert rest.pop(0) == record["explanation"]
    if record.get("stack"):
        assert rest.pop(0) == "stack: " + " < ".join(
            base_name(f) for f in record["stack"][:6])
    assert rest == []


def tcpdump_lines(path, expression=None):
    """tcpdump's one-line text of each packet of a capture it can read
    (-nn, absolute seq, ns times), optionally through a filter."""
    cmd = ["tcpdump", "-r", str(path), "-nn", "-S", "-tt",
           "--time-stamp-precision=nano"]
    if expression:
        cmd.append(expression)
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    return [line for line in res.stdout.splitlines() if line.strip()]


def ready_line(proc, ready):
    """The line of `rsttrace trace`'s stderr that says it is attached
    (lines before it say which hooks this kernel lacks)."""
    seen = []
    for _ in range(50):
        line = proc.stderr.readline()
        seen.append(line)
        if ready in line:
            return line
        if not line:
            break
    proc.kill()
    raise AssertionError("rsttrace did not start: %s%s" % (
        "".join(seen), proc.communicate()))
