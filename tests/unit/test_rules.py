"""Each rule of the classifier (rsttrace.attribution.classify) on
hand-made Facts, with the detail it gives: the recordings (test_attribution)
show the rules on real kernels' events; these reach every branch,
including those no recorded kernel took, and the boundary next to it."""

import pytest

from rsttrace.attribution import attribute, classify
from rsttrace.facts import Facts

BASE = dict(kind="sent", hook="tcp_v4_send_reset", state=None, reason=None,
            seg_flags=None, seg_data=False, seq_zero=False,
            linger_zero=False, unread=False, queue_full=False,
            linger2_neg=None, ack_nxt=False, frames=())


def F(**kw):
    kw = dict(BASE, **kw)
    if isinstance(kw["seg_flags"], str):
        kw["seg_flags"] = frozenset(kw["seg_flags"].split("|"))
    kw["frames"] = tuple(kw["frames"])
    return Facts(**kw)


ABORT_TEXT = (
    "not an RST: data arrived after the application shut down reading "
    "(close or shutdown), so the kernel aborted the socket itself "
    "(tcp_reset from tcp_rcv_state_process; the application sees "
    "ECONNRESET though no RST arrived) and answers the data with an RST")
ACTIVE = dict(hook="tcp_send_active_reset", frames=["tcp_send_active_reset"])
LISTENER_ACK = ("a segment without SYN reached a listener that has no "
                "connection for it (half-open peer, a handshake this host "
                "forgot, or one it dropped after an ICMP error)")
SOCKLESS_PKT = ("(seen as a packet: this kernel's tcp tracepoint misses RSTs "
                "sent without a socket) the RST answers a segment ")
CASES = [
    # kind first
    (F(kind="challenge_ack", hook="tcp_send_challenge_ack"),
     ("challenge-ack", None)),
    # received
    (F(kind="received", hook="tcp_reset", state="ESTABLISHED",
       seg_flags="RST|ACK"),
     ("reset-received", "connection reset by peer")),
    (F(kind="received", hook="tcp_reset", state="SYN_SENT"),
     ("reset-received", "connection refused: the peer answered our SYN "
      "with an RST")),
    (F(kind="received", hook="tcp_reset", state="LAST_ACK"),
     ("reset-received", None)),
    # the kernel's own abort (kind abort: facts.own_abort, test_own_abort)
    (F(kind="abort", hook="tcp_reset", state="FIN_WAIT2",
       seg_flags="ACK|PSH"), ("data-after-close", ABORT_TEXT)),
    (F(kind="abort", hook="tcp:tcp_receive_reset", state="FIN_WAIT1",
       frames=["tcp_reset", "tcp_rcv_state_process", "tcp_v4_do_rcv"]),
     ("data-after-close", ABORT_TEXT)),
    # TIME_WAIT: only its kill is reported
    (F(kind="received", hook="inet_twsk_deschedule_put", state="TIME_WAIT"),
     ("time-wait-assassination", None)),
    # the same without the path, or with the packet an RST: received
    (F(kind="received", hook="tcp_reset", state="FIN_WAIT2",
       frames=["tcp_reset", "tcp_validate_incoming"]),
     ("reset-received", None)),
    (F(kind="received", hook="tcp_reset", state="FIN_WAIT2",
       seg_flags="RST", frames=["tcp_reset", "tcp_rcv_state_process"]),
     ("reset-received", None)),
    (F(kind="received", hook="tcp_reset", state="CLOSE_WAIT",
       frames=["tcp_reset", "tcp_rcv_state_process"]),
     ("reset-received", "connection reset by peer after it had sent its "
      "FIN")),
    # netfilter
    (F(hook="nf_send_reset"), ("firewall-reject", None)),
    (F(frames=["nf_send_reset6", "nft_reject_ipv6_eval"]),
     ("firewall-reject", None)),
    # the packet hook
    (F(hook="net:net_dev_queue", frames=["nf_hook_slow", "ip_output"]),
     ("firewall-reject", "a netfilter hook sent this RST (a REJECT rule; "
      "its module frames are not named in the stack)")),
    (F(hook="net:net_dev_queue", seg_flags="RST|ACK", seq_zero=True,
       frames=["tcp_v6_send_reset"]),
     ("no-listener", SOCKLESS_PKT + "without ACK, a SYN, that found no "
      "socket")),
    (F(hook="net:net_dev_queue", seg_flags="RST", seq_zero=True,
       frames=["tcp_v4_send_reset"]),
     ("no-connection", SOCKLESS_PKT + "with ACK that found no connection")),
    (F(hook="net:net_dev_queue", seg_flags="RST|ACK", seq_zero=False,
       frames=["tcp_v4_send_reset"]),
     ("no-connection", SOCKLESS_PKT + "with ACK that found no connection")),
    (F(hook="net:net_dev_queue", seg_flags="RST", frames=["raw_sendmsg"]),
     ("unknown", "an RST made outside the TCP stack (not netfilter): a raw "
      "socket, a packet generator or another kernel module")),
    # replies, no socket
    (F(seg_flags="SYN"), ("no-listener", None)),
    (F(seg_flags="SYN|ACK"),
     ("no-connection", "a SYN-ACK arrived for a connection attempt this "
      "host no longer has (the client closed right after connect)")),
    (F(seg_flags="ACK"), ("no-connection", None)),
    (F(reason="NO_SOCKET"), ("no-connection", None)),
    (F(), ("unknown", None)),
    # replies, a listener
    (F(state="LISTEN", seg_flags="ACK", queue_full=True,
       frames=["tcp_v4_send_reset", "tcp_check_req"]),
     ("accept-queue-overflow", None)),
    (F(state="LISTEN", seg_flags="ACK", queue_full=True),
     ("no-connection", LISTENER_ACK)),
    (F(state="LISTEN", seg_flags="ACK", frames=["tcp_check_req"]),
     ("no-connection", LISTENER_ACK)),
    (F(state="LISTEN", seg_flags="SYN"), ("unknown", None)),
    # replies, other states
    (F(state="TIME_WAIT", seg_flags="ACK"),
     ("data-after-close", "a segment arrived for a connection in TIME_WAIT "
      "that it cannot accept (late data after close, or a TIME_WAIT "
      "assassination)")),
    (F(state="ESTABLISHED", reason="TCP_TIMEWAIT_SOCKET"),
     ("data-after-close", "a segment arrived for a connection in TIME_WAIT "
      "that it cannot accept (late data after close, or a TIME_WAIT "
      "assassination)")),
    (F(state="ESTABLISHED", reason="TCP_ABORT_ON_DATA"),
     ("data-after-close", None)),
    (F(state="FIN_WAIT2", seg_flags="ACK|PSH", seg_data=True),
     ("data-after-close", None)),
    (F(state="FIN_WAIT2", seg_flags="ACK"), ("unknown", None)),
    (F(state="ESTABLISHED", seg_flags="ACK", seg_data=True),
     ("unknown", None)),
    (F(state="ESTABLISHED", reason="TCP_OLD_ACK"), ("invalid-ack", None)),
    # PAWS: the kernel's reason (6.10+), else a SYN-ACK acknowledging
    # exactly snd_nxt from SYN_SENT (acceptable but for its timestamp)
    (F(state="SYN_SENT", seg_flags="SYN|ACK", reason="TCP_RFC7323_PAWS"),
     ("paws-reject", None)),
    (F(state="SYN_SENT", seg_flags="SYN|ACK", ack_nxt=True),
     ("paws-reject", None)),
    (F(state="SYN_SENT", seg_flags="SYN|ACK", ack_nxt=True,
       reason="TCP_INVALID_ACK_SEQUENCE"), ("invalid-ack", None)),
    (F(state="SYN_SENT", seg_flags="SYN|ACK"), ("invalid-ack", None)),
    # an orphan in FIN_WAIT1 with TCP_LINGER2 < 0, done when its FIN is
    # ACKed (state CLOSE by the time the RST goes)
    (F(state="CLOSE", seg_flags="ACK", linger2_neg=True,
       reason="TCP_ABORT_ON_DATA"),
     ("fin-wait2-timeout", "TCP_LINGER2 < 0 asked the kernel to abort "
      "instead of waiting in FIN_WAIT2: it did so when the peer "
      "acknowledged the FIN")),
    (F(state="CLOSE", seg_flags="ACK", linger2_neg=False,
       reason="TCP_ABORT_ON_DATA"), ("data-after-close", None)),
    (F(state="SYN_SENT", seg_flags="ACK"), ("invalid-ack", None)),
    (F(state="NEW_SYN_RECV"), ("invalid-ack", None)),
    (F(state="SYN_RECV"), ("invalid-ack", None)),
    (F(state="ESTABLISHED"), ("unknown", None)),
    # the tracepoint without a packet is an active reset
    (F(hook="tcp:tcp_send_reset", state="CLOSE", unread=True,
       frames=["__tcp_close"]),
     ("unread-data-close", None)),
    (F(hook="tcp:tcp_send_reset", state="CLOSE", unread=True),
     ("unknown", None)),
    (F(hook="tcp:tcp_send_reset", state=None, seg_flags="SYN"),
     ("no-listener", None)),
    # active resets
    (F(state="ESTABLISHED", frames=["tcp_send_active_reset",
                                    "tcp_keepalive_timer"], hook="x"),
     ("keepalive-timeout", None)),
    (F(state="FIN_WAIT2", reason="TCP_KEEPALIVE_TIMEOUT", **ACTIVE),
     ("fin-wait2-timeout", None)),
    (F(state="CLOSE", reason="TCP_ABORT_ON_MEMORY", **ACTIVE),
     ("memory-pressure", None)),
    (F(state="CLOSE", hook="tcp_send_active_reset",
       frames=["tcp_send_active_reset", "tcp_check_oom"]),
     ("memory-pressure", None)),
    (F(state="FIN_WAIT1", hook="tcp_send_active_reset",
       frames=["tcp_send_active_reset", "tcp_write_timer_handler"]),
     ("memory-pressure", "an orphaned socket's retransmit or probe timer "
      "found too many orphaned sockets or TCP memory short "
      "(tcp_out_of_resources) and aborted it")),
    (F(state="ESTABLISHED", hook="tcp_send_active_reset",
       frames=["tcp_send_active_reset", "tcp_abort"]),
     ("socket-killed", None)),
    (F(state="CLOSE", hook="tcp_send_active_reset",
       frames=["tcp_send_active_reset", "inet_child_forget"]),
     ("listener-closed", None)),
    (F(state="CLOSE", hook="tcp_send_active_reset",
       frames=["tcp_send_active_reset", "inet_csk_listen_stop"]),
     ("listener-closed", None)),
    (F(state="CLOSE", linger_zero=True, hook="tcp_send_active_reset",
       frames=["tcp_send_active_reset", "tcp_disconnect", "tcp_close"]),
     ("linger-zero-close", None)),
    (F(state="CLOSE", hook="tcp_send_active_reset",
       frames=["tcp_send_active_reset", "tcp_disconnect",
               "__inet_stream_connect"]),
     ("app-disconnect", None)),
    (F(state="CLOSE", hook="tcp_send_active_reset",
       frames=["tcp_send_active_reset", "tcp_disconnect", "tcp_close",
               "inet_stream_connect"]),
     ("fin-wait2-timeout", "TCP_LINGER2 < 0 asked the kernel to abort "
      "instead of waiting in FIN_WAIT2")),
    (F(state="CLOSE", hook="tcp_send_active_reset",
       frames=["tcp_send_active_reset", "tcp_disconnect"]),
     ("app-disconnect", None)),
    # close()
    (F(state="CLOSE", unread=True, linger_zero=True,
       hook="tcp_send_active_reset",
       frames=["tcp_send_active_reset", "__tcp_close"]),
     ("unread-data-close", None)),
    (F(state="CLOSE", reason="TCP_ABORT_ON_CLOSE", **ACTIVE),
     ("unread-data-close", None)),
    (F(state="CLOSE", linger_zero=True, hook="tcp_send_active_reset",
       frames=["tcp_send_active_reset", "__tcp_close"]),
     ("linger-zero-close", None)),
    (F(state="CLOSE", reason="TCP_ABORT_ON_LINGER", **ACTIVE),
     ("fin-wait2-timeout", "TCP_LINGER2 < 0 asked the kernel to abort "
      "instead of waiting in FIN_WAIT2")),
    (F(state="FIN_WAIT2", linger2_neg=True, hook="tcp_send_active_reset",
       frames=["tcp_send_active_reset", "tcp_close"]),
     ("fin-wait2-timeout", "TCP_LINGER2 < 0 asked the kernel to abort "
      "instead of waiting in FIN_WAIT2")),
    (F(state="CLOSE", linger2_neg=None, hook="tcp_send_active_reset",
       frames=["tcp_send_active_reset", "__tcp_close"]),
     ("fin-wait2-timeout", "TCP_LINGER2 < 0 asked the kernel to abort "
      "instead of waiting in FIN_WAIT2")),
    (F(state="CLOSE", linger2_neg=False, hook="tcp_send_active_reset",
       frames=["tcp_send_active_reset", "__tcp_close"]),
     ("memory-pressure", "when the application closed the socket, "
      "tcp_check_oom() found too many orphaned sockets "
      "(net.ipv4.tcp_max_orphans) or TCP memory above net.ipv4.tcp_mem, so "
      "the kernel aborted it instead of closing it gracefully")),
    (F(state="ESTABLISHED", linger2_neg=False, hook="tcp_send_active_reset",
       frames=["tcp_send_active_reset", "__tcp_close"]),
     ("unknown", None)),
    (F(state="ESTABLISHED", **ACTIVE), ("unknown", None)),
]


@pytest.mark.parametrize("facts, want", CASES,
                         ids=["%d-%s" % (i, w[0]) for i, (_, w)
                              in enumerate(CASES)])
def test_rule(facts, want):
    assert classify(facts) == want
    cause, explanation = attribute(facts)
    assert cause == want[0] and explanation.endswith(".")


@pytest.mark.parametrize("state, seg_flags, frames, own", [
    # the segment in hand (kprobe/fentry, 5.11+): no RST flag, an abort
    ("FIN_WAIT2", frozenset({"ACK", "PSH"}), (), True),
    ("FIN_WAIT2", frozenset({"RST"}), ("tcp_reset", "tcp_rcv_state_process"),
     False),
    # no segment: tcp_reset called by tcp_rcv_state_process itself
    ("FIN_WAIT1", None, ("tcp_reset", "tcp_rcv_state_process",
                         "tcp_v4_do_rcv"), True),
    ("FIN_WAIT2", None, ("tcp_reset", "tcp_rcv_state_process"), True),
    ("LAST_ACK", None, ("tcp_reset", "tcp_rcv_state_process"), True),
    # an RST that arrives goes through tcp_validate_incoming
    ("FIN_WAIT2", None, ("tcp_reset", "tcp_validate_incoming"), False),
    # states that never abort on data, and no stack at all
    ("SYN_SENT", None, ("tcp_reset", "tcp_rcv_state_process"), False),
    ("ESTABLISHED", None, ("tcp_reset", "tcp_rcv_state_process"), False),
    ("FIN_WAIT1", None, (), False),
])
def test_own_abort(state, seg_flags, frames, own):
    from rsttrace.facts import own_abort
    assert own_abort(state, seg_flags, frames) is own
