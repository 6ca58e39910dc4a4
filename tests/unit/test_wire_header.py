"""The RST's rebuilt header: rsttrace/output/wire_header.py (what -w
writes) against bpf/pcap_header.h (what filter expressions run on in the
kernel), compiled here with gcc, byte for byte on generated events; and
the flags each kind of RST has on the wire."""

import ctypes
import ipaddress

import pytest
from hypothesis import given, settings, strategies as st

from ccompile import shared_library
from rsttrace import abi
from rsttrace.kernel.reasons import ReasonNames
from rsttrace.output.wire_header import (NotAPacket, checksum, header,
                                         wire_flags)
from rsttrace.trace.decode import Decoder
from rsttrace.trace.hooks import HOOK_NAMES

PCAP_BUF = 64


@pytest.fixture(scope="module")
def c_header(tmp_path_factory):
    lib = shared_library("""
#include "rsttrace.h"
#include "pcap_header.h"
u32 header_of(const struct rst_event *ev, u8 *p) { return pcap_header(ev, p); }
""", tmp_path_factory.mktemp("cc"))

    def build(raw):
        buf = ctypes.create_string_buffer(PCAP_BUF)
        packed = abi.RAW_STRUCT.pack(*raw).ljust(abi.RAW_SIZE, b"\0")
        n = lib.header_of(packed, buf)
        return buf.raw[:n]
    return build


DECODER = Decoder(ReasonNames({}), 250)


def v4_mapped(addr):
    return b"\0" * 10 + b"\xff\xff" + addr


def addr_bytes(family):
    if family == 4:
        return st.binary(min_size=4, max_size=4).map(v4_mapped)
    return st.binary(min_size=16, max_size=16)


@st.composite
def raw_events(draw):
    family = draw(st.sampled_from([4, 6, 0]))
    u32 = st.integers(0, 2 ** 32 - 1)
    # every member zero, then those the header is made of
    zero = {n: b"\0" * int(f[:-1]) if f.endswith("s") else 0
            for n, f in abi.RAW_FIELDS}
    return abi.RawEvent(**dict(
        zero, ts_ns=draw(st.integers(0, 2 ** 63)), pid=1, tid=1,
        netns=draw(u32), reason=-1,
        seq=draw(u32), ack=draw(u32), sport=draw(st.integers(0, 65535)),
        dport=draw(st.integers(0, 65535)),
        saddr=draw(addr_bytes(family or 6)),
        daddr=draw(addr_bytes(family or 6)), family=family,
        kind=draw(st.sampled_from(sorted(abi.KIND_NAMES))),
        hook=draw(st.sampled_from(sorted(HOOK_NAMES))), state=1,
        flags=draw(st.integers(0, 0x3f)),
        seg_flags=draw(st.integers(0, 255)), comm=b"x".ljust(16, b"\0")))


@settings(max_examples=400, deadline=None)
@given(raw_events())
def test_c_and_python_build_the_same_header(c_header, raw):
    record = DECODER.record(raw)
    built = c_header(raw)
    if raw.family == 0:
        assert built == b""
        with pytest.raises(NotAPacket):
            header(record)
        return
    assert built == header(record)
    assert len(built) == (40 if raw.family == 4 else 60)


def record(**kw):
    base = {"kind": "sent", "hook": "tcp_v4_send_reset", "family": 4,
            "saddr": "10.0.0.1", "sport": 80, "daddr": "10.0.0.2",
            "dport": 40000, "seq": 0, "ack": 1001, "seg_flags": "SYN"}
    base.update(kw)
    return base


R, A = abi.TCPF_RST, abi.TCPF_ACK


@pytest.mark.parametrize("kw, flags", [
    ({"seg_flags": "SYN"}, R | A),                  # SYN to a closed port
    ({"seg_flags": "ACK"}, R),                      # seq = the segment's ack
    ({"seg_flags": "PSH|ACK"}, R),
    ({"seg_flags": "FIN"}, R | A),
    ({"hook": "tcp_send_active_reset", "seg_flags": None}, R | A),
    ({"hook": "tcp:tcp_send_reset", "seg_flags": None}, R | A),
    ({"hook": "nf_send_reset", "seg_flags": "SYN"}, R | A),
    ({"kind": "challenge_ack", "hook": "tcp_send_challenge_ack",
      "seg_flags": "SYN"}, A),
    ({"kind": "received", "hook": "tcp_reset", "seg_flags": "RST|ACK"},
     R | A),
    ({"kind": "received", "hook": "tcp_reset", "seg_flags": "RST"}, R),
    ({"kind": "received", "hook": "tcp:tcp_receive_reset",
      "seg_flags": None, "seq": None, "ack": None}, R),
    ({"hook": "net:net_dev_queue", "seg_flags": "RST|ACK"}, R | A),
    ({"hook": "net:net_dev_queue", "seg_flags": "RST"}, R),
])
def test_flags_on_the_wire(kw, flags):
    rec = record(**kw)
    assert wire_flags(rec) == flags
    assert header(rec)[33] == flags


@pytest.mark.parametrize("family, saddr, daddr", [
    (4, "198.18.3.1", "198.18.3.2"), (6, "2001:db8:3::1", "2001:db8:3::2")])
def test_header_fields_and_checksums(family, saddr, daddr):
    rec = record(family=family, saddr=saddr, daddr=daddr, sport=443,
                 dport=51000, seq=0x01020304, ack=0xa0b0c0d0)
    h = header(rec)
    ip_len = 20 if family == 4 else 40
    ip, tcp = h[:ip_len], h[ip_len:]
    src = ipaddress.ip_address(saddr).packed
    dst = ipaddress.ip_address(daddr).packed
    if family == 4:
        assert ip[0] == 0x45 and ip[2:4] == b"\x00\x28" and ip[9] == 6
        assert ip[12:16] == src and ip[16:20] == dst
        assert checksum(ip) == 0                  # a valid header checksum
    else:
        assert ip[0] >> 4 == 6 and ip[4:6] == b"\x00\x14" and ip[6] == 6
        assert ip[8:24] == src and ip[24:40] == dst
    assert tcp[:4] == bytes.fromhex("01bbc738")
    assert tcp[4:12] == bytes.fromhex("01020304a0b0c0d0")
    assert tcp[12] == 0x50 and tcp[13] == R | A
    pseudo = src + dst + bytes([0, 6, 0, 20])
    assert checksum(pseudo + tcp) == 0


@pytest.mark.parametrize("bad", [
    {"family": None}, {"family": 5}, {"saddr": None}, {"sport": None},
    {"saddr": "not an address"}, {"saddr": "::1"}, {"sport": 70000},
    {"seq": -1}, {"ack": "1"}, {"seq": True}, {"seg_flags": "SYN|BOGUS"},
])
def test_records_that_make_no_header(bad):
    with pytest.raises(NotAPacket):
        header(record(**bad))
