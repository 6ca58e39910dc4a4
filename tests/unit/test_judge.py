"""Verdicts: events against expectations, counters against rules."""

from rsttrace.lab.catalogue import Scenario
from rsttrace.lab.expectations import Expect
from rsttrace.lab.run import judge
from rsttrace.trace.visibility import Visibility

ALL = Visibility("kprobe", True, True, True)        # sees everything
# tracepoint mode before 6.10, without --packets
OLD_TP = Visibility("tracepoint", False, False, False)


def _sc(expects, allow=(), counters=None):
    sc = Scenario("x", "x", [], None, counters)
    sc.expects = [Expect(*e, why="test") for e in expects]
    sc.tolerates = [Expect(*e, why="test") for e in allow]
    return sc


def _ev(side, kind, cause):
    return {"side": side, "kind": kind, "cause": cause}


def test_pass_when_expected_seen():
    sc = _sc([("b", "sent", "no-listener")])
    verdict, ok, _ = judge(sc, [_ev("b", "sent", "no-listener")], ALL, None)
    assert ok and verdict == "pass"


def test_missing_and_unexpected():
    sc = _sc([("b", "sent", "no-listener")])
    verdict, ok, _ = judge(sc, [_ev("a", "sent", "linger-zero-close")],
                           ALL, None)
    assert not ok
    assert "missing b sent no-listener" in verdict
    assert "unexpected a sent linger-zero-close" in verdict


def test_allowed_is_not_unexpected():
    sc = _sc([], allow=[("a", "challenge_ack", "challenge-ack")])
    _, ok, _ = judge(sc, [_ev("a", "challenge_ack", "challenge-ack")],
                     OLD_TP, None)
    assert ok


def test_counter_rule_broken_fails():
    sc = _sc([], counters={"b": {"TcpExt:EmbryonicRsts": 0,
                                 "TcpExt:ListenOverflows": ">=1"}})
    verdict, ok, _ = judge(sc, [], ALL, None,
                           {"b": {"TcpExt:EmbryonicRsts": 1}})
    assert not ok
    assert "b counter TcpExt:EmbryonicRsts +1, expected +0" in verdict
    assert "b counter TcpExt:ListenOverflows +0, expected >=1" in verdict


def test_counter_rules_met_pass():
    sc = _sc([], counters={"b": {"TcpExt:ListenOverflows": ">=1"}})
    _, ok, _ = judge(sc, [], ALL, None, {"b": {"TcpExt:ListenOverflows": 3}})
    assert ok


def test_challenge_ack_unobservable_is_said():
    sc = _sc([("a", "challenge_ack", "challenge-ack")])
    verdict, ok, notes = judge(sc, [], OLD_TP, None)
    assert ok and verdict.startswith("cannot show")
    verdict, ok, notes = judge(sc, [], ALL, None)
    assert not ok and "missing a challenge_ack challenge-ack" in verdict


def test_socketless_rst_unseen_by_old_tracepoint_is_said():
    """Before 6.10, tracepoint mode misses RSTs sent without a socket: the
    verdict says so instead of failing; what it can see still counts."""
    sc = _sc([("b", "sent", "no-listener"), ("a", "received",
                                             "reset-received")])
    caps = Visibility("tracepoint", False, True, False)
    verdict, ok, notes = judge(sc, [_ev("a", "received", "reset-received")],
                               caps, None)
    assert ok and "cannot show b sent no-listener" in verdict
    assert "6.10" in notes[0]
    verdict, ok, _ = judge(sc, [], caps, None)
    assert not ok and "missing a received reset-received" in verdict


def _full(state, emitter, reason, cause="no-listener"):
    return {"side": "b", "kind": "sent", "cause": cause, "state": state,
            "hook": "tcp:tcp_send_reset", "reason": reason,
            "stack": [emitter, "tcp_v4_rcv"]}


def _sc_full():
    sc = _sc([])
    sc.expects = [Expect("b", "sent", "no-listener", "test", state=None,
                         emitter="tcp_v4_send_reset", reason="NO_SOCKET")]
    return sc


def test_state_emitter_and_reason_are_judged():
    sc = _sc_full()
    ok_ev = _full(None, "tcp_v4_send_reset", "NO_SOCKET")
    assert judge(sc, [ok_ev], ALL, None, release="6.12.1")[1]
    for ev, why in ((_full("LISTEN", "tcp_v4_send_reset", "NO_SOCKET"),
                     "state LISTEN, expected None"),
                    (_full(None, "tcp_send_active_reset", "NO_SOCKET"),
                     "emitted by tcp_send_active_reset"),
                    (_full(None, "tcp_v4_send_reset", "TCP_STATE"),
                     "reason TCP_STATE, expected NO_SOCKET")):
        verdict, ok, _ = judge(sc, [ev], ALL, None, release="6.12.1")
        assert not ok and why in verdict, verdict
        assert "missing b sent no-listener" in verdict


def test_reason_only_from_6_10():
    sc = _sc_full()
    old = _full(None, "tcp_v4_send_reset", None)
    assert judge(sc, [old], ALL, None, release="6.1.0-50-amd64")[1]
    verdict, ok, _ = judge(sc, [old], ALL, None, release="6.10.0")
    assert not ok and "reason None, expected NO_SOCKET" in verdict
    new = _full(None, "tcp_v4_send_reset", "NO_SOCKET")
    assert not judge(sc, [new], ALL, None, release="5.10.0-32-amd64")[1]


def test_error_fails_whatever_was_seen():
    sc = _sc([("b", "sent", "no-listener")])
    verdict, ok, _ = judge(sc, [_ev("b", "sent", "no-listener")], ALL,
                           "OSError: boom")
    assert not ok and verdict == "ERROR: OSError: boom"


def test_catalogue_expectations_are_complete():
    """Every must-have event names its state, emitter and (for a sent RST)
    its reason; every expectation has a why."""
    from rsttrace.lab.catalogue import CATALOGUE
    from rsttrace.lab.expectations import ANY
    for sc in CATALOGUE:
        for e in sc.expects:
            assert e.state is not ANY and e.emitter is not ANY, sc.name
        for e in sc.expects + sc.tolerates:
            assert len(e.why) > 20, (sc.name, e.key())


def test_the_run_record_says_what_could_not_be_hooked_or_why_nothing_ran(
        monkeypatch):
    import os
    from rsttrace.kernel import features
    from rsttrace.lab.run import run_record
    from rsttrace.trace import hooks
    from rsttrace.trace.hooks import Placement
    monkeypatch.setattr(features, "bcc_version", lambda: "0.31.0")

    class Tracer:
        mode = "fentry"
        placements = [
            Placement(hooks.by_key("TCP_RESET"), "tcp_reset"),
            Placement(hooks.by_key("NF_SEND_RESET"), "nf_send_reset",
                      module="nf_reject_ipv4", loaded=False),
            Placement(hooks.by_key("TCP_SEND_CHALLENGE_ACK"),
                      skipped="only the compiler clone x.constprop.0 exists")]
    assert run_record("auto", Tracer()) == {
        "run": {"bcc": "0.31.0", "error": None, "not_hooked": {
            "tcp_send_challenge_ack": "only the compiler clone "
                                      "x.constprop.0 exists"}},
        "kernel": os.uname().release, "mode": "fentry"}
    assert run_record("kprobe", error="no kprobes") == {
        "run": {"bcc": "0.31.0", "error": "no kprobes", "not_hooked": {}},
        "kernel": os.uname().release, "mode": "kprobe"}
