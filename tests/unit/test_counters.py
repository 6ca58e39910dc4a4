"""The kernel counter files' format, deltas and the scenario rules."""

import pytest

from rsttrace.lab import counters

NETSTAT = """TcpExt: SyncookiesSent ListenOverflows EmbryonicRsts
TcpExt: 0 3 1
IpExt: InNoRoutes InOctets
IpExt: 0 1234
"""


def test_parse_pairs_header_and_values():
    c = counters.parse(NETSTAT)
    assert c == {"TcpExt:SyncookiesSent": 0, "TcpExt:ListenOverflows": 3,
                 "TcpExt:EmbryonicRsts": 1, "IpExt:InNoRoutes": 0,
                 "IpExt:InOctets": 1234}


def test_parse_snmp_negative_value():
    # Tcp: MaxConn is -1 in /proc/net/snmp
    c = counters.parse("Tcp: RtoMin MaxConn OutRsts\nTcp: 200 -1 7\n")
    assert c["Tcp:MaxConn"] == -1 and c["Tcp:OutRsts"] == 7


def test_parse_rejects_unpaired_lines():
    with pytest.raises(ValueError):
        counters.parse("TcpExt: A B\nIpExt: 1 2\n")


def test_delta_keeps_only_changes():
    assert counters.delta({"a": 1, "b": 2}, {"a": 1, "b": 5, "c": 1}) == \
        {"b": 3, "c": 1}


def test_check_rules():
    changed = {"TcpExt:ListenOverflows": 2, "TcpExt:EmbryonicRsts": 1}
    assert counters.check({"TcpExt:ListenOverflows": ">=1",
                           "TcpExt:EmbryonicRsts": 1}, changed) == []
    assert counters.check({"TcpExt:EmbryonicRsts": 0}, changed) == [
        "TcpExt:EmbryonicRsts +1, expected +0"]
    assert counters.check({"TcpExt:TCPAbortOnData": ">=1"}, changed) == [
        "TcpExt:TCPAbortOnData +0, expected >=1"]


def test_read_this_namespace():
    c = counters.read("/proc/self/net")
    assert "TcpExt:ListenOverflows" in c and "Tcp:OutRsts" in c
