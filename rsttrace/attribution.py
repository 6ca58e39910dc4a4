"""Why was this RST sent or received? One cause per event.

The kernel's own reason is one input among several, and often wrong or
empty: accept-queue overflow is INVALID_SYN, an SO_LINGER {1,0} close is
TCP_STATE, netfilter fires no tcp tracepoint, and before 6.10 there are no
reasons at all. So the decision rests on what is there on every kernel: the
hook, the kernel path (stack frames), the socket state and what was read
from the socket and the packet at that moment.

    cause, explanation = attribute(record)
"""

from .event import SOFTIRQ_FRAMES, base_name

# id -> (what happened, what to do about it). docs/causes.md is made from
# this table; keep the sentences short.
CAUSES = {
    "no-listener": (
        "a SYN arrived for a port nothing listens on",
        "check that the service is running and listening on that address "
        "and port (ss -ltn), and that clients use the right port"),
    "no-connection": (
        "a segment arrived for a connection this host does not know: the "
        "peer still believes in a connection this side forgot (crash, "
        "restart, expired state, a SYN-ACK to a client that already closed, "
        "an ACK hitting a listener)",
        "look for a restart or crash of the side sending the RST, for NAT or "
        "conntrack state expiring on idle connections, or for a client that "
        "gave up on connect"),
    "linger-zero-close": (
        "the application closed with SO_LINGER {on, 0}, which aborts the "
        "connection with an RST instead of a FIN",
        "expected if deliberate (e.g. nginx reset_timedout_connection); "
        "otherwise drop the zero linger to close gracefully"),
    "unread-data-close": (
        "the application closed the socket while received data was still "
        "unread in its receive queue; the kernel discards it and sends an "
        "RST (RFC 2525)",
        "read the whole request (or shut down the write side and drain) "
        "before close(); check for early error paths in the application"),
    "data-after-close": (
        "data arrived after the application had closed the socket "
        "(FIN_WAIT, orphaned or TIME_WAIT socket), so it cannot be delivered",
        "the peer keeps writing after this side closed: make the protocol "
        "agree on who closes first, or shut down writes and drain before "
        "close"),
    "accept-queue-overflow": (
        "the listener's accept queue was full and net.ipv4."
        "tcp_abort_on_overflow=1 made the kernel reset the new connection",
        "accept faster, raise the listen() backlog and net.core.somaxconn, "
        "or set tcp_abort_on_overflow=0 to let clients retry"),
    "listener-closed": (
        "a listening socket was closed while connections were still in its "
        "accept queue; each one is reset",
        "accept (or drain) pending connections before closing the listener, "
        "e.g. on graceful restart"),
    "keepalive-timeout": (
        "TCP keepalive probes went unanswered, so the kernel gave up on the "
        "connection",
        "the peer or the path to it is gone (crash, NAT/firewall idle "
        "timeout); check the path or tune tcp_keepalive_* / TCP_KEEPIDLE"),
    "fin-wait2-timeout": (
        "an orphaned socket waited in FIN_WAIT2 longer than its limit "
        "(tcp_fin_timeout / TCP_LINGER2) or TCP_LINGER2 < 0 asked for an "
        "abort, so the kernel reset it",
        "the peer never closed its side; check the peer, or raise "
        "TCP_LINGER2 / net.ipv4.tcp_fin_timeout"),
    "socket-killed": (
        "the socket was destroyed from outside (ss -K, SOCK_DESTROY)",
        "find who killed it: an administrator or an agent using sock_diag"),
    "memory-pressure": (
        "an orphaned socket was aborted because of TCP memory pressure or "
        "too many orphans",
        "raise net.ipv4.tcp_mem / tcp_max_orphans or find what holds so "
        "many orphaned sockets"),
    "firewall-reject": (
        "a netfilter rule rejected the packet with --reject-with tcp-reset "
        "(iptables, ip6tables or nft)",
        "check the firewall rules of that namespace (nft list ruleset, "
        "iptables -S)"),
    "invalid-ack": (
        "the RST answers a segment with an unacceptable ACK, e.g. a new "
        "SYN_SENT socket meeting an old connection's ACK",
        "usually a stale connection on the peer reusing the same ports; it "
        "clears itself"),
    "app-disconnect": (
        "the application disconnected the socket (connect(AF_UNSPEC)) "
        "while the connection was open",
        "expected if deliberate; otherwise find the disconnect in the "
        "application"),
    "challenge-ack": (
        "not an RST: an RFC 5961 challenge ACK answering an in-window RST "
        "or SYN whose sequence number was not exactly the expected one",
        "normal protection against blind reset attacks; many mean "
        "someone is injecting RSTs or a middlebox is confused"),
    "reset-received": (
        "an RST from the peer closed a local connection",
        "look at the peer's side: its rsttrace (or the cause reported for "
        "the matching sent RST) says why"),
    "unknown": (
        "rsttrace does not recognise this kernel path",
        "the stack shows where the RST came from; please report it"),
}

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


def explain(cause, detail=None):
    what, fix = CAUSES[cause]
    text = detail or what
    return "%s%s; %s." % (text[0].upper(), text[1:], fix)


def attribute(rec):
    """(cause, explanation) for one event record (see event.FIELDS)."""
    cause, detail = _decide(rec)
    return cause, explain(cause, detail)


def own_frames(stack):
    """The frames of the RST's own path: the stack up to where softirq
    processing began. What lies beyond belongs to whatever the CPU was
    doing when softirqs ran (another socket's close, a send), not to this
    RST."""
    out = []
    for f in stack or ():
        name = base_name(f)
        if name in SOFTIRQ_FRAMES:
            break
        out.append(name)
    return out


def _decide(rec):
    frames = own_frames(rec.get("stack"))
    fset = set(frames)
    kind = rec["kind"]
    state = rec.get("state")
    reason = rec.get("reason")
    flags = set((rec.get("seg_flags") or "").split("|")) - {""}

    if kind == "challenge_ack":
        return "challenge-ack", None

    if kind == "received":
        # tcp_reset() is also how the kernel kills its own socket when data
        # arrives after close (tcp_rcv_state_process, FIN_WAIT1/2 with
        # RCV_SHUTDOWN): no RST was received then.
        if flags and "RST" not in flags:
            return "data-after-close", (
                "not an RST from the peer: data arrived after the "
                "application closed, so the kernel aborted the socket "
                "itself and answers with an RST")
        if (not flags and state in ("FIN_WAIT1", "FIN_WAIT2") and frames
                and frames[:2] == ["tcp_reset", "tcp_rcv_state_process"]):
            return "data-after-close", (
                "probably not an RST from the peer: the kernel aborted a "
                "closed socket that received data (the hook has no packet "
                "to tell for sure)")
        return "reset-received", RECEIVED_TEXT.get(state)

    # -- sent ---------------------------------------------------------------
    hook = rec.get("hook") or ""
    if fset & NETFILTER_FRAMES or hook.startswith("nf_"):
        return "firewall-reject", None
    if hook == "net:net_dev_queue":
        # The packet hook reports only RSTs the TCP stack did not send.
        if "nf_hook_slow" in fset:
            return "firewall-reject", (
                "a netfilter hook sent this RST (a REJECT rule; its module "
                "frames are not named in the stack)")
        if fset & {"tcp_v4_send_reset", "tcp_v6_send_reset"}:
            # The TCP stack's reply RST, seen only as a packet: before 6.10
            # tcp:tcp_send_reset does not fire without a full socket. The
            # RST itself tells what it answered (RFC 793, "Reset
            # Generation"): seq 0 with ACK set answers a segment without
            # ACK, i.e. a SYN; otherwise it takes its seq from that
            # segment's ACK.
            if "ACK" in flags and not rec.get("seq"):
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

    # tcp_send_active_reset(): no packet caused it (the tracepoint then has
    # skb NULL, so no seg_flags).
    if "tcp_send_active_reset" in fset or hook == "tcp_send_active_reset" or (
            hook == "tcp:tcp_send_reset" and rec.get("seg_flags") is None):
        return _active(rec, fset, state, reason)

    # A reply to a packet (tcp_v4_send_reset / tcp_v6_send_reset).
    if state is None:
        if "SYN" in flags and "ACK" not in flags:
            return "no-listener", None
        if "SYN" in flags:
            return "no-connection", (
                "a SYN-ACK arrived for a connection attempt this host no "
                "longer has (the client closed right after connect)")
        if reason == "NO_SOCKET" or flags:
            return "no-connection", None
        return "unknown", None
    if state == "LISTEN":
        if ("tcp_check_req" in fset and rec.get("backlog") is not None and
                rec["backlog"] > rec["backlog_max"]):
            return "accept-queue-overflow", None
        if "SYN" not in flags:
            return "no-connection", (
                "a segment without SYN reached a listener that has no "
                "connection for it (half-open peer, or a handshake this "
                "host forgot)")
        return "unknown", None
    if state == "TIME_WAIT" or reason == "TCP_TIMEWAIT_SOCKET":
        return "data-after-close", (
            "a segment arrived for a connection in TIME_WAIT that it cannot "
            "accept (late data after close, or a TIME_WAIT assassination)")
    if reason == "TCP_ABORT_ON_DATA" or (
            state in CLOSED_STATES and rec.get("seg_len")):
        return "data-after-close", None
    if reason in BAD_ACK_REASONS or state in ("SYN_SENT", "NEW_SYN_RECV",
                                              "SYN_RECV"):
        return "invalid-ack", None
    return "unknown", None


def _active(rec, fset, state, reason):
    """An RST the kernel sent on its own (tcp_send_active_reset)."""
    if "tcp_keepalive_timer" in fset or reason == "TCP_KEEPALIVE_TIMEOUT":
        if state == "FIN_WAIT2":
            return "fin-wait2-timeout", None
        return "keepalive-timeout", None
    if reason == "TCP_ABORT_ON_MEMORY" or "tcp_check_oom" in fset:
        return "memory-pressure", None
    if fset & WRITE_TIMER_FRAMES:
        return "memory-pressure", (
            "an orphaned socket's retransmit or probe timer found too many "
            "orphaned sockets or TCP memory short (tcp_out_of_resources) and "
            "aborted it")
    if fset & {"tcp_abort", "sock_diag_destroy", "inet_diag_destroy",
               "tcp_diag_destroy", "bpf_sock_destroy"}:
        return "socket-killed", None
    if "inet_csk_listen_stop" in fset or "inet_child_forget" in fset:
        return "listener-closed", None
    linger = rec.get("linger")
    if "tcp_disconnect" in fset:
        if linger == 0 and fset & {"__tcp_close", "tcp_close"}:
            return "linger-zero-close", None
        if fset & {"inet_dgram_connect", "__inet_stream_connect",
                   "inet_stream_connect", "tcp_disconnect"} and \
                not fset & {"__tcp_close", "tcp_close"}:
            return "app-disconnect", None
    if fset & {"__tcp_close", "tcp_close"} or reason in (
            "TCP_ABORT_ON_CLOSE", "TCP_ABORT_ON_LINGER"):
        if (rec.get("rcv_unread") or 0) > 0 or reason == "TCP_ABORT_ON_CLOSE":
            return "unread-data-close", None
        if linger == 0:
            return "linger-zero-close", None
        # __tcp_close() has set TCP_CLOSE before both of its remaining
        # resets: TCP_LINGER2 < 0 in FIN_WAIT2, and tcp_check_oom().
        # Before 6.10 (no reason) tcp_sock.linger2 tells them apart.
        linger2 = rec.get("linger2")
        closing = state in ("FIN_WAIT2", "CLOSE")
        if reason == "TCP_ABORT_ON_LINGER" or (closing and (
                linger2 is None or linger2 < 0)):
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


# How each cause is recognised, for the documentation.
RECOGNISED_BY = {
    "no-listener": "reply RST (tcp_v4/v6_send_reset) with no socket to a "
                   "segment with SYN and no ACK",
    "no-connection": "reply RST with no socket (or a listener) to a segment "
                     "without SYN, or to a SYN-ACK",
    "linger-zero-close": "tcp_send_active_reset from tcp_disconnect under "
                         "tcp_close, SO_LINGER on with time 0",
    "unread-data-close": "tcp_send_active_reset from __tcp_close with unread "
                         "bytes in the receive queue",
    "data-after-close": "reply RST from a TIME_WAIT (FIN_WAIT2 substate) or "
                        "closed socket to a segment with data; tcp_reset on "
                        "a segment without RST",
    "accept-queue-overflow": "reply RST from tcp_check_req on a listener "
                             "whose backlog exceeds its limit (the kernel "
                             "says INVALID_SYN)",
    "listener-closed": "tcp_send_active_reset under inet_csk_listen_stop / "
                       "inet_child_forget",
    "keepalive-timeout": "tcp_send_active_reset from tcp_keepalive_timer",
    "fin-wait2-timeout": "tcp_send_active_reset from tcp_keepalive_timer in "
                         "FIN_WAIT2, or from __tcp_close with TCP_LINGER2 < 0 "
                         "(`linger2` -1, or reason TCP_ABORT_ON_LINGER)",
    "socket-killed": "tcp_send_active_reset under tcp_abort (sock_diag "
                     "destroy)",
    "memory-pressure": "tcp_send_active_reset from the retransmit or probe "
                       "timer (tcp_out_of_resources), or from __tcp_close in "
                       "state CLOSE with no unread data, no zero linger and "
                       "TCP_LINGER2 >= 0 (tcp_check_oom); reason "
                       "TCP_ABORT_ON_MEMORY",
    "firewall-reject": "nf_send_reset(6) (kprobe/fentry) or an RST with no "
                       "socket leaving a device (--packets) under netfilter",
    "invalid-ack": "reply RST from a SYN_SENT/SYN_RECV socket to an "
                   "unacceptable ACK",
    "app-disconnect": "tcp_send_active_reset from tcp_disconnect outside "
                      "close()",
    "challenge-ack": "tcp_send_challenge_ack (kprobe/fentry only)",
    "reset-received": "tcp_reset (or tcp:tcp_receive_reset) on an RST",
    "unknown": "anything else; the event keeps its stack",
}


def causes_markdown(scenarios=()):
    """docs/causes.md: the cause table for users."""
    by_cause = {}
    for sc in scenarios:
        for e in sc.expects:
            by_cause.setdefault(e.cause, []).append(sc.name)
    lines = [
        "# What rsttrace's causes mean",
        "",
        "Every event rsttrace reports carries a `cause` and an "
        "`explanation`. The cause is decided from the hook, the kernel "
        "path (stack), the socket state and what was read from the socket "
        "and packet; the kernel's own `reason` (6.10+) is only one input, "
        "since it is often wrong (accept-queue overflow is `INVALID_SYN`, "
        "an SO_LINGER 0 close is `TCP_STATE`) or missing.",
        "",
        "This file is generated by `rsttrace causes --markdown`.",
        "",
        "| cause | what happened | what to do | recognised by | scenarios |",
        "|---|---|---|---|---|",
    ]
    for cause, (what, fix) in CAUSES.items():
        lines.append("| `%s` | %s | %s | %s | %s |" % (
            cause, what, fix, RECOGNISED_BY.get(cause, ""),
            ", ".join("`%s`" % n for n in by_cause.get(cause, [])) or "-"))
    lines += [
        "",
        "The `memory-pressure` scenario sets the host-wide "
        "`net.ipv4.tcp_max_orphans` to 0 for one close(), which would "
        "reset any other connection closed meanwhile: it runs only where "
        "that is allowed (`rsttrace scenarios run --host-wide`, or "
        "`RSTTRACE_HOST_WIDE=1` as the VM suite sets it) and otherwise says "
        "it cannot show here.",
        "",
    ]
    return "\n".join(lines)
