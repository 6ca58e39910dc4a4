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


def timestamps(tsval, tsecr):
    """TCP options: the timestamp option (RFC 7323), padded to 12 bytes."""
    return struct.pack("!BBBBII", 1, 1, 8, 10, tsval & 0xFFFFFFFF,
                       tsecr & 0xFFFFFFFF)


def tcp_segment(src, dst, sport, dport, seq, ack, flags, payload=b"",
                window=65535, options=b""):
    """A TCP header (+ options, payload) for a raw socket, checksum filled;
    src and dst are IPv4 or IPv6 addresses (the pseudo-header follows
    them). `options` must be a multiple of 4 bytes."""
    hdr = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF,
                      ack & 0xFFFFFFFF, (5 + len(options) // 4) << 4, flags,
                      window, 0, 0) + options
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
                 payload=b"", options=b"", family=4):
    """Send one crafted segment from `side` to `dst_side` over IPv4 or
    IPv6 (`family` 4 or 6)."""
    fam = socket.AF_INET if family == 4 else socket.AF_INET6
    src, dst = pair.addr(side, fam), pair.addr(dst_side, fam)
    _send_raw(pair, side, socket.IPPROTO_TCP, dst, tcp_segment(
        src, dst, sport, dport, seq, ack, flags, payload, options=options),
        fam)


def _send_raw(pair, side, proto, dst, data, fam=socket.AF_INET):
    raw = pair.socket(side, fam, socket.SOCK_RAW, proto)
    try:
        raw.sendto(data, (dst, 0))
    finally:
        raw.close()


ICMP_DEST_UNREACH, ICMP_HOST_UNREACH = 3, 1


def send_host_unreachable(pair, side, dst_side, sport, dport, seq):
    """An ICMP host unreachable from `side` to `dst_side` about a TCP
    segment that `dst_side` sent to `side` (ports sport -> dport, sequence
    number seq): it quotes that segment's IP header and first 8 bytes."""
    src, dst = pair.ipv4[side], pair.ipv4[dst_side]
    quoted = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, 0, 0, 64,
                         socket.IPPROTO_TCP, 0, socket.inet_aton(dst),
                         socket.inet_aton(src)) + \
        struct.pack("!HHI", sport, dport, seq & 0xFFFFFFFF)
    icmp = struct.pack("!BBHI", ICMP_DEST_UNREACH, ICMP_HOST_UNREACH, 0,
                       0) + quoted
    icmp = icmp[:2] + struct.pack("!H", _checksum(icmp)) + icmp[4:]
    _send_raw(pair, side, socket.IPPROTO_ICMP, dst, icmp)


ETH_P_ALL, ETH_P_IP = 0x0003, 0x0800


def outgoing_syn(pair, side, dport, start, timeout=2.0):
    """(seq, tsval) of the SYN that start() makes `side` send to port
    `dport`, read off its veth by a packet socket (TCP_REPAIR cannot read
    the sequence numbers of a socket in SYN_SENT); tsval None without the
    timestamp option."""
    # ETH_P_ALL: only taps for every protocol see outgoing packets
    with pair.entered(side):
        sniff = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM,
                              socket.htons(ETH_P_ALL))
    try:
        sniff.bind((pair.veth[side], ETH_P_ALL))
        sniff.settimeout(timeout)
        start()
        while True:
            ip, addr = sniff.recvfrom(256)
            if addr[1] != ETH_P_IP:
                continue
            th = ip[(ip[0] & 0x0F) * 4:]
            if ip[9] == socket.IPPROTO_TCP and th[13] == SYN and \
                    struct.unpack("!H", th[2:4])[0] == dport:
                return struct.unpack("!I", th[4:8])[0], _tsval(th)
    finally:
        sniff.close()


def _tsval(th):
    """The TSval of a TCP header's timestamp option, or None."""
    opts, i = th[20:(th[12] >> 4) * 4], 0
    while i < len(opts) and opts[i] != 0:
        if opts[i] == 1:
            i += 1
            continue
        if opts[i] == 8 and i + 10 <= len(opts):
            return struct.unpack("!I", opts[i + 2:i + 6])[0]
        i += max(opts[i + 1] if i + 1 < len(opts) else 0, 2)
    return None


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
