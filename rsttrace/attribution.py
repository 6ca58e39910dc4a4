"""Why was this RST sent or received? One cause per event.

The kernel's own reason is one input among several, and often wrong or
empty: accept-queue overflow is INVALID_SYN, an SO_LINGER {1,0} close is
TCP_STATE, netfilter fires no tcp tracepoint, and before 6.10 there are no
reasons at all. So the decision rests on what is there on every kernel: the
hook, the kernel path (stack frames), the socket state and what was read
from the socket and the packet at that moment, all in one Facts value
(rsttrace.facts), the only input of classify().

    cause, explanation = attribute(facts)
    cause, explanation = attribute_record(record)      # a saved record

Adding a cause: its entry in rsttrace.causes, its rule here.
"""

import functools

from rsttrace.causes import explain
from rsttrace.facts import Facts

# States in which a socket has been closed by the application.
CLOSED_STATES = {"FIN_WAIT1", "FIN_WAIT2", "CLOSING", "LAST_ACK", "CLOSE",
                 "TIME_WAIT"}
BAD_ACK_REASONS = {"TCP_INVALID_ACK_SEQUENCE", "TCP_TOO_OLD_ACK",
                   "TCP_ACK_UNSENT_DATA", "TCP_OLD_ACK"}
RECEIVED_TEXT = {
    "SYN_SENT": "connection refused: the peer answered our SYN with an RST",
    "SYN_RECV": "the peer reset the connection during the handshake",
    "ESTABLISHED": "connection reset by peer",
    "CLOSE_WAIT": "connection reset by peer after it had sent its FIN",
}
# The retransmit and zero-window probe timers (net/ipv4/tcp_timer.c). Their
# only active reset is tcp_out_of_resources()'s, for an orphan that
# tcp_check_oom() finds over tcp_max_orphans or tcp_mem (every version;
# tcp_out_of_resources is static and often inlined, so look for callers).
WRITE_TIMER_FRAMES = {"tcp_out_of_resources", "tcp_write_timeout",
                      "tcp_retransmit_timer", "tcp_probe_timer",
                      "tcp_write_timer_handler", "tcp_write_timer"}
NETFILTER_FRAMES = {"nf_send_reset", "nf_send_reset6", "reject_tg",
                    "reject_tg6", "nft_reject_ipv4_eval",
                    "nft_reject_ipv6_eval", "nft_reject_inet_eval",
                    "nft_reject_netdev_eval", "nf_reject_skb_v4_tcp_reset"}
KILL_FRAMES = {"tcp_abort", "sock_diag_destroy", "inet_diag_destroy",
               "tcp_diag_destroy", "bpf_sock_destroy"}
CLOSE_FRAMES = {"__tcp_close", "tcp_close"}
CONNECT_FRAMES = {"inet_dgram_connect", "__inet_stream_connect",
                  "inet_stream_connect", "tcp_disconnect"}


@functools.lru_cache(maxsize=65536)
def attribute(facts):
    """(cause, explanation) of one event's Facts. Cached for records read
    back from a capture (`rsttrace report` on one without causes: 23% less
    per record, bench/RESULTS.md); the decoder asks once per shape."""
    cause, detail = classify(facts)
    return cause, explain(cause, detail)


def attribute_record(rec):
    """(cause, explanation) of an event record (a saved capture's)."""
    return attribute(Facts.of_record(rec))


def classify(f):
    """(cause, detail or None) of one event's Facts."""
    if f.kind == "challenge_ack":
        return "challenge-ack", None
    if f.kind == "abort":
        return "data-after-close", (
            "not an RST: data arrived after the application shut down "
            "reading (close or shutdown), so the kernel aborted the socket "
            "itself (tcp_reset from tcp_rcv_state_process; the application "
            "sees ECONNRESET though no RST arrived) and answers the data "
            "with an RST")
    if f.kind == "received":
        return _received(f)
    fset = set(f.frames)
    if fset & NETFILTER_FRAMES or f.hook.startswith("nf_"):
        return "firewall-reject", None
    if f.hook == "net:net_dev_queue":
        return _packet_hook(f, fset)
    # tcp_send_active_reset(): no packet caused it (the tracepoint then has
    # skb NULL, so no packet flags).
    if "tcp_send_active_reset" in fset or \
            f.hook == "tcp_send_active_reset" or (
                f.hook == "tcp:tcp_send_reset" and f.seg_flags is None):
        return _active(f, fset)
    return _reply(f, fset)


def _received(f):
    # (the kernel's own aborts through tcp_reset() are kind "abort":
    # facts.own_abort)
    if f.state == "TIME_WAIT":
        # only inet_twsk_deschedule_put / skb:kfree_skb report a TIME_WAIT
        # socket, and only when the RST killed it
        return "time-wait-assassination", None
    return "reset-received", RECEIVED_TEXT.get(f.state)


def _packet_hook(f, fset):
    """The packet hook reports only RSTs the TCP stack did not send."""
    if "nf_hook_slow" in fset:
        return "firewall-reject", (
            "a netfilter hook sent this RST (a REJECT rule; its module "
            "frames are not named in the stack)")
    if fset & {"tcp_v4_send_reset", "tcp_v6_send_reset"}:
        # The TCP stack's reply RST, seen only as a packet: before 6.10
        # tcp:tcp_send_reset does not fire without a full socket. The RST
        # itself tells what it answered (RFC 793, "Reset Generation"):
        # seq 0 with ACK set answers a segment without ACK, i.e. a SYN;
        # otherwise it takes its seq from that segment's ACK.
        if "ACK" in (f.seg_flags or ()) and f.seq_zero:
            return "no-listener", (
                "(seen as a packet: this kernel's tcp tracepoint misses "
                "RSTs sent without a socket) the RST answers a segment "
                "without ACK, a SYN, that found no socket")
        return "no-connection", (
            "(seen as a packet: this kernel's tcp tracepoint misses RSTs "
            "sent without a socket) the RST answers a segment with ACK "
            "that found no connection")
    return "unknown", (
        "an RST made outside the TCP stack (not netfilter): a raw "
        "socket, a packet generator or another kernel module")


def _reply(f, fset):
    """A reply to a packet (tcp_v4_send_reset / tcp_v6_send_reset)."""
    flags = f.seg_flags or frozenset()
    state, reason = f.state, f.reason
    if state is None:
        if "SYN" in flags and "ACK" not in flags:
            return "no-listener", None
        if "SYN" in flags:
            return "no-connection", (
                "a SYN-ACK arrived for a connection attempt this host no "
                "longer has (the client closed right after connect)")
        if reason == "NO_SOCKET" or f.seg_flags is not None:
            return "no-connection", None
        return "unknown", None
    if state == "LISTEN":
        if "tcp_check_req" in fset and f.queue_full:
            return "accept-queue-overflow", None
        if "SYN" not in flags:
            return "no-connection", (
                "a segment without SYN reached a listener that has no "
                "connection for it (half-open peer, a handshake this host "
                "forgot, or one it dropped after an ICMP error)")
        return "unknown", None
    if state == "TIME_WAIT" or reason == "TCP_TIMEWAIT_SOCKET":
        return "data-after-close", (
            "a segment arrived for a connection in TIME_WAIT that it cannot "
            "accept (late data after close, or a TIME_WAIT assassination)")
    if state == "CLOSE" and f.linger2_neg:
        # tcp_rcv_state_process() calls tcp_done() on an orphan in
        # FIN_WAIT1 with TCP_LINGER2 < 0 as soon as its FIN is ACKed, and
        # answers that ACK with an RST whose reason says TCP_ABORT_ON_DATA
        # (every version; no receive hook fires, as tcp_done() is not
        # tcp_reset())
        return "fin-wait2-timeout", (
            "TCP_LINGER2 < 0 asked the kernel to abort instead of waiting "
            "in FIN_WAIT2: it did so when the peer acknowledged the FIN")
    if reason == "TCP_ABORT_ON_DATA" or (state in CLOSED_STATES
                                         and f.seg_data):
        return "data-after-close", None
    if reason == "TCP_RFC7323_PAWS" or (state == "SYN_SENT" and
                                        reason is None and f.ack_nxt):
        # tcp_rcv_synsent_state_process(): a SYN-ACK whose ACK is exactly
        # snd_nxt is acceptable, so its timestamp failed (PAWSActive)
        return "paws-reject", None
    if reason in BAD_ACK_REASONS or state in ("SYN_SENT", "NEW_SYN_RECV",
                                              "SYN_RECV"):
        return "invalid-ack", None
    return "unknown", None


def _active(f, fset):
    """An RST the kernel sent on its own (tcp_send_active_reset)."""
    reason = f.reason
    if "tcp_keepalive_timer" in fset or reason == "TCP_KEEPALIVE_TIMEOUT":
        if f.state == "FIN_WAIT2":
            return "fin-wait2-timeout", None
        return "keepalive-timeout", None
    if reason == "TCP_ABORT_ON_MEMORY" or "tcp_check_oom" in fset:
        return "memory-pressure", None
    if fset & WRITE_TIMER_FRAMES:
        return "memory-pressure", (
            "an orphaned socket's retransmit or probe timer found too many "
            "orphaned sockets or TCP memory short (tcp_out_of_resources) and "
            "aborted it")
    if fset & KILL_FRAMES:
        return "socket-killed", None
    if "inet_csk_listen_stop" in fset or "inet_child_forget" in fset:
        return "listener-closed", None
    if "tcp_disconnect" in fset:
        if f.linger_zero and fset & CLOSE_FRAMES:
            return "linger-zero-close", None
        if fset & CONNECT_FRAMES and not fset & CLOSE_FRAMES:
            return "app-disconnect", None
    if fset & CLOSE_FRAMES or reason in ("TCP_ABORT_ON_CLOSE",
                                         "TCP_ABORT_ON_LINGER"):
        return _close(f)
    return "unknown", None


def _close(f):
    """An active reset from close() (__tcp_close)."""
    if f.unread or f.reason == "TCP_ABORT_ON_CLOSE":
        return "unread-data-close", None
    if f.linger_zero:
        return "linger-zero-close", None
    # __tcp_close() has set TCP_CLOSE before both of its remaining resets:
    # TCP_LINGER2 < 0 in FIN_WAIT2, and tcp_check_oom(). Before 6.10 (no
    # reason) tcp_sock.linger2 tells them apart.
    closing = f.state in ("FIN_WAIT2", "CLOSE")
    if f.reason == "TCP_ABORT_ON_LINGER" or (
            closing and f.linger2_neg is not False):
        return "fin-wait2-timeout", (
            "TCP_LINGER2 < 0 asked the kernel to abort instead of "
            "waiting in FIN_WAIT2")
    if closing:
        return "memory-pressure", (
            "when the application closed the socket, tcp_check_oom() "
            "found too many orphaned sockets (net.ipv4.tcp_max_orphans) "
            "or TCP memory above net.ipv4.tcp_mem, so the kernel aborted "
            "it instead of closing it gracefully")
    return "unknown", None
