"""Hand-made TCP segments for scenarios the socket API cannot produce
(an RST or SYN with a chosen sequence number, a late ACK), and the
sequence numbers of a live connection, read with TCP_REPAIR."""

import socket
import struct

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10

# include/uapi/linux/tcp.h
TCP_REPAIR = 19
TCP_REPAIR_QUEUE = 20
TCP_QUEUE_SEQ = 21
TCP_RECV_QUEUE = 1
TCP_SEND_QUEUE = 2
TCP_REPAIR_ON = 1
TCP_REPAIR_OFF_NO_WP = -1


def _checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def tcp_segment(src, dst, sport, dport, seq, ack, flags, payload=b"",
                window=65535):
    """A TCP header (+ payload) for a raw socket, checksum filled; src and
    dst are IPv4 or IPv6 addresses (the pseudo-header follows them)."""
    hdr = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF,
                      ack & 0xFFFFFFFF, 5 << 4, flags, window, 0, 0)
    length = len(hdr) + len(payload)
    if ":" in src:          # RFC 8200 8.1: addresses, length, next header
        pseudo = (socket.inet_pton(socket.AF_INET6, src) +
                  socket.inet_pton(socket.AF_INET6, dst) +
                  struct.pack("!I3xB", length, socket.IPPROTO_TCP))
    else:
        pseudo = (socket.inet_aton(src) + socket.inet_aton(dst) +
                  struct.pack("!BBH", 0, socket.IPPROTO_TCP, length))
    csum = _checksum(pseudo + hdr + payload)
    return hdr[:16] + struct.pack("!H", csum) + hdr[18:] + payload


def send_segment(pair, side, dst_side, sport, dport, seq, ack, flags,
                 payload=b"", family=4):
    """Send one crafted segment from `side` to `dst_side` over IPv4 or
    IPv6 (`family` 4 or 6)."""
    fam = socket.AF_INET if family == 4 else socket.AF_INET6
    src, dst = pair.addr(side, fam), pair.addr(dst_side, fam)
    raw = pair.socket(side, fam, socket.SOCK_RAW, socket.IPPROTO_TCP)
    try:
        raw.sendto(tcp_segment(src, dst, sport, dport, seq, ack, flags,
                               payload), (dst, 0))
    finally:
        raw.close()


def sequence_numbers(sock):
    """(snd, rcv): the next sequence number this socket will send and the
    next it expects, from TCP_REPAIR (needs CAP_NET_ADMIN). The socket is
    left out of repair mode without a window probe."""
    sock.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_ON)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE)
        snd = struct.unpack("I", sock.getsockopt(socket.IPPROTO_TCP,
                                                 TCP_QUEUE_SEQ, 4))[0]
        sock.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE)
        rcv = struct.unpack("I", sock.getsockopt(socket.IPPROTO_TCP,
                                                 TCP_QUEUE_SEQ, 4))[0]
    finally:
        sock.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_OFF_NO_WP)
    return snd, rcv


def syn_burst(pair, side, dst_side, dport, count, first_sport=20000):
    """`count` SYNs from distinct source ports to `dport`, as fast as one
    raw socket sends them; each one that meets a closed port draws an RST."""
    src, dst = pair.ipv4[side], pair.ipv4[dst_side]
    raw = pair.socket(side, socket.AF_INET, socket.SOCK_RAW,
                      socket.IPPROTO_TCP)
    try:
        for i in range(count):
            sport = first_sport + i % 40000
            raw.sendto(tcp_segment(src, dst, sport, dport, seq=i, ack=0,
                                   flags=SYN), (dst, 0))
    finally:
        raw.close()
