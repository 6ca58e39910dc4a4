"""The IP + TCP header of an RST (or challenge ACK) as the kernel put it on
the wire, rebuilt from its event record: what `trace -w` writes into the
pcapng file. rsttrace never captures packets, so there is no payload and
the fields the event does not carry take fixed values (TTL/hop limit 64,
IP id 0, DF set, window 0, no TCP options); the checksums are computed.

bpf/pcap_header.h builds the same bytes in the kernel from the raw event,
for pcap filter expressions (`rsttrace trace 'tcp port 443'`): the rule
is written in both languages, and tests/unit/test_wire_header.py compiles
the C one and holds the two together byte for byte.
"""

import functools
import ipaddress
import struct

from rsttrace import abi

TTL = 64                       # PCAP_TTL in bpf/pcap_header.h
IP_DF = 0x4000
IPPROTO_TCP = 6
TCP_HEADER_LEN = 20
PACKET_HOOK = "net:net_dev_queue"   # the hook whose packet is the RST itself

_FLAG_BITS = {name: bit for bit, name in abi.TCP_FLAG_NAMES}
_IP4 = struct.Struct("!BBHHHBBH4s4s")
_IP6 = struct.Struct("!IHBB16s16s")
_TCP = struct.Struct("!HHIIBBHHH")


class NotAPacket(ValueError):
    """The record lacks what a header needs (its family, addresses or
    ports), or holds values no header can."""


def flag_bits(text):
    """A record's `seg_flags` text ("SYN|ACK") as the header's flag byte."""
    if not isinstance(text, str):
        raise NotAPacket("seg_flags %r is not TCP flags" % (text,))
    return _flag_bits(text)


@functools.lru_cache(maxsize=256)
def _flag_bits(text):
    if text == "none":
        return 0
    try:
        return sum(_FLAG_BITS[name] for name in set(text.split("|")))
    except KeyError:
        raise NotAPacket("seg_flags %r is not TCP flags" % (text,))


def wire_flags(record):
    """The TCP flags of the segment the event stands for, as the kernel
    sent them (wire_flags() in bpf/pcap_header.h is the same rule):
      - a challenge ACK is a bare ACK (tcp_send_challenge_ack());
      - a received RST, or one seen by the packet hook, is that packet:
        its own flags, RST alone when the hook had no packet;
      - an RST answering a segment (tcp_v4_send_reset(), tcp_v6_send_reset(),
        nf_send_reset()) is RST when the segment had ACK (seq = its ack),
        else RST|ACK acking it;
      - an RST from a socket (tcp_send_active_reset()) is RST|ACK.
    """
    kind, seg = record.get("kind"), record.get("seg_flags")
    if kind == "challenge_ack":
        return abi.TCPF_ACK
    if kind == "received" or record.get("hook") == PACKET_HOOK:
        return flag_bits(seg) if seg is not None else abi.TCPF_RST
    if seg is not None and flag_bits(seg) & abi.TCPF_ACK:
        return abi.TCPF_RST
    return abi.TCPF_RST | abi.TCPF_ACK


def checksum(data):
    """The Internet checksum (RFC 1071) of `data` (even length)."""
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _packed(text, family):
    if not isinstance(text, str):
        raise NotAPacket("%r is not an IP address" % (text,))
    return _packed_text(text, family)


@functools.lru_cache(maxsize=65536)
def _packed_text(text, family):
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise NotAPacket("%r is not an IP address" % (text,))
    if addr.version != family:
        raise NotAPacket("%s is not an IPv%d address" % (text, family))
    return addr.packed


def _u(record, key, bits):
    value = record.get(key)
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool) or \
            not 0 <= value < 1 << bits:
        raise NotAPacket("%s %r is not a %d-bit number" % (key, value, bits))
    return value


def header(record):
    """The header's bytes (40 for IPv4, 60 for IPv6); NotAPacket when the
    record cannot make one."""
    family = record.get("family")
    if family not in (4, 6) or isinstance(family, bool):
        raise NotAPacket("family %r is neither 4 nor 6" % (family,))
    if record.get("saddr") is None or record.get("daddr") is None or \
            record.get("sport") is None or record.get("dport") is None:
        raise NotAPacket("no addresses or ports")
    src = _packed(record["saddr"], family)
    dst = _packed(record["daddr"], family)
    tcp = _TCP.pack(_u(record, "sport", 16), _u(record, "dport", 16),
                    _u(record, "seq", 32), _u(record, "ack", 32),
                    (TCP_HEADER_LEN // 4) << 4, wire_flags(record), 0, 0, 0)
    pseudo = src + dst + struct.pack("!HH", IPPROTO_TCP, TCP_HEADER_LEN)
    csum = checksum(pseudo + tcp)
    tcp = tcp[:16] + struct.pack("!H", csum) + tcp[18:]
    if family == 4:
        ip = _IP4.pack(0x45, 0, 20 + TCP_HEADER_LEN, 0, IP_DF, TTL,
                       IPPROTO_TCP, 0, src, dst)
        ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    else:
        ip = _IP6.pack(6 << 28, TCP_HEADER_LEN, IPPROTO_TCP, TTL, src, dst)
    return ip + tcp
