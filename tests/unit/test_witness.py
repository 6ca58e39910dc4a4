"""The scenarios' witness reads tcpdump's pcap files itself (the RSTs that
crossed the wire), and the crafted segments' own parsing; both are pure
byte handling, tested here on hand-made frames."""

import socket
import struct

import pytest

from rsttrace.kernel import features
from rsttrace.lab import craft, witness


def frame(src, dst, sport, dport, flags, seq=1, ack=2, v6=False):
    """An Ethernet frame carrying a TCP header (no options)."""
    th = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags,
                     1000, 0, 0)
    if v6:
        ip = struct.pack("!IHBB", 6 << 28, len(th), 6, 64) + \
            socket.inet_pton(socket.AF_INET6, src) + \
            socket.inet_pton(socket.AF_INET6, dst)
        ethertype = 0x86DD
    else:
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(th), 0, 0, 64, 6,
                         0, socket.inet_aton(src), socket.inet_aton(dst))
        ethertype = 0x0800
    return b"\0" * 12 + struct.pack("!H", ethertype) + ip + th


def pcap(frames, magic=b"\xd4\xc3\xb2\xa1", order="<", linktype=1):
    out = magic + struct.pack(order + "HHiIII", 2, 4, 0, 0, 65535, linktype)
    for f in frames:
        out += struct.pack(order + "IIII", 1, 2, len(f), len(f)) + f
    return out


def test_rsts_of_a_capture():
    frames = [frame("198.18.1.2", "198.18.1.1", 80, 5000, 0x14, seq=0,
                    ack=99),
              frame("198.18.1.1", "198.18.1.2", 5000, 80, 0x10),   # no RST
              frame("2001:db8:1::2", "2001:db8:1::1", 80, 5001, 0x04,
                    seq=7, v6=True),
              b"\0" * 12 + b"\x08\x06" + b"\0" * 28]                 # ARP
    for magic, order in (("d4c3b2a1", "<"), ("a1b2c3d4", ">"),
                         ("4d3cb2a1", "<")):
        got = witness.rsts(pcap(frames, bytes.fromhex(magic), order))
        assert got == [
            witness.Rst("198.18.1.2", 80, "198.18.1.1", 5000, 0, 99, 0x14),
            witness.Rst("2001:db8:1::2", 80, "2001:db8:1::1", 5001, 7, 2,
                        0x04)]


def test_a_capture_cut_short_keeps_what_is_whole():
    data = pcap([frame("10.0.0.1", "10.0.0.2", 1, 2, 0x04)] * 2)
    assert len(witness.rsts(data[:-10])) == 1


@pytest.mark.parametrize("data", [b"", b"hello world" * 3,
                                  pcap([], linktype=113)])
def test_not_an_ethernet_pcap(data):
    with pytest.raises(ValueError):
        witness.rsts(data)


def test_tsval_of_a_syn():
    opts = (b"\x02\x04\x05\xb4" + b"\x04\x02" + b"\x08\x0a" +
            struct.pack("!II", 123456, 0) + b"\x01\x03\x03\x07")
    th = struct.pack("!HHIIBBHHH", 1, 2, 3, 0, (5 + len(opts) // 4) << 4,
                     craft.SYN, 0, 0, 0) + opts
    assert craft._tsval(th) == 123456
    assert craft._tsval(th[:20]) is None                    # no options
    ts = craft.timestamps(5, 6)
    assert len(ts) % 4 == 0 and craft._tsval(
        craft.tcp_segment("10.0.0.1", "10.0.0.2", 1, 2, 3, 4, craft.SYN,
                          options=ts)) == 5


def test_function_range_ends_at_the_next_symbol(monkeypatch):
    syms = {"tcp_timewait_state_process": ["ffffffff81000100"],
            "__pfx_next": ["ffffffff81000400"], "before": ["ffffffff81000000"],
            "twice": ["ffffffff81000500", "ffffffff81000600"]}
    monkeypatch.setattr(features, "kallsyms", lambda: syms)
    features._text_addresses.cache_clear()
    try:
        assert features.function_range("tcp_timewait_state_process") == (
            0xffffffff81000100, 0xffffffff81000400)
        assert features.function_range("missing") is None
        assert features.function_range("twice") is None     # ambiguous
    finally:
        features._text_addresses.cache_clear()
