"""Field offsets from BTF (rsttrace.offsets) on synthetic kernels. The
kernels are described here, apart from offsets.FIELDS (the thing under
test): the members the kernel's headers declare, their nesting and sizes,
as in 6.1 (sk_flags in struct sock) and 6.18 (sk_flags moved into
sock_common as skc_flags). Offsets are made up (distinct, nested ones
added up); the real ones are checked against bpftool on the running kernel
(tests/integration/test_offsets_bpftool.py)."""

import os
import re

import pytest

from btfgen import Builder
from rsttrace.kernel import offsets
from rsttrace.kernel.btf import BTFError
from rsttrace.errors import RsttraceError
from rsttrace.kernel.offsets import FIELDS, HEADER_EXPRESSIONS

BPF_SOURCE = os.path.join(os.path.dirname(__file__), "..", "..", "bpf",
                          "rsttrace.bpf.c")

# struct -> {member: size in bytes, or {member: size} for a nested struct};
# include/net/sock.h, include/net/inet_sock.h, include/linux/tcp.h,
# include/linux/skbuff.h, include/linux/netdevice.h, include/net/
# net_namespace.h and include/linux/ns_common.h (possible_net_t and
# ns_common are the nested ones).
KERNEL_6_1 = {
    "sock_common": {"skc_daddr": 4, "skc_rcv_saddr": 4, "skc_dport": 2,
                    "skc_num": 2, "skc_family": 2, "skc_state": 1,
                    "skc_net": {"net": 8}, "skc_v6_daddr": 16,
                    "skc_v6_rcv_saddr": 16,
                    # in an anonymous union with skc_nulls_node
                    "skc_node": {"next": 8, "pprev": 8}},
    "sock": {"sk_flags": 8, "sk_lingertime": 8, "sk_ack_backlog": 4,
             "sk_max_ack_backlog": 4, "sk_socket": 8},
    # include/net/sock.h (struct socket_alloc: the socket and its inode),
    # include/net/request_sock.h (__req_common is a struct sock_common)
    "socket_alloc": {"vfs_inode": {"i_ino": 8}},
    "request_sock": {"__req_common": {"skc_listener": 8}},
    "inet_sock": {"inet_sport": 2},
    "tcp_sock": {"rcv_nxt": 4, "copied_seq": 4, "write_seq": 4,
                 "snd_nxt": 4, "snd_una": 4, "linger2": 4},
    "net": {"ns": {"inum": 4}},
    "sk_buff": {"head": 8, "data": 8, "len": 4, "transport_header": 2,
                "network_header": 2, "dev": 8, "sk": 8, "skb_iif": 4},
    "net_device": {"nd_net": {"net": 8}},
}
KERNEL_6_18 = dict(KERNEL_6_1, sock={
    "__sk_common": {"skc_flags": 8}, "sk_lingertime": 8,
    "sk_ack_backlog": 4, "sk_max_ack_backlog": 4, "sk_socket": 8})

# What each offset the BPF program reads is, in the kernel's terms: the
# field its C code means (bpf/rsttrace.bpf.c), per kernel.
MEANING = {
    "OFF_SKC_DADDR": ("sock_common", "skc_daddr"),
    "OFF_SKC_RCV_SADDR": ("sock_common", "skc_rcv_saddr"),
    "OFF_SKC_DPORT": ("sock_common", "skc_dport"),
    "OFF_SKC_NUM": ("sock_common", "skc_num"),
    "OFF_SKC_FAMILY": ("sock_common", "skc_family"),
    "OFF_SKC_STATE": ("sock_common", "skc_state"),
    "OFF_SKC_NET": ("sock_common", "skc_net.net"),
    "OFF_SKC_V6_DADDR": ("sock_common", "skc_v6_daddr"),
    "OFF_SKC_V6_RCV_SADDR": ("sock_common", "skc_v6_rcv_saddr"),
    "OFF_SKC_NODE_PPREV": ("sock_common", "skc_node.pprev"),
    "OFF_SK_FLAGS": ("sock", "sk_flags"),
    "OFF_SK_LINGERTIME": ("sock", "sk_lingertime"),
    "OFF_SK_ACK_BACKLOG": ("sock", "sk_ack_backlog"),
    "OFF_SK_MAX_ACK_BACKLOG": ("sock", "sk_max_ack_backlog"),
    "OFF_INET_SPORT": ("inet_sock", "inet_sport"),
    "OFF_TP_RCV_NXT": ("tcp_sock", "rcv_nxt"),
    "OFF_TP_COPIED_SEQ": ("tcp_sock", "copied_seq"),
    "OFF_TP_WRITE_SEQ": ("tcp_sock", "write_seq"),
    "OFF_TP_SND_NXT": ("tcp_sock", "snd_nxt"),
    "OFF_TP_SND_UNA": ("tcp_sock", "snd_una"),
    "OFF_TP_LINGER2": ("tcp_sock", "linger2"),
    "OFF_NET_INUM": ("net", "ns.inum"),
    "OFF_SKB_HEAD": ("sk_buff", "head"),
    "OFF_SKB_DATA": ("sk_buff", "data"),
    "OFF_SKB_LEN": ("sk_buff", "len"),
    "OFF_SKB_TRANSPORT_HEADER": ("sk_buff", "transport_header"),
    "OFF_SKB_NETWORK_HEADER": ("sk_buff", "network_header"),
    "OFF_SKB_DEV": ("sk_buff", "dev"),
    "OFF_SKB_SK": ("sk_buff", "sk"),
    "OFF_SKB_IIF": ("sk_buff", "skb_iif"),
    "OFF_DEV_NET": ("net_device", "nd_net.net"),
    "OFF_SK_SOCKET": ("sock", "sk_socket"),
    "OFF_SA_INO": ("socket_alloc", "vfs_inode.i_ino"),
    "OFF_RSK_LISTENER": ("request_sock", "__req_common.skc_listener"),
}
MEANING_6_18 = dict(MEANING, OFF_SK_FLAGS=("sock", "__sk_common.skc_flags"))


def generate(kernel=KERNEL_6_1, drop=(), sizes=None, bitfields=(),
             endian="<", linger_bit=5):
    """A BTF blob with the structs of `kernel` (a dict as KERNEL_6_1).

    drop: "struct.path"s left out; sizes: {"struct.path": size} changed;
    bitfields: "struct.path"s encoded as bitfields. Each struct begins with
    24 bytes of padding and members follow at distinct 8-byte-aligned
    offsets. Returns (BTF, {"struct.path": byte offset})."""
    sizes = sizes or {}
    b = Builder(endian)
    leaf_types = {}

    def leaf(size):
        if size not in leaf_types:
            if size == 16:
                leaf_types[size] = b.array(leaf(1), 16)
            elif size == 8:
                leaf_types[size] = b.ptr(0)
            else:
                leaf_types[size] = b.int("__u%d" % (size * 8), size)
        return leaf_types[size]

    found = {}

    def emit(name, tree, prefix, base):
        """Emit a struct for `tree`; return (type id, size in bytes)."""
        off = 24
        members = []
        for mname, sub in tree.items():
            path = prefix + mname
            if path in drop:
                continue
            if isinstance(sub, dict):
                tid, size = emit("%s_%s" % (name, mname), sub, path + ".",
                                 base + off)
                members.append((mname, tid, off * 8))
            else:
                size = sizes.get(path, sub)
                if path in bitfields:
                    members.append((mname, leaf(4), off * 8, 3))
                    size = 4
                else:
                    members.append((mname, leaf(size), off * 8))
                found[path] = base + off
            off += (size + 7) // 8 * 8 + 8
        return b.struct(name, off, members), off

    for struct, tree in kernel.items():
        emit(struct, tree, struct + ".", 0)
    b.enum("sock_flags", [("SOCK_DEAD", 0), ("SOCK_DONE", 1),
                          ("SOCK_LINGER", linger_bit)])
    return b.btf(), found


def expected_offsets(found, meaning=MEANING):
    return {macro: found["%s.%s" % sp] for macro, sp in meaning.items()}


def test_every_offset_the_program_reads_has_a_meaning():
    """The OFF_* macros bpf/rsttrace.bpf.c reads are exactly those
    MEANING describes and offsets.FIELDS resolves."""
    with open(BPF_SOURCE) as f:
        used = set(re.findall(r"\bOFF_[A-Z0-9_]+\b", f.read()))
    assert used == set(MEANING) == set(FIELDS)


@pytest.mark.parametrize("kernel, meaning", [(KERNEL_6_1, MEANING),
                                             (KERNEL_6_18, MEANING_6_18)],
                         ids=["6.1", "6.18"])
def test_kernels_as_they_are(kernel, meaning):
    kbtf, found = generate(kernel)
    got = offsets.from_btf(kbtf)
    assert {m: o.offset for m, o in got.items()} == expected_offsets(
        found, meaning)
    for macro, off in got.items():
        assert (off.struct, off.path) == meaning[macro]
    assert len(set(found.values())) > 5      # offsets really differ


@pytest.mark.parametrize("endian", ["<", ">"])
def test_all_fields(endian):
    kbtf, found = generate(endian=endian)
    got = offsets.from_btf(kbtf)
    expected = expected_offsets(found)
    sizes = {"%s.%s" % sp: size for sp, size in (
        (MEANING[m], s) for m, s in (("OFF_SKC_STATE", 1),
                                     ("OFF_SKC_DPORT", 2),
                                     ("OFF_SKC_V6_DADDR", 16),
                                     ("OFF_SK_FLAGS", 8),
                                     ("OFF_TP_LINGER2", 4)))}
    for macro, off in got.items():
        assert off.offset == expected[macro], macro
        assert off.macro == macro
        path = "%s.%s" % (off.struct, off.path)
        if path in sizes:
            assert off.size == sizes[path], macro


def test_nested_paths_add_up():
    kbtf, found = generate()
    got = offsets.from_btf(kbtf)
    # skc_net.net, ns.inum, nd_net.net are two levels deep
    for macro in ("OFF_SKC_NET", "OFF_NET_INUM", "OFF_DEV_NET"):
        assert got[macro].offset == expected_offsets(found)[macro]
        assert got[macro].offset >= 24 + 24     # padding of both levels


def test_sk_flags_from_sock_common():
    """6.18 keeps sk_flags in sock_common (`#define sk_flags
    __sk_common.skc_flags`): the second path is used."""
    kbtf, found = generate(KERNEL_6_18)
    with pytest.raises(BTFError):
        kbtf.member("sock", "sk_flags")
    got = offsets.from_btf(kbtf)["OFF_SK_FLAGS"]
    assert got.path == "__sk_common.skc_flags"
    assert got.offset == found["sock.__sk_common.skc_flags"]
    assert got.offset == kbtf.offsetof("sock", "__sk_common.skc_flags")
    assert got.size == 8


def test_first_path_wins_when_both_exist():
    both = dict(KERNEL_6_1, sock=dict(KERNEL_6_1["sock"],
                                      __sk_common={"skc_flags": 8}))
    kbtf, found = generate(both)
    got = offsets.from_btf(kbtf)["OFF_SK_FLAGS"]
    assert got.path == "sk_flags"
    assert got.offset == found["sock.sk_flags"]
    assert got.offset != found["sock.__sk_common.skc_flags"]


@pytest.mark.parametrize("member", ["tcp_sock.snd_una", "sock_common.skc_net",
                                    "sock.sk_flags", "net_device.nd_net.net"])
def test_missing_field(member):
    kbtf, _ = generate(drop=[member])
    struct = member.split(".")[0]
    with pytest.raises(RsttraceError) as e:
        offsets.from_btf(kbtf)
    msg = str(e.value)
    assert "this kernel's BTF has no %s." % struct in msg
    assert member.split(".", 1)[1].split(".")[0] in msg
    if member == "sock.sk_flags":       # both paths are named
        assert "sk_flags or __sk_common.skc_flags" in msg
    assert "\n" not in msg


def test_missing_struct():
    kbtf, _ = generate()
    fields = dict(FIELDS, OFF_X=("no_such_struct", ["x"], 4))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(offsets, "FIELDS", fields)
        with pytest.raises(RsttraceError, match="no_such_struct.x"):
            offsets.from_btf(kbtf)


def test_wrong_size():
    kbtf, _ = generate(sizes={"sock_common.skc_state": 2})
    with pytest.raises(RsttraceError) as e:
        offsets.from_btf(kbtf)
    msg = str(e.value)
    assert "sock_common.skc_state" in msg
    assert "2 bytes" in msg and "expects 1" in msg


def test_bitfield_field():
    kbtf, _ = generate(bitfields=["sock_common.skc_family"])
    with pytest.raises(RsttraceError, match="sock_common.skc_family is a "
                       "bitfield"):
        offsets.from_btf(kbtf)


def test_header_expressions_cover_fields():
    assert set(HEADER_EXPRESSIONS) == set(FIELDS)
    for macro, (struct, paths, _) in FIELDS.items():
        assert HEADER_EXPRESSIONS[macro].startswith(
            "offsetof(struct %s, " % struct), macro


def test_cflags_from_btf():
    kbtf, found = generate(linger_bit=7)
    flags = offsets.cflags(kbtf)
    for macro, off in expected_offsets(found).items():
        assert "-D%s=%d" % (macro, off) in flags
    assert "-DSOCK_LINGER_BIT=7" in flags
    assert "-DOFFSETS_FROM_HEADERS" not in flags
    assert len(flags) == len(MEANING) + 1


def test_linger_bit_default():
    b = Builder()
    b.int("int", 4, signed=True)
    assert offsets.sock_linger_bit(b.btf()) == 4
    b.enum("sock_flags", [("SOCK_DEAD", 0)])
    assert offsets.sock_linger_bit(b.btf()) == 4


def test_cflags_without_btf():
    flags = offsets.cflags(None)
    assert flags[0] == "-DOFFSETS_FROM_HEADERS"
    for macro, expr in HEADER_EXPRESSIONS.items():
        assert "-D%s=%s" % (macro, expr) in flags
    assert "-DSOCK_LINGER_BIT=SOCK_LINGER" in flags
    assert len(flags) == len(HEADER_EXPRESSIONS) + 2


def test_offset_repr():
    kbtf, _ = generate()
    assert repr(offsets.from_btf(kbtf)["OFF_NET_INUM"]) == \
        "OFF_NET_INUM=48 (net.ns.inum)"


def test_error_lines_exact():
    """Each way BTF can disappoint, in one whole line."""
    cases = [
        (dict(bitfields=["sock_common.skc_family"]),
         "sock_common.skc_family is a bitfield in this kernel: rsttrace "
         "cannot read it; please report the kernel version"),
        (dict(sizes={"sock_common.skc_state": 2}),
         "sock_common.skc_state is 2 bytes in this kernel, rsttrace expects "
         "1: please report the kernel version"),
        (dict(drop=["sock.sk_flags"]),
         "this kernel's BTF has no sock.sk_flags or __sk_common.skc_flags: "
         "please report the kernel version"),
    ]
    for kw, line in cases:
        kbtf, _ = generate(**kw)
        with pytest.raises(RsttraceError) as e:
            offsets.from_btf(kbtf)
        assert str(e.value) == line
