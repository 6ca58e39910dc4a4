"""Verdicts: events against expectations, counters against rules."""

from rsttrace.scenario_run import judge
from rsttrace.scenarios import Scenario


def _sc(expects, allow=(), counters=None):
    return Scenario("x", "x", [], None, expects, allow, (), counters)


def _ev(side, kind, cause):
    return {"side": side, "kind": kind, "cause": cause}


def test_pass_when_expected_seen():
    sc = _sc([("b", "sent", "no-listener")])
    verdict, ok, _ = judge(sc, [_ev("b", "sent", "no-listener")], set(), None)
    assert ok and verdict == "pass"


def test_missing_and_unexpected():
    sc = _sc([("b", "sent", "no-listener")])
    verdict, ok, _ = judge(sc, [_ev("a", "sent", "linger-zero-close")],
                           set(), None)
    assert not ok
    assert "missing b sent no-listener" in verdict
    assert "unexpected a sent linger-zero-close" in verdict


def test_allowed_is_not_unexpected():
    sc = _sc([], allow=[("a", "challenge_ack", "challenge-ack")])
    _, ok, _ = judge(sc, [_ev("a", "challenge_ack", "challenge-ack")],
                     set(), None)
    assert ok


def test_counter_rule_broken_fails():
    sc = _sc([], counters={"b": {"TcpExt:EmbryonicRsts": 0,
                                 "TcpExt:ListenOverflows": ">=1"}})
    verdict, ok, _ = judge(sc, [], set(), None,
                           {"b": {"TcpExt:EmbryonicRsts": 1}})
    assert not ok
    assert "b counter TcpExt:EmbryonicRsts +1, expected +0" in verdict
    assert "b counter TcpExt:ListenOverflows +0, expected >=1" in verdict


def test_counter_rules_met_pass():
    sc = _sc([], counters={"b": {"TcpExt:ListenOverflows": ">=1"}})
    _, ok, _ = judge(sc, [], set(), None, {"b": {"TcpExt:ListenOverflows": 3}})
    assert ok


def test_challenge_ack_unobservable_is_said():
    sc = _sc([("a", "challenge_ack", "challenge-ack")])
    verdict, ok, notes = judge(sc, [], set(), None)
    assert ok and verdict.startswith("cannot show")
