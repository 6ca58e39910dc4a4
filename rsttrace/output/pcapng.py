"""`trace -w FILE` and `convert -w`: events as a pcapng file for Wireshark,
tshark and tcpdump, one packet per event.

Each packet is the event's IP + TCP header as the kernel put it on the wire
(rsttrace.output.wire_header; no payload), with
  - the diagnosis in its comments (opt_comment): cause and the facts it was
    decided on, the explanation, the key frames of the kernel stack;
  - its direction in epb_flags: outbound for an RST or challenge ACK sent,
    inbound for an RST received;
  - no packet for an `abort` event: the kernel aborted its own socket, and
    nothing crossed the wire for it (its RST, if any, is its own event);
  - one interface per network namespace, named after it (the `ip netns`
    name when the record has `netns_name`, else netns:<inode>);
  - its wall-clock time in nanoseconds: the record's own `time` (the
    monotonic stamp converted once per run, by the Decoder) with the
    nanoseconds of `ts_ns`, so that `mergecap` with a tcpdump capture of
    the same traffic puts each RST next to the packet it answers.

The blocks are written here rather than with python-pcapng (which writes
them correctly, but at about five times this writer's cost per packet,
measured on the recorded events of tests/data; in a storm that is CPU the
event stream needs) or scapy (whose writer takes comments and direction
only from its own packet objects, at microsecond resolution). The format
is pcapng 1.0 (draft-ietf-opsawg-pcapng), read back by tshark and tcpdump
in the tests.
"""

import datetime
import os
import platform
import shlex
import struct

from rsttrace.output.wire_header import NotAPacket, header
from rsttrace.trace.stacks import path_of

# Raw IPv4 or IPv6, told apart by the version nibble. The registered
# LINKTYPE_RAW is 101, but libpcap (1.10.3, Debian 12's; tcpdump reads
# pcapng through it) compares each further interface's link type with the
# first one's *DLT* (12 for 101) and refuses the file: so 12, DLT_RAW on
# Linux, which libpcap takes as it is and Wireshark maps to raw IP too.
LINKTYPE_RAW = 12
BYTE_ORDER_MAGIC = 0x1A2B3C4D
SHB, IDB, EPB = 0x0A0D0D0A, 0x00000001, 0x00000006
OPT_END, OPT_COMMENT = 0, 1
SHB_HARDWARE, SHB_OS, SHB_USERAPPL = 2, 3, 4
IF_NAME, IF_DESCRIPTION, IF_TSRESOL = 2, 3, 9
EPB_FLAGS = 2
TSRESOL_NS = 9               # if_tsresol: 10^-9 s
INBOUND, OUTBOUND = 1, 2     # epb_flags bits 0-1
STACK_FRAMES = 6             # frames of the stack in a packet's comment
# Keys of the record that go into the first comment, when present (the
# owner keys come with issue 12's owner attribution).
# The event kinds that stand for a segment on the wire.
PACKET_KINDS = ("sent", "received", "challenge_ack")
COMMENT_KEYS = ("cause", "kind", "hook", "state", "reason", "seg_flags",
                "context", "pid", "comm", "netns", "netns_name", "owner_pid",
                "owner_comm", "owner_source", "container", "pod")
OPTIONS_KEPT = 4096

_EPB_HEAD = struct.Struct("<IIIIIII")
_U32 = struct.Struct("<I")


def _option(code, value):
    value = value[:0xFFFF]          # the length is 16 bits: longer is cut
    pad = -len(value) % 4
    return struct.pack("<HH", code, len(value)) + value + b"\0" * pad


def _options(opts):
    if not opts:
        return b""
    return b"".join(_option(c, v) for c, v in opts) + _option(OPT_END, b"")


def _block(kind, body):
    length = 12 + len(body)
    return struct.pack("<II", kind, length) + body + _U32.pack(length)


def section_header(application):
    return _block(SHB, struct.pack("<IHHq", BYTE_ORDER_MAGIC, 1, 0, -1) +
                  _options([(SHB_HARDWARE, platform.machine().encode()),
                            (SHB_OS, ("%s %s" % (os.uname().sysname,
                                                 os.uname().release)).encode()),
                            (SHB_USERAPPL, application.encode())]))


def _utf8(text):
    """Text as UTF-8; what UTF-8 cannot hold (JSON's lone surrogates)
    escaped."""
    return text.encode("utf-8", "backslashreplace")


def interface(name, description):
    return _block(IDB, struct.pack("<HHI", LINKTYPE_RAW, 0, 0) + _options(
        [(IF_NAME, _utf8(name)), (IF_DESCRIPTION, _utf8(description)),
         (IF_TSRESOL, bytes([TSRESOL_NS]))]))


def _text(value):
    if value is None:
        return "-"
    return shlex.quote(str(value))


def _facts(record):
    """(key, value) of the record's COMMENT_KEYS; an object's members as
    key.member (container.name, pod.namespace)."""
    for k in COMMENT_KEYS:
        if k not in record:
            continue
        value = record[k]
        if isinstance(value, dict):
            for sub, v in value.items():
                yield "%s.%s" % (k, sub), v
        else:
            yield k, value


def _hashable(value):
    """A JSON value as a cache key."""
    if isinstance(value, dict):
        return tuple((k, _hashable(v)) for k, v in value.items())
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    return value


def comments(record, stacks=True):
    """The packet's comments: `key=value ...` (shell-quoted values, `-` for
    none), the explanation, the key frames of the stack (unless
    --no-stack)."""
    facts = " ".join("%s=%s" % (k, _text(v)) for k, v in _facts(record))
    if record.get("seq") is None:
        facts += " seq=unknown ack=unknown"
    out = ["rsttrace: " + facts]
    if record.get("explanation"):
        out.append(str(record["explanation"]))
    if stacks and record.get("stack"):
        out.append("stack: " + path_of(record["stack"], STACK_FRAMES))
    return out


class WallClock:
    """A record's wall-clock time in nanoseconds: its `time` (ISO 8601,
    microseconds; the Decoder converts the kernel's monotonic stamp with
    one offset per run, a whole number of microseconds) plus the
    nanoseconds of its monotonic `ts_ns`."""

    def __init__(self):
        self._second = self._epoch = None

    def ns(self, record):
        text = record.get("time")
        if not isinstance(text, str) or len(text) < 27 or text[19] != ".":
            raise NotAPacket("time %r is not rsttrace's ISO 8601" % (text,))
        second = text[:19] + text[26:]          # without the microseconds
        if second != self._second:
            try:
                self._epoch = int(datetime.datetime.fromisoformat(
                    second).timestamp())
            except ValueError:
                raise NotAPacket("time %r is not ISO 8601" % (text[:40],))
            self._second = second
        usec = text[20:26]
        if not (usec.isascii() and usec.isdigit()):
            raise NotAPacket("time %r is not ISO 8601" % (text[:40],))
        ts = record.get("ts_ns")
        extra = ts % 1000 if isinstance(ts, int) and ts >= 0 else 0
        wall = (self._epoch * 1000000 + int(usec)) * 1000 + extra
        if not 0 <= wall < 1 << 64:
            raise NotAPacket("time %r is outside pcapng's range" % text)
        return wall


class PcapngWriter:
    """A writer (rsttrace.output.writers) of pcapng to a binary stream."""

    def __init__(self, stream, application="rsttrace", warn=None,
                 stacks=True):
        self.stream = stream
        self.warn = warn
        self.stacks = stacks
        self.interfaces = {}         # (netns, netns_name) -> interface id
        self.clock = WallClock()
        self.skipped = 0             # events that made no packet
        self.skip_reason = None      # why the first of them made none
        self._options = {}
        self.stream.write(section_header(application))

    def _interface(self, record):
        key = (_hashable(record.get("netns")),
               _hashable(record.get("netns_name")))
        found = self.interfaces.get(key)
        if found is not None:
            return found
        inode, name = record.get("netns"), record.get("netns_name")
        inode = "unknown" if inode is None else str(inode)
        what = "network namespace %s" % inode
        if name:
            what += " (ip netns %s)" % (name,)
        self.stream.write(interface(str(name) if name else
                                    "netns:%s" % inode, what))
        found = self.interfaces[key] = len(self.interfaces)
        return found

    def _packet_options(self, record):
        # a key absent is not a key set to null: the comment says
        # `netns_name=-` only for the latter (records of older rsttraces,
        # converted with newer ones, lack the owner keys)
        key = tuple((k in record, _hashable(record.get(k)))
                    for k in COMMENT_KEYS) + (
            record.get("seq") is None, _hashable(record.get("explanation")),
            tuple((record.get("stack") or ())[:STACK_FRAMES]))
        opts = self._options.get(key)
        if opts is None:
            if len(self._options) > OPTIONS_KEPT:
                self._options.clear()
            direction = INBOUND if record["kind"] == "received" else OUTBOUND
            opts = self._options[key] = _options(
                [(OPT_COMMENT, _utf8(c))
                 for c in comments(record, self.stacks)] +
                [(EPB_FLAGS, _U32.pack(direction))])
        return opts

    def packet(self, record):
        """The EPB of one event record; NotAPacket when it cannot have one."""
        stack = record.get("stack")
        if stack is not None and not (isinstance(stack, list) and all(
                isinstance(f, str) for f in stack)):
            raise NotAPacket("stack is not a list of frame names")
        if record.get("kind") not in PACKET_KINDS:
            raise NotAPacket("kind %r is not an event's" % (
                record.get("kind"),))
        data = header(record)
        ts = self.clock.ns(record)
        opts = self._packet_options(record)
        body_len = 28 + len(data) + len(opts) + 4     # data: a multiple of 4
        return (_EPB_HEAD.pack(EPB, body_len, self._interface(record),
                               ts >> 32, ts & 0xFFFFFFFF, len(data),
                               len(data)) + data + opts +
                _U32.pack(body_len))

    def event(self, record):
        if record.get("kind") == "abort":
            return                   # nothing on the wire (see above)
        try:
            block = self.packet(record)
        except NotAPacket as e:
            self.skipped += 1
            if self.skipped == 1:
                self.skip_reason = str(e)
                if self.warn is not None:
                    self.warn("an event left out of the pcapng file (%s)"
                              % e)
            return
        self.stream.write(block)

    def lost(self, count, total):
        """pcapng has no block for events lost before they were read: the
        loss is reported on stderr (and in --json output)."""

    def summary(self, summary):
        """The summary has no place in a capture file."""

    def flush(self):
        self.stream.flush()
