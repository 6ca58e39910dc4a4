"""The pcap filter expression translator (rsttrace/trace/pcap_filter.py):
libpcap compiles each expression to classic BPF, the translator turns it
into C, gcc builds that C here, and on thousands of headers (rebuilt RSTs,
then corrupted and cut short) it must keep exactly what libpcap's own
interpreter, pcap_offline_filter(), keeps. The kernel runs the same C."""

import ctypes
import random
import re

import pytest

from ccompile import shared_library
from rsttrace.errors import UsageError
from rsttrace.output.wire_header import header
from rsttrace.trace import pcap_filter

PCAP_BUF = 64

EXPRESSIONS = [
    "tcp", "ip", "ip6", "not ip6", "tcp port 443", "port 443 or port 80",
    "src port 443", "dst port 51000", "portrange 1000-2000",
    "tcp src portrange 1-1024", "host 10.0.0.1",
    "src host 10.0.0.1 and dst host 10.0.0.2", "net 10.0.0.0/8",
    "dst net 198.18.0.0/15", "ip6 host 2001:db8::1", "ip6 net 2001:db8::/32",
    "ip6 and dst port 443", "ip proto 6", "ip6 proto 6",
    "tcp and (src net 10.0.0.0/24 or dst port 80) and not dst port 81",
    "tcp[tcpflags] & tcp-rst != 0",
    "tcp[tcpflags] & (tcp-rst|tcp-ack) == tcp-rst",
    "tcp[tcpflags] == tcp-ack", "tcp[4:4] = 0", "tcp[8:4] > 1000",
    "ip6[53] & 0x10 != 0", "ip6[40:2] == 443", "ip[8] = 64", "len > 40",
    "len <= 40", "greater 50", "less 41", "ip[2:2] * 3 / 2 = 60",
    "tcp[0:2] - tcp[2:2] > 100", "tcp[0:2] ^ 0xff = 0x1bb ^ 0xff",
    "tcp[12] >> 4 = 5", "ip[0] << 1 = 0x8a", "-tcp[0:2] > 5",
    "(tcp[0:2] & 0xff) * 2 > tcp[2:1]", "tcp[0:2] / tcp[2:1] > 3",
    "tcp[0:2] % tcp[3:1] = 0", "tcp[0:2] << tcp[13] > 100",
    "tcp[0:2] >> tcp[13] > 1", "ip[0] & 0xf != 5", "ip[39] = 0 or ip[60] = 0",
    "tcp[tcpflags] & tcp-syn != 0 or tcp[16:2] = 0",
    "tcp[len - 21] = 0", "ip[ip[0] & 0xf] = 0",
]

ADDRS = {4: ["10.0.0.1", "10.0.0.2", "198.18.1.2", "192.0.2.7"],
         6: ["2001:db8::1", "2001:db8:1::2", "::1", "fe80::1"]}
PORTS = [443, 80, 81, 51000, 1500, 22, 0, 65535]
FLAGS = [None, "SYN", "ACK", "RST", "RST|ACK", "FIN|ACK", "PSH|ACK", "none"]


def headers(count, seed=14):
    """Rebuilt headers of varied events, then corrupted and cut short."""
    rnd = random.Random(seed)
    out = []
    for _ in range(count):
        family = rnd.choice((4, 6))
        rec = {"kind": rnd.choice(("sent", "received", "challenge_ack")),
               "hook": rnd.choice(("tcp_v4_send_reset", "tcp_reset",
                                   "tcp_send_active_reset",
                                   "net:net_dev_queue")),
               "family": family, "saddr": rnd.choice(ADDRS[family]),
               "daddr": rnd.choice(ADDRS[family]),
               "sport": rnd.choice(PORTS + [rnd.randrange(65536)]),
               "dport": rnd.choice(PORTS + [rnd.randrange(65536)]),
               "seq": rnd.choice((None, 0, rnd.randrange(2 ** 32))),
               "ack": rnd.choice((0, 1001, rnd.randrange(2 ** 32))),
               "seg_flags": rnd.choice(FLAGS)}
        h = bytearray(header(rec))
        if rnd.random() < 0.4:
            for _ in range(rnd.randrange(1, 4)):
                h[rnd.randrange(len(h))] = rnd.randrange(256)
        if rnd.random() < 0.2:
            del h[rnd.randrange(len(h) + 1):]
        out.append(bytes(h))
    return out


class _PktHdr(ctypes.Structure):
    _fields_ = [("sec", ctypes.c_long), ("usec", ctypes.c_long),
                ("caplen", ctypes.c_uint32), ("len", ctypes.c_uint32)]


def libpcap_verdict(insns):
    """libpcap's own interpreter on one compiled program."""
    lib = pcap_filter.libpcap()
    lib.pcap_offline_filter.argtypes = [
        ctypes.POINTER(pcap_filter._Program), ctypes.POINTER(_PktHdr),
        ctypes.c_char_p]
    arr = (pcap_filter._Insn * len(insns))(
        *[pcap_filter._Insn(*i) for i in insns])
    prog = pcap_filter._Program(len(insns), arr)

    def run(pkt):
        hdr = _PktHdr(0, 0, len(pkt), len(pkt))
        return lib.pcap_offline_filter(ctypes.byref(prog), ctypes.byref(hdr),
                                       pkt) != 0
    run.keep = arr
    return run


@pytest.fixture(scope="module")
def translated(tmp_path_factory):
    """{expression: (C verdict, libpcap verdict)}, all built at once."""
    programs = [pcap_filter.compile_expression(e) for e in EXPRESSIONS]
    source = "".join(
        pcap_filter.match_function(e, p).replace(
            "pcap_match", "match%d" % i) +
        "int run%d(const u8 *p, u32 len) { return match%d(p, len); }\n"
        % (i, i) for i, (e, p) in enumerate(zip(EXPRESSIONS, programs)))
    lib = shared_library("#define PCAP_BUF %d\n" % PCAP_BUF + source,
                         tmp_path_factory.mktemp("cc"))

    def c_verdict(fn):
        def run(pkt):
            buf = ctypes.create_string_buffer(pkt.ljust(PCAP_BUF + 4, b"\0"),
                                              PCAP_BUF + 4)
            return fn(buf, len(pkt)) != 0
        return run
    return {e: (c_verdict(getattr(lib, "run%d" % i)), libpcap_verdict(p))
            for i, (e, p) in enumerate(zip(EXPRESSIONS, programs))}


HEADERS = headers(2500)


@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_translation_keeps_what_libpcap_keeps(translated, expression):
    ours, theirs = translated[expression]
    kept = 0
    for pkt in HEADERS:
        want = theirs(pkt)
        assert ours(pkt) == want, (expression, pkt.hex())
        kept += want
    # the corpus tells keeping from dropping for every expression
    assert 0 < kept < len(HEADERS), (expression, kept)


def test_generated_c_jumps_only_forward():
    text = pcap_filter.match_function(
        "tcp port 443 or ip6", pcap_filter.compile_expression(
            "tcp port 443 or ip6"))
    lines = text.splitlines()
    where = {int(m.group(1)): n for n, line in enumerate(lines)
             for m in [re.match(r"^I(\d+):$", line)] if m}
    gotos = [(n, int(t)) for n, line in enumerate(lines)
             for t in re.findall(r"goto I(\d+);", line)]
    assert gotos and set(where) == {t for _, t in gotos}
    assert all(where[t] > n for n, t in gotos)
    assert "for (" not in text and "while" not in text


@pytest.mark.parametrize("expression, message", [
    ("tcp prot 443", "syntax error"),
    ("host 300.1.1.1", "300.1.1.1"),
    ("ip6 and tcp[13] & 4 != 0", "expression rejects all packets"),
    ("ether host 00:11:22:33:44:55", "ether"),
])
def test_bad_expression_carries_libpcaps_message(expression, message):
    with pytest.raises(UsageError) as e:
        pcap_filter.compile_expression(expression)
    assert e.value.exit_code == 2
    assert message in str(e.value) and repr(expression) in str(e.value)


def test_protochain_loops_and_is_refused():
    insns = pcap_filter.compile_expression("ip6 protochain 6")
    assert any(code & 7 == pcap_filter.JMP and k >= 1 << 31
               for code, _, _, k in insns)
    with pytest.raises(UsageError, match="loops"):
        pcap_filter.match_function("ip6 protochain 6", insns)


def test_c_code_names_the_expression_and_defines_pcap_filter():
    text = pcap_filter.c_code("tcp port 443")
    assert "'tcp port 443'" in text
    assert "static __always_inline int pcap_filter(" in text
    assert pcap_filter._comment_safe("a */ b") == "'a * / b'"


@pytest.mark.parametrize("insns, why", [
    ([(0x06, 0, 0, 1)] * (pcap_filter.MAX_INSNS + 1), "instructions"),
    ([(0x15, 5, 0, 1), (0x06, 0, 0, 1)], "a jump beyond its end"),
    ([(0x02, 0, 0, 16), (0x06, 0, 0, 1)], "scratch memory word 16"),
    ([(0x21, 0, 0, 0), (0x06, 0, 0, 1)], "instruction 0x21"),  # ldx [k]
    ([(0xff, 0, 0, 0), (0x06, 0, 0, 1)], "instruction 0xff"),
    ([(0x00, 0, 0, 0)], "does not end in a return"),
])
def test_programs_the_translation_refuses(insns, why):
    with pytest.raises(UsageError, match=re.escape(why)):
        pcap_filter.match_function("x", insns)
