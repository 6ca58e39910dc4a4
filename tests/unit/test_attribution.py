"""The classifier on events recorded from real kernels (tests/data, made
by scripts/record-events from the scenario catalogue), and on the same
events as other kernels and modes would report them. What each should be
called comes from rsttrace/lab/expectations.json, never from the cause
the recording carries (what the classifier said when it was recorded)."""

import glob
import json
import os

import pytest

from rsttrace.attribution import attribute, attribute_record
from rsttrace.causes import CAUSES, causes_markdown, explain
from rsttrace.facts import Facts
from rsttrace.lab import expectations
from rsttrace.lab.catalogue import CATALOGUE
from rsttrace.lab.expectations import ANY, emitter_of, match

DATA = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data")
FILES = sorted(glob.glob(os.path.join(DATA, "events-*.jsonl")))
SCENARIOS = {s.name: s for s in CATALOGUE}


def recorded():
    out = []
    for path in FILES:
        with open(path) as f:
            for n, line in enumerate(f, 1):
                out.append(pytest.param(json.loads(line),
                                        id="%s:%d" % (os.path.basename(path)
                                                      [7:-6], n)))
    return out


def test_recordings_exist():
    assert FILES, "no recorded events in tests/data"


EXPECTATIONS = expectations.load()


def expected_cause(event):
    """The cause rsttrace/lab/expectations.json gives an event like this
    one (same scenario, side, kind, state and emitting function), whatever
    the recording says."""
    must, tolerate = EXPECTATIONS[event["scenario"]]
    causes = {e.cause for e in must + tolerate
              if (e.side, e.kind) == (event["side"], event["kind"])
              and e.state in (ANY, event["state"])
              and e.emits(emitter_of(event))}
    assert len(causes) == 1, "expectations for %s %s %s: %s" % (
        event["scenario"], event["side"], event["kind"], causes)
    return causes.pop()


@pytest.mark.parametrize("event", recorded())
def test_recorded_event(event):
    """Each recorded event is classified as expectations.json says, and is
    one of its scenario's expected or tolerated events in full (state,
    emitting function, the kernel's reason by version)."""
    cause = attribute_record(dict(event, cause=None, explanation=None))[0]
    assert cause == expected_cause(event)
    must, tolerate = EXPECTATIONS[event["scenario"]]
    exp, why = match(dict(event, cause=cause), must + tolerate,
                     event["kernel"])
    assert exp is not None, why


def test_every_expected_event_was_recorded_somewhere():
    """The recordings exercise every must-have event of every scenario that
    makes RSTs, so none of the expectations above goes unchecked."""
    seen = {(e["scenario"], e["side"], e["kind"]) for e in
            (p.values[0] for p in recorded())}
    for name, (must, _) in EXPECTATIONS.items():
        for e in must:
            assert (name, e.side, e.kind) in seen, (name, e.key())


def as_pre_6_10(event):
    """The same event on a kernel without enum sk_rst_reason."""
    return dict(event, reason=None, cause=None)


def as_kprobe(event):
    """The same event as kprobe mode names its hook: the function."""
    hook = event["hook"]
    if hook == "tcp:tcp_receive_reset":
        hook = "tcp_reset"
    elif hook == "tcp:tcp_send_reset":
        hook = event["stack"][0].split(".")[0]
    return dict(event, hook=hook, cause=None)


@pytest.mark.parametrize("event", recorded())
def test_cause_does_not_rest_on_the_kernel_reason(event):
    assert attribute_record(as_pre_6_10(event))[0] == expected_cause(event)


@pytest.mark.parametrize("event", recorded())
def test_cause_is_the_same_in_kprobe_mode(event):
    assert attribute_record(as_kprobe(event))[0] == expected_cause(event)


def rec(**kw):
    base = {"kind": "sent", "hook": "tcp_send_active_reset", "state": None,
            "reason": None, "stack": [], "seg_flags": None, "seg_len": None,
            "linger": None, "rcv_unread": None, "backlog": None,
            "backlog_max": None}
    base.update(kw)
    return base


def synsent_reply(**kw):
    """tcp:tcp_send_reset answering a SYN-ACK in SYN_SENT (snd_nxt 101)."""
    return rec(hook="tcp:tcp_send_reset", state="SYN_SENT", seg_flags="SYN|ACK",
               seg_len=0, snd_nxt=101, linger2=0,
               stack=["tcp_v4_send_reset", "tcp_v4_do_rcv"], **kw)


@pytest.mark.parametrize("record,cause", [
    # memory pressure: orphan aborted from the retransmit timer
    (rec(state="FIN_WAIT1", stack=["tcp_send_active_reset",
                                   "tcp_out_of_resources",
                                   "tcp_write_timeout"]), "memory-pressure"),
    (rec(state="CLOSE", reason="TCP_ABORT_ON_MEMORY",
         stack=["tcp_send_active_reset", "__tcp_close"]), "memory-pressure"),
    # tcp_out_of_resources inlined (6.x): its callers in the timer path
    (rec(state="FIN_WAIT1", stack=["tcp_send_active_reset",
                                   "tcp_retransmit_timer",
                                   "tcp_write_timer_handler",
                                   "tcp_write_timer", "call_timer_fn"]),
     "memory-pressure"),
    (rec(state="FIN_WAIT1", stack=["tcp_send_active_reset",
                                   "tcp_probe_timer",
                                   "tcp_write_timer_handler",
                                   "tcp_release_cb", "release_sock"]),
     "memory-pressure"),
    # before 6.10 (no reason) __tcp_close's two resets in state CLOSE:
    # TCP_LINGER2 < 0, or tcp_check_oom()
    (rec(state="CLOSE", linger2=0, rcv_unread=0,
         stack=["tcp_send_active_reset", "__tcp_close", "tcp_close"]),
     "memory-pressure"),
    (rec(state="CLOSE", linger2=-1, rcv_unread=0,
         stack=["tcp_send_active_reset", "__tcp_close", "tcp_close"]),
     "fin-wait2-timeout"),
    # a record without linger2 (older captures) keeps the older answer
    (rec(state="CLOSE", rcv_unread=0,
         stack=["tcp_send_active_reset", "__tcp_close", "tcp_close"]),
     "fin-wait2-timeout"),
    # 6.10+: the reason decides even where linger2 would not
    (rec(state="CLOSE", linger2=0, rcv_unread=0, reason="TCP_ABORT_ON_LINGER",
         stack=["tcp_send_active_reset", "__tcp_close", "tcp_close"]),
     "fin-wait2-timeout"),
    # unread data wins over both (RFC 2525 reset on close)
    (rec(state="CLOSE", linger2=0, rcv_unread=10,
         stack=["tcp_send_active_reset", "__tcp_close", "tcp_close"]),
     "unread-data-close"),
    # an orphan timing out in FIN_WAIT2 from the keepalive timer
    (rec(state="FIN_WAIT2", stack=["tcp_send_active_reset",
                                   "tcp_keepalive_timer"]),
     "fin-wait2-timeout"),
    # 5.10's clone name still counts as the function
    (rec(kind="challenge_ack", hook="tcp_send_challenge_ack",
         stack=["tcp_send_challenge_ack.constprop.0",
                "tcp_validate_incoming"]), "challenge-ack"),
    # a SYN-ACK reaching a host with no socket: client closed after connect
    (rec(hook="tcp_v4_send_reset", seg_flags="SYN|ACK",
         stack=["tcp_v4_send_reset", "tcp_v4_rcv"]), "no-connection"),
    # nf_send_reset hook in kprobe mode
    (rec(hook="nf_send_reset", seg_flags="SYN",
         stack=["nf_send_reset", "reject_tg"]), "firewall-reject"),
    # kprobe mode sees the packet on tcp_reset: a non-RST segment means the
    # kernel aborted its own socket (data after close; kind abort)
    (rec(kind="received", hook="tcp_reset", state="FIN_WAIT2",
         seg_flags="PSH|ACK", stack=["tcp_reset", "tcp_rcv_state_process"]),
     "data-after-close"),
    (rec(kind="received", hook="tcp_reset", state="ESTABLISHED",
         seg_flags="RST", stack=["tcp_reset", "tcp_validate_incoming"]),
     "reset-received"),
    # an RST killing a TIME_WAIT socket, as kprobe and tracepoint mode see it
    (rec(kind="received", hook="inet_twsk_deschedule_put", state="TIME_WAIT",
         stack=["inet_twsk_deschedule_put", "tcp_timewait_state_process"]),
     "time-wait-assassination"),
    (rec(kind="received", hook="skb:kfree_skb", state="TIME_WAIT",
         seg_flags="RST", seg_len=0,
         stack=["sk_skb_reason_drop", "tcp_v4_rcv"]),
     "time-wait-assassination"),
    # from SYN_SENT: a SYN-ACK whose ACK is snd_nxt failed its timestamp
    # (the kernel says so from 6.10 on), any other is an unacceptable ACK
    (synsent_reply(seq=101), "paws-reject"),
    (synsent_reply(seq=101, reason="TCP_RFC7323_PAWS"), "paws-reject"),
    (synsent_reply(seq=5000), "invalid-ack"),
    (synsent_reply(seq=101, reason="TCP_INVALID_ACK_SEQUENCE"),
     "invalid-ack"),
    # connect(AF_UNSPEC) on an open connection
    (rec(state="CLOSE", stack=["tcp_send_active_reset", "tcp_disconnect",
                               "inet_stream_connect", "__sys_connect"]),
     "app-disconnect"),
    # a path rsttrace does not know stays visible as unknown
    (rec(hook="tcp_v4_send_reset", state="ESTABLISHED", seg_flags="ACK",
         stack=["tcp_v4_send_reset", "something_new"]), "unknown"),
])
def test_synthetic(record, cause):
    assert attribute_record(record)[0] == cause


ABORT_FRAMES = ["tcp_reset", "tcp_rcv_state_process", "tcp_v4_do_rcv"]
REAL_FRAMES = ["tcp_reset", "tcp_validate_incoming", "tcp_rcv_state_process"]


@pytest.mark.parametrize("record,kind", [
    # the segment in hand (kprobe/fentry, 5.11+): no RST flag, no RST
    (rec(kind="received", hook="tcp_reset", state="FIN_WAIT2",
         seg_flags="PSH|ACK", seg_len=4, stack=ABORT_FRAMES), "abort"),
    (rec(kind="received", hook="tcp_reset", state="FIN_WAIT2",
         seg_flags="RST|ACK", seg_len=0, stack=REAL_FRAMES), "received"),
    # no segment (tcp:tcp_receive_reset, 5.10 kprobes): the caller tells,
    # in every state where the kernel aborts on data
    *[(rec(kind="received", hook="tcp:tcp_receive_reset", state=state,
           stack=frames), kind)
      for state in ("FIN_WAIT1", "FIN_WAIT2", "CLOSE_WAIT", "CLOSING",
                    "LAST_ACK")
      for frames, kind in ((ABORT_FRAMES, "abort"), (REAL_FRAMES,
                                                      "received"))],
    # SYN_SENT's RSTs reach tcp_reset from tcp_rcv_synsent_state_process,
    # inlined into tcp_rcv_state_process: the state rules out an abort
    (rec(kind="received", hook="tcp:tcp_receive_reset", state="SYN_SENT",
         stack=ABORT_FRAMES), "received"),
    (rec(kind="received", hook="tcp:tcp_receive_reset", state="ESTABLISHED",
         stack=["tcp_reset", "tcp_validate_incoming",
                "tcp_rcv_established"]), "received"),
    # without packet and stack nothing tells: received, as the hook says
    (rec(kind="received", hook="tcp:tcp_receive_reset", state="FIN_WAIT2",
         stack=[]), "received"),
    # a saved abort stays one; sent events are never re-kinded
    (rec(kind="abort", hook="tcp:tcp_receive_reset", state="FIN_WAIT2",
         stack=ABORT_FRAMES), "abort"),
    (rec(kind="sent", hook="tcp_v4_send_reset", state="CLOSE",
         seg_flags="PSH|ACK", seg_len=4, stack=["tcp_v4_send_reset"]),
     "sent"),
])
def test_own_abort_is_not_a_received_rst(record, kind):
    """The kernel's own abort through tcp_reset() (data after the reading
    side was shut down) is kind `abort`, cause data-after-close; an RST
    that arrived stays `received`."""
    facts = Facts.of_record(record)
    assert facts.kind == kind
    cause = attribute(facts)[0]
    if kind == "abort":
        assert cause == "data-after-close"
        assert attribute(facts)[1].startswith("Not an RST")
    elif kind == "received":
        assert cause == "reset-received"


def test_every_cause_explains_itself():
    for cause in CAUSES:
        text = explain(cause)
        assert text.endswith(".") and text[0].isupper()
        assert "; " in text             # what happened; what to do


def test_issue_cause_ids_exist():
    for cause in ("no-listener", "no-connection", "linger-zero-close",
                  "unread-data-close", "data-after-close",
                  "accept-queue-overflow", "listener-closed",
                  "keepalive-timeout", "socket-killed", "memory-pressure",
                  "firewall-reject", "invalid-ack", "challenge-ack",
                  "reset-received", "unknown",
                  # issue 19
                  "time-wait-assassination", "paws-reject"):
        assert cause in CAUSES


def test_docs_causes_is_current():
    path = os.path.join(os.path.dirname(DATA), "..", "docs", "causes.md")
    with open(path) as f:
        assert f.read() == causes_markdown(CATALOGUE), \
            "regenerate: rsttrace causes --markdown > docs/causes.md"


def test_frames_beyond_the_softirq_boundary_do_not_count():
    """A reply RST sent in a softirq that ran inside another socket's
    close(): the outer tcp_send_active_reset is not this RST's path (seen
    on 6.1: the peer's challenge ACK to a linger-0 RST, answered while the
    closing process still ran)."""
    stack = ["tcp_v4_send_reset", "tcp_v4_rcv", "ip_protocol_deliver_rcu",
             "ip_local_deliver_finish", "__netif_receive_skb_one_core",
             "process_backlog", "__napi_poll", "net_rx_action",
             "handle_softirqs", "do_softirq.part.0", "__local_bh_enable_ip",
             "__dev_queue_xmit", "ip_output", "__tcp_transmit_skb",
             "tcp_send_active_reset", "tcp_disconnect", "__tcp_close",
             "tcp_close"]
    r = rec(hook="tcp_v4_send_reset", seg_flags="ACK", seg_len=0,
            stack=stack)
    assert attribute_record(r)[0] == "no-connection"


@pytest.mark.parametrize("stack,cause", [
    (["__dev_queue_xmit", "ip_output", "nf_send_reset",
      "nft_reject_inet_eval", "nf_hook_slow"], "firewall-reject"),
    # module frames misnamed (symbols read before the module loaded)
    (["__dev_queue_xmit", "ip_output", "veth_set_channels.cold",
      "nf_hook_slow", "ip_local_deliver"], "firewall-reject"),
    (["__dev_queue_xmit", "ip_output", "raw_sendmsg"], "unknown"),
])
def test_packet_hook(stack, cause):
    r = rec(hook="net:net_dev_queue", seg_flags="RST|ACK", seg_len=0,
            stack=stack)
    assert attribute_record(r)[0] == cause


def _packet_rst(flags, seq, frames):
    return {"kind": "sent", "hook": "net:net_dev_queue", "state": None,
            "reason": None, "seg_flags": flags, "seq": seq, "ack": 77,
            "stack": ["__dev_queue_xmit", "ip6_finish_output2"] + frames}


V6_REPLY = ["ip6_xmit", "tcp_v6_send_response", "tcp_v6_send_reset",
            "tcp_v6_rcv", "ip6_protocol_deliver_rcu",
            "__netif_receive_skb_one_core", "process_backlog"]


def test_tcp_reply_seen_only_as_packet_answering_a_syn():
    # 6.1 in tracepoint mode: tcp:tcp_send_reset missed it, --packets saw it
    cause, why = attribute_record(_packet_rst("RST|ACK", 0, V6_REPLY))
    assert cause == "no-listener"
    assert "seen as a packet" in why


def test_tcp_reply_seen_only_as_packet_answering_an_ack():
    cause, _ = attribute_record(_packet_rst("RST", 12345, V6_REPLY))
    assert cause == "no-connection"


def test_packet_rst_outside_tcp_and_netfilter_is_unknown():
    cause, _ = attribute_record(_packet_rst("RST", 1, ["packet_sendmsg"]))
    assert cause == "unknown"
