"""Verdicts: events against expectations, counters against rules."""

from rsttrace.lab.catalogue import Scenario
from rsttrace.lab.run import judge
from rsttrace.trace.visibility import Visibility

ALL = Visibility("kprobe", True, True, True)        # sees everything
# tracepoint mode before 6.10, without --packets
OLD_TP = Visibility("tracepoint", False, False, False)


def _sc(expects, allow=(), counters=None):
    return Scenario("x", "x", [], None, expects, allow, (), counters)


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
