"""rsttrace/abi.py against bpf/rsttrace.h: every constant and struct layout
the BPF program shares with Python, read from the header itself. The one
test of the mirror: a change to either side alone fails here."""

import ctypes
import ipaddress
import os
import re
import struct

import pytest

from rsttrace import abi
from rsttrace.trace import filters, hooks

HEADER = os.path.join(os.path.dirname(__file__), "..", "..", "bpf",
                      "rsttrace.h")


def header_text():
    with open(HEADER) as f:
        return f.read()


def rst_event_fields():
    """Member names of struct rst_event, read from bpf/rsttrace.h."""
    return [name for name, _, _ in rst_event_members()]




def defines():
    """{NAME: value} of the header's numeric #defines."""
    return {m.group(1): int(m.group(2), 0) for m in re.finditer(
        r"^#define (\w+) (0x[0-9a-fA-F]+|\d+)\b", header_text(), re.M)}


def struct_members(name):
    """[(member, C type, array length or None)] of a struct in the header."""
    body = re.search(r"struct %s \{(.*?)\};" % name, header_text(), re.S)
    out = []
    for line in body.group(1).splitlines():
        line = re.sub(r"/\*.*?\*/", "", line).strip()
        m = re.match(r"(\w+)\s+(\w+)(?:\[(\d+)\])?;", line)
        if m:
            out.append((m.group(2), m.group(1),
                        int(m.group(3)) if m.group(3) else None))
    return out


def rst_event_members():
    return struct_members("rst_event")


EVENT_FIELDS = rst_event_fields()


def test_every_define_is_mirrored():
    for name, value in defines().items():
        assert getattr(abi, name, None) == value, name


def test_every_mirrored_constant_is_in_the_header():
    defs = defines()
    prefixes = ("AF_", "TCPS_", "TCPF_", "KIND_", "HOOK_ID_", "EV_",
                "FACT_", "COUNT_", "FILTER_MAX", "STACK_DEPTH")
    for name in dir(abi):
        if name.startswith(prefixes) and name not in ("KIND_NAMES",):
            assert name in defs, name


def test_names_tables_follow_the_constants():
    assert abi.KIND_NAMES == {abi.KIND_SENT: "sent",
                              abi.KIND_RECEIVED: "received",
                              abi.KIND_CHALLENGE_ACK: "challenge_ack"}
    assert {b for b, _ in abi.TCP_FLAG_NAMES} == {
        getattr(abi, n) for n in dir(abi) if n.startswith("TCPF_")}
    assert abi.TCP_STATES[abi.TCPS_LISTEN] == "LISTEN"
    assert abi.TCP_STATES[abi.TCPS_TIME_WAIT] == "TIME_WAIT"


def test_every_hook_has_its_id():
    defs = defines()
    ids = set()
    for h in hooks.ALL_HOOKS:
        assert defs["HOOK_ID_" + h.key] == h.hook_id, h.key
        ids.add(h.hook_id)
    assert ids == {v for k, v in defs.items() if k.startswith("HOOK_ID_")}


def test_filter_limit():
    assert filters.FILTER_MAX == abi.FILTER_MAX


C_TYPES = {"u64": ("Q", ctypes.c_uint64), "u32": ("I", ctypes.c_uint32),
           "s32": ("i", ctypes.c_int32), "u16": ("H", ctypes.c_uint16),
           "u8": ("B", ctypes.c_uint8), "char": ("B", ctypes.c_char)}


def test_raw_layout_is_the_header_struct():
    members = rst_event_members()
    assert [n for n, _ in abi.RAW_FIELDS] == [n for n, _, _ in members]
    for (name, fmt), (_, ctype, length) in zip(abi.RAW_FIELDS, members):
        want = "%ds" % length if length else C_TYPES[ctype][0]
        assert fmt == want, name


def c_struct():
    """struct rst_event as a C compiler lays it out (ctypes)."""
    fields = []
    for name, ctype, length in rst_event_members():
        t = C_TYPES[ctype][1]
        fields.append((name, t * length if length else t))
    return type("rst_event", (ctypes.Structure,), {"_fields_": fields})


def test_raw_offsets_and_size_are_the_c_layout():
    cls = c_struct()
    assert ctypes.sizeof(cls) == abi.RAW_SIZE
    prefix = "@"
    for name, fmt in abi.RAW_FIELDS:
        offset = struct.calcsize(prefix + fmt) - struct.calcsize("@" + fmt)
        assert offset == getattr(cls, name).offset, name
        prefix += fmt


def test_unpack_reads_what_the_kernel_wrote():
    ev = c_struct()()
    ev.ts_ns, ev.pid, ev.reason = 2 ** 40 + 7, 4321, -1
    ev.stack_key = 2 ** 63 + 5
    ev.linger2, ev.sport, ev.dport, ev.seg_flags = -1, 443, 50000, 0x14
    ev.saddr[:] = list(ipaddress.IPv6Address("2001:db8::1").packed)
    ev.comm = b"nginx"
    raw = abi.unpack(ctypes.addressof(ev), ctypes.sizeof(ev))
    assert (raw.ts_ns, raw.pid, raw.stack_key, raw.reason) == (
        2 ** 40 + 7, 4321, 2 ** 63 + 5, -1)
    assert (raw.linger2, raw.sport, raw.dport, raw.seg_flags) == (
        -1, 443, 50000, 0x14)
    assert raw.saddr == ipaddress.IPv6Address("2001:db8::1").packed
    assert raw.comm == b"nginx".ljust(16, b"\0")
    with pytest.raises(ValueError):
        abi.unpack(ctypes.addressof(ev), 100)


def test_agg_key_layout():
    members = struct_members("agg_key")
    assert [n for n, _ in abi.AGG_KEY_FIELDS] == [n for n, _, _ in members]
    for (name, fmt), (_, ctype, length) in zip(abi.AGG_KEY_FIELDS, members):
        want = "%ds" % length if length else C_TYPES[ctype][0]
        assert fmt == want, name
    # no holes: bcc's key class and the C struct agree on its size
    assert struct.calcsize("@" + "".join(f for _, f in abi.AGG_KEY_FIELDS)) \
        == 32


def test_bpf_source_names_only_mirrored_macros():
    """Every FACT_/EV_/KIND_/HOOK_ID_ name the program uses is defined."""
    with open(os.path.join(os.path.dirname(HEADER), "rsttrace.bpf.c")) as f:
        used = set(re.findall(r"\b((?:FACT|EV|KIND|HOOK_ID|COUNT)_[A-Z0-9_]+)",
                              f.read()))
    assert used and used <= set(defines()), used - set(defines())
