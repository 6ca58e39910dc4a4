"""An independent witness of the RSTs that crossed the wire in a scenario:
tcpdump on each side's veth, inside its namespace, reading nothing of
rsttrace's. The tests hold rsttrace's events to it (no `received` event
without an RST that arrived).

    with Witness(pair) as w:
        ...                         # the scenario
    w.arrived("a")                  # [Rst] that reached side a
"""

import collections
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile

# Every TCP segment with RST set: IPv4 by tcpdump's own field, IPv6
# without extension headers (byte 13 of the TCP header at offset 40).
FILTER = ("tcp[tcpflags] & tcp-rst != 0 or "
          "(ip6 and ip6[6] == 6 and ip6[53] & 4 != 0)")

Rst = collections.namedtuple("Rst", "saddr sport daddr dport seq ack flags")

# pcap's magic number, microsecond or nanosecond, in either byte order
PCAP_MAGIC = {b"\xd4\xc3\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">",
              b"\x4d\x3c\xb2\xa1": "<", b"\xa1\xb2\x3c\x4d": ">"}
LINKTYPE_ETHERNET = 1


class Witness:
    """tcpdump in both namespaces of a NamespacePair, while it is used as a
    context manager; the RSTs each side saw, after."""

    def __init__(self, pair):
        self.pair = pair
        self.dir = None
        self.procs = {}
        self.seen = {}              # side -> [Rst]

    def __enter__(self):
        if shutil.which("tcpdump") is None:
            raise RuntimeError("tcpdump is not installed (scripts/setup "
                               "installs it)")
        self.dir = tempfile.mkdtemp(prefix="rsttrace-witness-")
        try:
            for side in ("a", "b"):
                self._start(side)
        except BaseException:
            self._stop()
            raise
        return self

    def _start(self, side):
        # -Z root: keep writing into our own 0700 directory; packets
        # handed over and written as they come (--immediate-mode, -U), so
        # a stop loses none
        proc = subprocess.Popen(
            ["ip", "netns", "exec", self.pair.names[side], "tcpdump",
             "--immediate-mode", "-Z", "root", "-U", "-n", "-s", "128",
             "-i", self.pair.veth[side],
             "-w", self._path(side), FILTER],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.procs[side] = proc
        line = proc.stderr.readline()       # "listening on ...": capturing
        if "listening on" not in line:
            raise RuntimeError("tcpdump in %s did not start: %s"
                               % (self.pair.names[side], line.strip()))

    def _path(self, side):
        return os.path.join(self.dir, side + ".pcap")

    def __exit__(self, *exc):
        self._stop()

    def _stop(self):
        for side, proc in self.procs.items():
            proc.send_signal(signal.SIGINT)
            try:
                proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
            if os.path.exists(self._path(side)):
                with open(self._path(side), "rb") as f:
                    self.seen[side] = rsts(f.read())
        self.procs = {}
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def arrived(self, side):
        """The RSTs that reached `side` (addressed to it)."""
        mine = {self.pair.ipv4[side], self.pair.ipv6[side]}
        return [r for r in self.seen.get(side, ()) if r.daddr in mine]

    def left(self, side):
        """The RSTs that `side` put on the wire."""
        mine = {self.pair.ipv4[side], self.pair.ipv6[side]}
        return [r for r in self.seen.get(side, ()) if r.saddr in mine]


def rsts(data):
    """The TCP segments with RST in a pcap file (Ethernet frames)."""
    if len(data) < 24 or data[:4] not in PCAP_MAGIC:
        raise ValueError("not a pcap file")
    order = PCAP_MAGIC[data[:4]]
    if struct.unpack(order + "I", data[20:24])[0] != LINKTYPE_ETHERNET:
        raise ValueError("not an Ethernet capture")
    out, pos = [], 24
    while pos + 16 <= len(data):
        caplen = struct.unpack(order + "I", data[pos + 8:pos + 12])[0]
        frame = data[pos + 16:pos + 16 + caplen]
        pos += 16 + caplen
        seg = _tcp(frame)
        if seg and seg.flags & 0x04:
            out.append(seg)
    return out


def _tcp(frame):
    """The Rst fields of an Ethernet frame carrying TCP, else None."""
    if len(frame) < 14:
        return None
    ethertype, ip = struct.unpack("!H", frame[12:14])[0], frame[14:]
    if ethertype == 0x0800 and len(ip) >= 20 and ip[9] == 6:
        fam, src, dst, th = socket.AF_INET, ip[12:16], ip[16:20], \
            ip[(ip[0] & 0x0F) * 4:]
    elif ethertype == 0x86DD and len(ip) >= 40 and ip[6] == 6:
        fam, src, dst, th = socket.AF_INET6, ip[8:24], ip[24:40], ip[40:]
    else:
        return None
    if len(th) < 14:
        return None
    sport, dport, seq, ack = struct.unpack("!HHII", th[:12])
    return Rst(socket.inet_ntop(fam, src), sport, socket.inet_ntop(fam, dst),
               dport, seq, ack, th[13])
