"""Every cause rsttrace attributes an RST to: what it means, what to do
about it, and how it is recognised. docs/causes.md is generated from this
table (`rsttrace causes --markdown`); the rules themselves are in
rsttrace.attribution.
"""

import collections

Cause = collections.namedtuple("Cause", "what fix recognised_by")

CAUSES = {
    "no-listener": Cause(
        "a SYN arrived for a port nothing listens on",
        "check that the service is running and listening on that address and "
        "port (ss -ltn), and that clients use the right port",
        "reply RST (tcp_v4/v6_send_reset) with no socket to a segment with "
        "SYN and no ACK"),
    "no-connection": Cause(
        "a segment arrived for a connection this host does not know: the "
        "peer still believes in a connection this side forgot (crash, "
        "restart, expired state, a SYN-ACK to a client that already closed, "
        "an ACK hitting a listener)",
        "look for a restart or crash of the side sending the RST, for NAT or "
        "conntrack state expiring on idle connections, for a client that "
        "gave up on connect, or for an ICMP error (host or network "
        "unreachable, time exceeded) about this host's SYN-ACK, on which the "
        "kernel drops the half-open connection (TcpExt ListenDrops) so that "
        "the client's ACK meets the listener",
        "reply RST with no socket (or a listener) to a segment without SYN, "
        "or to a SYN-ACK"),
    "linger-zero-close": Cause(
        "the application closed with SO_LINGER {on, 0}, which aborts the "
        "connection with an RST instead of a FIN",
        "expected if deliberate (e.g. nginx reset_timedout_connection); "
        "otherwise drop the zero linger to close gracefully",
        "tcp_send_active_reset from tcp_disconnect under tcp_close, "
        "SO_LINGER on with time 0"),
    "unread-data-close": Cause(
        "the application closed the socket while received data was still "
        "unread in its receive queue; the kernel discards it and sends an "
        "RST (RFC 2525)",
        "read the whole request (or shut down the write side and drain) "
        "before close(); check for early error paths in the application",
        "tcp_send_active_reset from __tcp_close with unread bytes in the "
        "receive queue"),
    "data-after-close": Cause(
        "data arrived after the application had closed the socket (FIN_WAIT, "
        "orphaned or TIME_WAIT socket), so it cannot be delivered",
        "the peer keeps writing after this side closed: make the protocol "
        "agree on who closes first, or shut down writes and drain before "
        "close",
        "reply RST from a TIME_WAIT (FIN_WAIT2 substate) or closed socket to "
        "a segment with data (reason TCP_ABORT_ON_DATA); with kind `abort`, "
        "the kernel aborting its own socket: tcp_reset on a segment without "
        "RST, or (no packet) called by tcp_rcv_state_process itself in "
        "FIN_WAIT1/2, CLOSE_WAIT, CLOSING or LAST_ACK"),
    "accept-queue-overflow": Cause(
        "the listener's accept queue was full and "
        "net.ipv4.tcp_abort_on_overflow=1 made the kernel reset the new "
        "connection",
        "accept faster, raise the listen() backlog and net.core.somaxconn, "
        "or set tcp_abort_on_overflow=0 to let clients retry",
        "reply RST from tcp_check_req on a listener whose backlog exceeds "
        "its limit (the kernel says INVALID_SYN)"),
    "listener-closed": Cause(
        "a listening socket was closed while connections were still in its "
        "accept queue; each one is reset",
        "accept (or drain) pending connections before closing the listener, "
        "e.g. on graceful restart",
        "tcp_send_active_reset under inet_csk_listen_stop / "
        "inet_child_forget"),
    "keepalive-timeout": Cause(
        "TCP keepalive probes went unanswered, so the kernel gave up on the "
        "connection",
        "the peer or the path to it is gone (crash, NAT/firewall idle "
        "timeout); check the path or tune tcp_keepalive_* / TCP_KEEPIDLE",
        "tcp_send_active_reset from tcp_keepalive_timer"),
    "fin-wait2-timeout": Cause(
        "an orphaned socket waited in FIN_WAIT2 longer than its limit "
        "(tcp_fin_timeout / TCP_LINGER2) or TCP_LINGER2 < 0 asked for an "
        "abort, so the kernel reset it",
        "the peer never closed its side; check the peer, or raise "
        "TCP_LINGER2 / net.ipv4.tcp_fin_timeout",
        "tcp_send_active_reset from tcp_keepalive_timer in FIN_WAIT2, or "
        "from __tcp_close with TCP_LINGER2 < 0 (`linger2` -1, or reason "
        "TCP_ABORT_ON_LINGER); a reply RST from a socket in CLOSE with "
        "`linger2` -1 (an orphan aborted when its FIN was ACKed; the "
        "kernel's reason says TCP_ABORT_ON_DATA)"),
    "socket-killed": Cause(
        "the socket was destroyed from outside (ss -K, SOCK_DESTROY)",
        "find who killed it: an administrator or an agent using sock_diag",
        "tcp_send_active_reset under tcp_abort (sock_diag destroy)"),
    "memory-pressure": Cause(
        "an orphaned socket was aborted because of TCP memory pressure or "
        "too many orphans",
        "raise net.ipv4.tcp_mem / tcp_max_orphans or find what holds so many "
        "orphaned sockets",
        "tcp_send_active_reset from the retransmit or probe timer "
        "(tcp_out_of_resources), or from __tcp_close in state CLOSE with no "
        "unread data, no zero linger and TCP_LINGER2 >= 0 (tcp_check_oom); "
        "reason TCP_ABORT_ON_MEMORY"),
    "firewall-reject": Cause(
        "a netfilter rule rejected the packet with --reject-with tcp-reset "
        "(iptables, ip6tables or nft)",
        "check the firewall rules of that namespace (nft list ruleset, "
        "iptables -S)",
        "nf_send_reset(6) (kprobe/fentry) or an RST with no socket leaving a "
        "device (--packets) under netfilter"),
    "invalid-ack": Cause(
        "the RST answers a segment with an unacceptable ACK, e.g. a new "
        "SYN_SENT socket meeting an old connection's ACK",
        "usually a stale connection on the peer reusing the same ports; it "
        "clears itself",
        "reply RST from a SYN_SENT/SYN_RECV socket to an unacceptable ACK"),
    "paws-reject": Cause(
        "the RST answers a SYN-ACK whose TCP timestamp failed the PAWS check "
        "(RFC 7323): its ACK was right, but it echoed a timestamp this "
        "connection attempt never sent (TcpExt PAWSActive)",
        "look for a middlebox that rewrites or strips TCP timestamps, a "
        "SYN-ACK from an older attempt on the same ports, or forged "
        "SYN-ACKs; the client retries its SYN",
        "reply RST from SYN_SENT with reason TCP_RFC7323_PAWS (6.10+), "
        "before that to a SYN-ACK acknowledging exactly the socket's "
        "snd_nxt"),
    "app-disconnect": Cause(
        "the application disconnected the socket (connect(AF_UNSPEC)) while "
        "the connection was open",
        "expected if deliberate; otherwise find the disconnect in the "
        "application",
        "tcp_send_active_reset from tcp_disconnect outside close()"),
    "challenge-ack": Cause(
        "not an RST: an RFC 5961 challenge ACK answering an in-window RST or "
        "SYN whose sequence number was not exactly the expected one",
        "normal protection against blind reset attacks; many mean someone is "
        "injecting RSTs or a middlebox is confused",
        "tcp_send_challenge_ack (kprobe/fentry only)"),
    "time-wait-assassination": Cause(
        "an RST killed a socket in TIME_WAIT (RFC 1337 \"TIME-WAIT "
        "assassination\"): the kernel dropped it at once, so the port pair "
        "may be reused while old segments of the connection can still "
        "arrive",
        "usually harmless (the peer reset a connection both sides had "
        "closed); net.ipv4.tcp_rfc1337=1 makes TIME_WAIT ignore such RSTs "
        "(rsttrace then reports nothing), though not in the FIN_WAIT2 "
        "substate, an orphan still waiting for the peer's FIN",
        "inet_twsk_deschedule_put called by tcp_timewait_state_process "
        "(kprobe/fentry); in tracepoint mode with --packets (6.11+), an RST "
        "dropped (skb:kfree_skb) naming a TIME_WAIT socket it unhashed"),
    "reset-received": Cause(
        "an RST from the peer closed a local connection",
        "look at the peer's side: its rsttrace (or the cause reported for "
        "the matching sent RST) says why",
        "tcp_reset (or tcp:tcp_receive_reset) on an RST"),
    "unknown": Cause(
        "rsttrace does not recognise this kernel path",
        "the stack shows where the RST came from; please report it",
        "anything else; the event keeps its stack"),
}


def explain(cause, detail=None):
    """The explanation of an event: what happened (`detail`, else the
    cause's own sentence) and what to do, as one sentence."""
    c = CAUSES[cause]
    text = detail or c.what
    return "%s%s; %s." % (text[0].upper(), text[1:], c.fix)



def causes_markdown(scenarios=()):
    """docs/causes.md: the cause table for users."""
    by_cause = {}
    for sc in scenarios:
        for cause in dict.fromkeys(e.cause for e in sc.expects):
            by_cause.setdefault(cause, []).append(sc.name)
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
    for cause, c in CAUSES.items():
        lines.append("| `%s` | %s | %s | %s | %s |" % (
            cause, c.what, c.fix, c.recognised_by,
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
