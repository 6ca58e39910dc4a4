"""Offsets of the struct fields the BPF program reads, from the kernel's BTF.

Each field lists the paths it has had across kernels; the first one BTF
knows wins. The result is a set of `-DOFF_...=N` macros for the BPF C, so
the program reads this kernel's layout whatever header tree bcc uses.
"""

from rsttrace.errors import RsttraceError
from rsttrace.kernel import btf as btfmod

# macro name -> (struct, [member paths, newest first], expected size or None)
FIELDS = {
    # struct sock_common (include/net/sock.h): the head of full, request
    # and timewait sockets.
    "OFF_SKC_DADDR": ("sock_common", ["skc_daddr"], 4),
    "OFF_SKC_RCV_SADDR": ("sock_common", ["skc_rcv_saddr"], 4),
    "OFF_SKC_DPORT": ("sock_common", ["skc_dport"], 2),
    "OFF_SKC_NUM": ("sock_common", ["skc_num"], 2),
    "OFF_SKC_FAMILY": ("sock_common", ["skc_family"], 2),
    "OFF_SKC_STATE": ("sock_common", ["skc_state"], 1),
    "OFF_SKC_NET": ("sock_common", ["skc_net.net"], 8),
    "OFF_SKC_V6_DADDR": ("sock_common", ["skc_v6_daddr"], 16),
    "OFF_SKC_V6_RCV_SADDR": ("sock_common", ["skc_v6_rcv_saddr"], 16),
    # the established-hash link: NULL once unhashed (a TIME_WAIT socket
    # killed by inet_twsk_kill())
    "OFF_SKC_NODE_PPREV": ("sock_common", ["skc_node.pprev"], 8),
    # struct sock. Newer kernels (6.18 here) keep sk_flags in sock_common
    # as skc_flags, with `#define sk_flags __sk_common.skc_flags`.
    "OFF_SK_FLAGS": ("sock", ["sk_flags", "__sk_common.skc_flags"], 8),
    "OFF_SK_LINGERTIME": ("sock", ["sk_lingertime"], 8),
    "OFF_SK_ACK_BACKLOG": ("sock", ["sk_ack_backlog"], 4),
    "OFF_SK_MAX_ACK_BACKLOG": ("sock", ["sk_max_ack_backlog"], 4),
    # struct inet_sock: inet_sport survives close, while skc_num is zeroed
    # by __inet_put_port() when tcp_set_state(TCP_CLOSE) releases the port,
    # which happens before tcp_send_active_reset() on close.
    "OFF_INET_SPORT": ("inet_sock", ["inet_sport"], 2),
    # struct tcp_sock (include/linux/tcp.h)
    "OFF_TP_RCV_NXT": ("tcp_sock", ["rcv_nxt"], 4),
    "OFF_TP_COPIED_SEQ": ("tcp_sock", ["copied_seq"], 4),
    "OFF_TP_WRITE_SEQ": ("tcp_sock", ["write_seq"], 4),
    "OFF_TP_SND_NXT": ("tcp_sock", ["snd_nxt"], 4),
    "OFF_TP_SND_UNA": ("tcp_sock", ["snd_una"], 4),
    # TCP_LINGER2: jiffies, -1 when set negative (abort in FIN_WAIT2)
    "OFF_TP_LINGER2": ("tcp_sock", ["linger2"], 4),
    # struct net -> ns_common.inum: the namespace's inode number
    "OFF_NET_INUM": ("net", ["ns.inum"], 4),
    # struct sk_buff (include/linux/skbuff.h)
    "OFF_SKB_HEAD": ("sk_buff", ["head"], 8),
    "OFF_SKB_DATA": ("sk_buff", ["data"], 8),
    "OFF_SKB_LEN": ("sk_buff", ["len"], 4),
    "OFF_SKB_TRANSPORT_HEADER": ("sk_buff", ["transport_header"], 2),
    "OFF_SKB_NETWORK_HEADER": ("sk_buff", ["network_header"], 2),
    "OFF_SKB_DEV": ("sk_buff", ["dev"], 8),
    "OFF_SKB_SK": ("sk_buff", ["sk"], 8),
    "OFF_SKB_IIF": ("sk_buff", ["skb_iif"], 4),
    # struct net_device: nd_net is a possible_net_t { struct net *net; }
    "OFF_DEV_NET": ("net_device", ["nd_net.net"], 8),
    # The socket's owner (rsttrace/context/owner.py): sk->sk_socket is the
    # struct socket of its file (NULL once orphaned), embedded in a struct
    # socket_alloc with its inode (include/net/sock.h; `socket` is its first
    # member, so the two share an address); the inode number is what
    # /proc/PID/fd/N names as socket:[N].
    "OFF_SK_SOCKET": ("sock", ["sk_socket"], 8),
    "OFF_SA_INO": ("socket_alloc", ["vfs_inode.i_ino"], 8),
    # a request sock (NEW_SYN_RECV) belongs to its listener:
    # `#define rsk_listener __req_common.skc_listener` (request_sock.h)
    "OFF_RSK_LISTENER": ("request_sock", ["__req_common.skc_listener"], 8),
}

# What the header fallback (OFFSETS_FROM_HEADERS) uses instead: C
# expressions evaluated by the compiler against the installed headers.
HEADER_EXPRESSIONS = {
    "OFF_SKC_DADDR": "offsetof(struct sock_common, skc_daddr)",
    "OFF_SKC_RCV_SADDR": "offsetof(struct sock_common, skc_rcv_saddr)",
    "OFF_SKC_DPORT": "offsetof(struct sock_common, skc_dport)",
    "OFF_SKC_NUM": "offsetof(struct sock_common, skc_num)",
    "OFF_SKC_FAMILY": "offsetof(struct sock_common, skc_family)",
    "OFF_SKC_STATE": "offsetof(struct sock_common, skc_state)",
    "OFF_SKC_NET": "offsetof(struct sock_common, skc_net)",
    "OFF_SKC_V6_DADDR": "offsetof(struct sock_common, skc_v6_daddr)",
    "OFF_SKC_V6_RCV_SADDR": "offsetof(struct sock_common, skc_v6_rcv_saddr)",
    "OFF_SKC_NODE_PPREV": "offsetof(struct sock_common, skc_node.pprev)",
    "OFF_SK_FLAGS": "offsetof(struct sock, sk_flags)",
    "OFF_SK_LINGERTIME": "offsetof(struct sock, sk_lingertime)",
    "OFF_SK_ACK_BACKLOG": "offsetof(struct sock, sk_ack_backlog)",
    "OFF_SK_MAX_ACK_BACKLOG": "offsetof(struct sock, sk_max_ack_backlog)",
    "OFF_INET_SPORT": "offsetof(struct inet_sock, inet_sport)",
    "OFF_TP_RCV_NXT": "offsetof(struct tcp_sock, rcv_nxt)",
    "OFF_TP_COPIED_SEQ": "offsetof(struct tcp_sock, copied_seq)",
    "OFF_TP_WRITE_SEQ": "offsetof(struct tcp_sock, write_seq)",
    "OFF_TP_SND_NXT": "offsetof(struct tcp_sock, snd_nxt)",
    "OFF_TP_SND_UNA": "offsetof(struct tcp_sock, snd_una)",
    "OFF_TP_LINGER2": "offsetof(struct tcp_sock, linger2)",
    "OFF_NET_INUM": "offsetof(struct net, ns.inum)",
    "OFF_SKB_HEAD": "offsetof(struct sk_buff, head)",
    "OFF_SKB_DATA": "offsetof(struct sk_buff, data)",
    "OFF_SKB_LEN": "offsetof(struct sk_buff, len)",
    "OFF_SKB_TRANSPORT_HEADER": "offsetof(struct sk_buff, transport_header)",
    "OFF_SKB_NETWORK_HEADER": "offsetof(struct sk_buff, network_header)",
    "OFF_SKB_DEV": "offsetof(struct sk_buff, dev)",
    "OFF_SKB_SK": "offsetof(struct sk_buff, sk)",
    "OFF_SKB_IIF": "offsetof(struct sk_buff, skb_iif)",
    "OFF_DEV_NET": "offsetof(struct net_device, nd_net)",
    "OFF_SK_SOCKET": "offsetof(struct sock, sk_socket)",
    "OFF_SA_INO": "offsetof(struct socket_alloc, vfs_inode.i_ino)",
    "OFF_RSK_LISTENER": "offsetof(struct request_sock, __req_common.skc_listener)",
}


class Offset:
    """Where one field was found: struct, the path that matched, byte
    offset and size."""

    def __init__(self, macro, struct, path, offset, size):
        self.macro = macro
        self.struct = struct
        self.path = path
        self.offset = offset
        self.size = size

    def __repr__(self):
        return "%s=%d (%s.%s)" % (self.macro, self.offset, self.struct,
                                  self.path)


def from_btf(kbtf):
    """{macro: Offset} for every field in FIELDS. Raises RsttraceError
    naming the first field this kernel's BTF does not have."""
    out = {}
    for macro, (struct, paths, size) in FIELDS.items():
        for path in paths:
            try:
                bit_off, bits, tid = kbtf.member(struct, path)
            except btfmod.BTFError:
                continue
            if bits or bit_off % 8:
                raise RsttraceError(
                    "%s.%s is a bitfield in this kernel" % (struct, path),
                    "rsttrace cannot read it; please report the kernel "
                    "version")
            actual = kbtf.size(tid)
            if size is not None and actual != size:
                raise RsttraceError(
                    "%s.%s is %d bytes in this kernel, rsttrace expects %d"
                    % (struct, path, actual, size),
                    "please report the kernel version")
            out[macro] = Offset(macro, struct, path, bit_off // 8, actual)
            break
        else:
            raise RsttraceError(
                "this kernel's BTF has no %s.%s" % (struct, " or ".join(paths)),
                "please report the kernel version")
    return out


def sock_linger_bit(kbtf):
    """Bit number of SOCK_LINGER in sk_flags (enum sock_flags)."""
    try:
        flags = kbtf.enum("sock_flags")
    except btfmod.BTFError:
        return 4
    for value, name in flags.items():
        if name == "SOCK_LINGER":
            return value
    return 4


def cflags(kbtf):
    """-D flags for the BPF C: offsets from BTF when the kernel has BTF,
    otherwise the header expressions (valid only with matching headers)."""
    if kbtf is None:
        flags = ["-DOFFSETS_FROM_HEADERS"]
        flags += ["-D%s=%s" % (m, e) for m, e in HEADER_EXPRESSIONS.items()]
        flags.append("-DSOCK_LINGER_BIT=SOCK_LINGER")
        return flags
    flags = ["-D%s=%d" % (m, o.offset) for m, o in from_btf(kbtf).items()]
    flags.append("-DSOCK_LINGER_BIT=%d" % sock_linger_bit(kbtf))
    return flags
