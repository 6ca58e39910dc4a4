"""rsttrace.btf on synthetic BTF blobs (tests/unit/btfgen.py), in both byte
orders: member offsets through anonymous members and typedefs, bitfields,
enums, function and tracepoint prototypes, type spelling, malformed blobs."""

import struct

import pytest

from btfgen import Builder
from rsttrace.kernel import btf as btfmod
from rsttrace.kernel.btf import BTF, BTFError


def build_kernel(endian="<"):
    """A miniature vmlinux BTF. Returns (builder, {name: type id})."""
    b = Builder(endian)
    t = {}
    t["u8"] = b.int("unsigned char", 1)
    t["u16"] = b.int("short unsigned int", 2)
    t["u32"] = b.u32()
    t["int"] = b.int("int", 4, signed=True)
    t["u64"] = b.int("long long unsigned int", 8)
    t["ulong"] = b.int("long unsigned int", 8)
    t["bool"] = b.int("_Bool", 1, bool_=True)
    t["__u32"] = b.typedef("__u32", t["u32"])
    t["__be32"] = b.typedef("__be32", t["__u32"])
    t["__be16"] = b.typedef("__be16", t["u16"])
    t["void_p"] = b.ptr(0)
    t["float"] = b.float("double", 8)

    # struct net { ...; struct ns_common ns @ byte 16; }
    t["ns_common"] = b.struct("ns_common", 24, [
        ("stashed", t["void_p"], 0),
        ("ops", t["void_p"], 64),
        ("inum", t["u32"], 128),
    ])
    t["net"] = b.struct("net", 64, [
        ("passive", t["int"], 0),
        ("ns", t["ns_common"], 128),
    ])
    t["net_p"] = b.ptr(t["net"])
    # typedef struct { struct net *net; } possible_net_t;
    t["anon_net"] = b.struct("", 8, [("net", t["net_p"], 0)])
    t["possible_net_t"] = b.typedef("possible_net_t", t["anon_net"])

    # struct sock_common, shaped like include/net/sock.h
    addrs = b.struct("", 8, [("skc_daddr", t["__be32"], 0),
                             ("skc_rcv_saddr", t["__be32"], 32)])
    addrpair = b.union("", 8, [("skc_addrpair", t["u64"], 0),
                               ("", addrs, 0)])
    ports = b.struct("", 4, [("skc_dport", t["__be16"], 0),
                             ("skc_num", t["u16"], 16)])
    portpair = b.union("", 4, [("skc_portpair", t["u32"], 0),
                               ("", ports, 0)])
    t["v_u8"] = b.volatile(t["u8"])
    t["u8x16"] = b.array(t["u8"], 16)
    t["sock_common"] = b.struct("sock_common", 136, [
        ("", addrpair, 0),                      # byte 0
        ("skc_hash", t["u32"], 64),             # byte 8
        ("", portpair, 96),                     # byte 12
        ("skc_family", t["u16"], 128, 0),       # byte 16
        ("skc_state", t["v_u8"], 144, 0),       # byte 18
        ("skc_reuse", t["u8"], 152, 4),         # bitfield
        ("skc_reuseport", t["u8"], 156, 1),     # bitfield
        ("skc_bound_dev_if", t["int"], 160, 0),  # byte 20
        ("skc_net", t["possible_net_t"], 192, 0),  # byte 24
        ("skc_v6_daddr", t["u8x16"], 256, 0),   # byte 32
        ("skc_flags", t["ulong"], 384, 0),      # byte 48
    ])
    t["sock"] = b.struct("sock", 760, [
        ("__sk_common", t["sock_common"], 0),
        ("sk_lingertime", t["ulong"], 8 * 200),
    ])
    t["sk_buff"] = b.struct("sk_buff", 232, [
        ("len", t["u32"], 8 * 112),
        ("misaligned", t["u32"], 8 * 116 + 3),  # no bitfield size, odd bits
    ])
    t["sock_p"] = b.ptr(t["sock"])
    t["sock_pp"] = b.ptr(t["sock_p"])
    t["const_sock"] = b.const(t["sock"])
    t["const_sock_p"] = b.ptr(t["const_sock"])
    t["skb_p"] = b.ptr(t["sk_buff"])
    t["const_skb"] = b.const(t["sk_buff"])
    t["const_skb_p"] = b.ptr(t["const_skb"])
    t["union_only"] = b.union("bpf_attr", 144, [("map_type", t["u32"], 0)])

    # forward declarations
    t["fwd_req"] = b.fwd("request_sock")
    t["fwd_union"] = b.fwd("some_union", union=True)

    # enums: signed with negatives, unsigned with the top bit, 64-bit ones
    t["reason"] = b.enum("sk_rst_reason", [
        ("SK_RST_REASON_NOT_SPECIFIED", 0), ("SK_RST_REASON_NO_SOCKET", 1),
        ("SK_RST_REASON_TCP_FLAGS", 2)])
    t["neg"] = b.enum("neg_enum", [("NEG_TWO", -2), ("NEG_ONE", -1),
                                    ("POS_THREE", 3)])
    t["big_u32"] = b.enum("big_u32", [("TOP_BIT", 0xFFFFFFFF)], signed=False)
    t["e64"] = b.enum64("wide", [("WIDE_SMALL", 1), ("WIDE_BIG", 1 << 40),
                                 ("WIDE_TOP", (1 << 64) - 1)], signed=False)
    t["e64s"] = b.enum64("wide_signed", [("WS_NEG", -5),
                                         ("WS_HUGE", -(1 << 40))])
    t["reason_t"] = b.typedef("sk_rst_reason_t", t["reason"])

    # functions
    t["proto_v4"] = b.func_proto(0, [("sk", t["const_sock_p"]),
                                     ("skb", t["skb_p"]),
                                     ("reason", t["reason"])])
    t["f_v4"] = b.func("tcp_v4_send_reset", t["proto_v4"])
    t["proto_void"] = b.func_proto(t["int"], [])
    t["f_void"] = b.func("no_args", t["proto_void"], linkage=0)

    # raw tracepoint: typedef void (*btf_trace_tcp_send_reset)(void *,
    #                   const struct sock *, const struct sk_buff *, enum ..)
    t["tp_proto"] = b.func_proto(0, [("", t["void_p"]),
                                     ("", t["const_sock_p"]),
                                     ("", t["const_skb_p"]),
                                     ("", t["reason"])])
    t["tp_ptr"] = b.ptr(t["tp_proto"])
    t["btf_trace"] = b.typedef("btf_trace_tcp_send_reset", t["tp_ptr"])
    t["btf_trace_bad"] = b.typedef("btf_trace_not_a_pointer", t["int"])

    # kinds rsttrace skips but must step over correctly
    t["var"] = b.var("some_percpu_var", t["int"])
    t["datasec"] = b.datasec(".data..percpu", 4, [(t["var"], 0, 4)])
    t["decl_tag"] = b.decl_tag("user", t["f_v4"], 0)
    t["type_tag"] = b.type_tag("rcu", t["sock"])
    t["restrict"] = b.restrict(t["sock_p"])
    # a type after all of them, to prove the index stayed aligned
    t["last"] = b.struct("after_everything", 4, [("x", t["u32"], 0)])
    return b, t


@pytest.fixture(params=["<", ">"], ids=["little", "big"])
def kern(request):
    b, t = build_kernel(request.param)
    return BTF(b.blob()), t


# -- indexing -------------------------------------------------------------

def test_every_type_indexed_and_named(kern):
    k, t = kern
    assert k.find("after_everything", btfmod.KIND_STRUCT) == t["last"]
    assert k.find("sock", btfmod.KIND_STRUCT) == t["sock"]
    assert k.find("tcp_v4_send_reset", btfmod.KIND_FUNC) == t["f_v4"]
    assert k.kind(t["datasec"]) == btfmod.KIND_DATASEC
    assert k.kind(t["e64"]) == btfmod.KIND_ENUM64
    assert k.name(t["sock"]) == "sock"
    assert k.name(0) == "void"
    assert k.kind(0) == 0
    assert k.has("sock") and not k.has("sock", btfmod.KIND_UNION)
    assert not k.has("no_such_type")
    assert k.find("no_such_type", btfmod.KIND_STRUCT) is None


def test_bad_type_id(kern):
    k, t = kern
    with pytest.raises(BTFError):
        k.kind(t["last"] + 1)
    with pytest.raises(BTFError):
        k.name(-3)


# -- members and offsets --------------------------------------------------

def test_offsetof_through_anonymous_union_and_struct(kern):
    k, _ = kern
    assert k.offsetof("sock_common", "skc_daddr") == 0
    assert k.offsetof("sock_common", "skc_rcv_saddr") == 4
    assert k.offsetof("sock_common", "skc_addrpair") == 0
    assert k.offsetof("sock_common", "skc_portpair") == 12
    assert k.offsetof("sock_common", "skc_dport") == 12
    assert k.offsetof("sock_common", "skc_num") == 14
    assert k.offsetof("sock_common", "skc_family") == 16
    assert k.offsetof("sock_common", "skc_state") == 18
    assert k.offsetof("sock_common", "skc_bound_dev_if") == 20


def test_dotted_path_through_typedefd_anonymous_struct(kern):
    k, t = kern
    assert k.offsetof("sock_common", "skc_net") == 24
    assert k.offsetof("sock_common", "skc_net.net") == 24
    bit_off, bits, tid = k.member("sock_common", "skc_net.net")
    assert (bit_off, bits, tid) == (192, 0, t["net_p"])
    assert k.describe(tid) == "struct net *"
    assert k.size(tid) == 8


def test_dotted_path_accumulates_offsets(kern):
    k, _ = kern
    assert k.offsetof("net", "ns.inum") == 16 + 16
    assert k.offsetof("sock", "__sk_common.skc_flags") == 48
    assert k.offsetof("sock", "__sk_common.skc_num") == 14
    assert k.offsetof("sock", "__sk_common.skc_net.net") == 24
    assert k.offsetof("sock", "sk_lingertime") == 200


def test_member_type_is_the_declared_one(kern):
    k, t = kern
    assert k.member("sock_common", "skc_daddr")[2] == t["__be32"]
    assert k.size(k.member("sock_common", "skc_daddr")[2]) == 4
    assert k.size(k.member("sock_common", "skc_state")[2]) == 1  # volatile
    assert k.size(k.member("sock_common", "skc_v6_daddr")[2]) == 16  # array


def test_bitfield_member(kern):
    k, _ = kern
    assert k.member("sock_common", "skc_reuse")[:2] == (152, 4)
    assert k.member("sock_common", "skc_reuseport")[:2] == (156, 1)
    with pytest.raises(BTFError, match="bitfield"):
        k.offsetof("sock_common", "skc_reuse")
    with pytest.raises(BTFError, match="bitfield"):
        k.offsetof("sock_common", "skc_reuseport")


def test_unaligned_member_without_bitfield_size(kern):
    k, _ = kern
    with pytest.raises(BTFError, match="bitfield"):
        k.offsetof("sk_buff", "misaligned")
    assert k.offsetof("sk_buff", "len") == 112


def test_missing_member_and_struct(kern):
    k, _ = kern
    with pytest.raises(BTFError, match="no member"):
        k.offsetof("sock_common", "skc_nope")
    with pytest.raises(BTFError, match="no member"):
        k.offsetof("sock_common", "skc_net.nope")
    with pytest.raises(BTFError, match="not in this kernel"):
        k.offsetof("no_such_struct", "x")
    # a forward declaration is not a complete struct
    with pytest.raises(BTFError):
        k.struct_id("request_sock")


def test_struct_id_finds_unions(kern):
    k, t = kern
    assert k.struct_id("bpf_attr") == t["union_only"]
    assert k.offsetof("bpf_attr", "map_type") == 0


def test_members_of_non_struct(kern):
    k, t = kern
    with pytest.raises(BTFError):
        k.members(t["int"])
    # through a typedef it works
    assert [m.name for m in k.members(t["possible_net_t"])] == ["net"]


# -- sizes ------------------------------------------------------------------

def test_size(kern):
    k, t = kern
    assert k.size(t["u8"]) == 1
    assert k.size(t["u16"]) == 2
    assert k.size(t["__be32"]) == 4          # typedef of typedef
    assert k.size(t["u64"]) == 8
    assert k.size(t["sock_common"]) == 136
    assert k.size(t["possible_net_t"]) == 8
    assert k.size(t["sock_p"]) == 8
    assert k.size(t["const_sock"]) == 760
    assert k.size(t["u8x16"]) == 16
    assert k.size(t["reason"]) == 4
    assert k.size(t["e64"]) == 8
    assert k.size(t["float"]) == 8
    with pytest.raises(BTFError):
        k.size(t["proto_v4"])


# -- enums ------------------------------------------------------------------

def test_enum(kern):
    k, _ = kern
    assert k.enum("sk_rst_reason") == {
        0: "SK_RST_REASON_NOT_SPECIFIED", 1: "SK_RST_REASON_NO_SOCKET",
        2: "SK_RST_REASON_TCP_FLAGS"}


def test_enum_negative_values(kern):
    k, _ = kern
    assert k.enum("neg_enum") == {-2: "NEG_TWO", -1: "NEG_ONE",
                                  3: "POS_THREE"}


def test_enum_unsigned_top_bit(kern):
    k, _ = kern
    assert k.enum("big_u32") == {0xFFFFFFFF: "TOP_BIT"}


def test_enum64(kern):
    k, _ = kern
    assert k.enum("wide") == {1: "WIDE_SMALL", 1 << 40: "WIDE_BIG",
                              (1 << 64) - 1: "WIDE_TOP"}
    assert k.enum("wide_signed") == {-5: "WS_NEG", -(1 << 40): "WS_HUGE"}


def test_enum_missing(kern):
    k, _ = kern
    with pytest.raises(BTFError, match="enum nope"):
        k.enum("nope")
    # a typedef of the enum is not the enum
    with pytest.raises(BTFError):
        k.enum("sk_rst_reason_t")


def test_enumerator(kern):
    k, _ = kern
    assert k.enumerator("SK_RST_REASON_TCP_FLAGS") == 2
    assert k.enumerator("NEG_ONE") == -1
    assert k.enumerator("WIDE_BIG") == 1 << 40
    with pytest.raises(BTFError, match="NO_SUCH"):
        k.enumerator("NO_SUCH")


# -- functions and tracepoints ----------------------------------------------

def test_func_params(kern):
    k, t = kern
    params = k.func_params("tcp_v4_send_reset")
    assert [n for n, _ in params] == ["sk", "skb", "reason"]
    assert [k.describe(tid) for _, tid in params] == [
        "struct sock *", "struct sk_buff *", "enum sk_rst_reason"]
    assert params[0][1] == t["const_sock_p"]
    assert k.func_params("no_args") == []
    assert k.func_params("not_a_function") is None


def test_proto_params_rejects_non_prototypes(kern):
    k, t = kern
    with pytest.raises(BTFError, match="prototype"):
        k.proto_params(t["sock"])


def test_tracepoint_params_drop_the_data_pointer(kern):
    k, t = kern
    params = k.tracepoint_params("tcp_send_reset")
    assert params == [t["const_sock_p"], t["const_skb_p"], t["reason"]]
    assert [k.describe(p) for p in params] == [
        "struct sock *", "struct sk_buff *", "enum sk_rst_reason"]
    assert k.tracepoint_params("tcp_receive_reset") is None
    with pytest.raises(BTFError, match="function pointer"):
        k.tracepoint_params("not_a_pointer")


# -- describe -----------------------------------------------------------------

def test_describe(kern):
    k, t = kern
    assert k.describe(t["sock_p"]) == "struct sock *"
    assert k.describe(t["const_sock_p"]) == "struct sock *"
    assert k.describe(t["reason"]) == "enum sk_rst_reason"
    assert k.describe(t["reason_t"]) == "enum sk_rst_reason"
    assert k.describe(t["e64"]) == "enum wide"
    assert k.describe(t["union_only"]) == "union bpf_attr"
    assert k.describe(t["int"]) == "int"
    assert k.describe(t["__be32"]) == "unsigned int"
    assert k.describe(0) == "void"
    assert k.describe(t["void_p"]) == "void *"
    assert k.describe(t["sock_pp"]) == "struct sock * *"
    assert k.describe(t["fwd_req"]) == "struct request_sock"
    assert k.describe(t["fwd_union"]) == "union some_union"
    assert k.describe(t["type_tag"]) == "struct sock"
    assert k.describe(t["restrict"]) == "struct sock *"


def test_pointee(kern):
    k, t = kern
    assert k.pointee(t["restrict"]) == t["sock"]
    assert k.pointee(t["const_sock_p"]) == t["sock"]
    assert k.pointee(t["void_p"]) == 0
    assert k.pointee(t["sock"]) is None


# -- malformed blobs ---------------------------------------------------------

def small_blob(endian="<", **kw):
    b = Builder(endian)
    u32 = b.u32()
    b.struct("s", 4, [("a", u32, 0)])
    return b.blob(**kw)


def test_small_blob_parses_either_layout():
    for layout in (False, True):
        k = BTF(small_blob(strings_first=layout))
        assert k.offsetof("s", "a") == 0


def test_bad_magic():
    blob = bytearray(small_blob())
    blob[0:2] = b"\x9f\xec"
    with pytest.raises(BTFError, match="magic"):
        BTF(bytes(blob))


def test_too_short():
    with pytest.raises(BTFError):
        BTF(b"\x9f\xeb\x01\x00")
    with pytest.raises(BTFError):
        BTF(b"")


def test_truncated_blob():
    blob = small_blob()
    for cut in (1, 5, 12, len(blob) - 24):
        with pytest.raises(BTFError):
            BTF(blob[:-cut])


def test_truncated_type_section_header_consistent():
    """type_len that ends inside a type record (header rewritten to match
    the short section): the walk must notice, not run on."""
    b = Builder("<")
    u32 = b.u32()
    b.struct("s", 4, [("a", u32, 0), ("b", u32, 32)])
    blob = bytearray(b.blob())
    type_len = struct.unpack_from("<I", blob, 12)[0]
    struct.pack_into("<I", blob, 12, type_len - 12)   # drop member `b`
    with pytest.raises(BTFError, match="truncated"):
        BTF(bytes(blob))


def test_truncated_type_section_at_end_of_blob():
    """Types placed after the strings and cut mid-record, with the header
    saying so: the blob is malformed, and that must be a BTFError (the
    documented error), not a struct.error from reading past the end."""
    b = Builder("<")
    b.u32()
    b.int("int", 4, signed=True)                 # 16 bytes, the last type
    blob = bytearray(b.blob(strings_first=True))
    type_len = struct.unpack_from("<I", blob, 12)[0]
    cut = 8                                       # inside the last header
    struct.pack_into("<I", blob, 12, type_len - cut)
    with pytest.raises(BTFError):
        BTF(bytes(blob[:-cut]))


def test_big_endian_is_detected():
    k = BTF(small_blob(">"))
    assert k._e == ">"
    assert k.offsetof("s", "a") == 0
