"""More of rsttrace.kernel.btf on synthetic blobs (btfgen): loading from a
file, lookups by kind when names repeat across kinds, enumerators (signed,
64-bit, first type, enum before enum64), and the exact error lines."""

import pytest

from btfgen import Builder
from rsttrace.kernel import btf as btfmod
from rsttrace.kernel.btf import BTF, BTFError


def test_load_reads_the_file(tmp_path):
    b = Builder()
    b.struct("sock", 8, [])
    path = tmp_path / "vmlinux"
    path.write_bytes(b.blob())
    kbtf = BTF.load(str(path))
    assert kbtf.find("sock", btfmod.KIND_STRUCT) == 1


def test_find_by_kind_when_names_repeat():
    b = Builder()
    i = b.int("int", 4, signed=True)
    td = b.typedef("thing", i)
    st = b.struct("thing", 4, [])
    proto = b.func_proto(0, [("x", i)])
    b.typedef("tcp_reset", i)                   # a typedef first
    b.func("tcp_reset", proto)
    b.struct("btf_trace_x", 4, [])              # not the typedef
    b.typedef("btf_trace_x", b.ptr(b.func_proto(
        0, [("__data", b.ptr(0)), ("a", i)])))
    kbtf = b.btf()
    assert kbtf.find("thing", btfmod.KIND_STRUCT) == st
    assert kbtf.find("thing", btfmod.KIND_TYPEDEF) == td
    assert kbtf.find("thing", btfmod.KIND_UNION) is None
    assert kbtf.find("nothing", btfmod.KIND_STRUCT) is None
    assert kbtf.func_params("tcp_reset") == [("x", i)]
    assert kbtf.tracepoint_params("x") == [i]


def test_enum_and_enumerator_lines():
    kbtf = Builder().btf()
    with pytest.raises(BTFError) as e:
        kbtf.enum("sk_rst_reason")
    assert str(e.value) == "enum sk_rst_reason is not in this kernel's BTF"
    with pytest.raises(BTFError) as e:
        kbtf.enumerator("SOCK_LINGER")
    assert str(e.value) == "no enumerator SOCK_LINGER in this kernel's BTF"


def test_enumerator_in_the_first_type_and_only_in_enums():
    b = Builder()
    b.enum("sock_flags", [("SOCK_DEAD", 0), ("SOCK_LINGER", 5)])
    b.struct("SOCK_LINGER", 4, [])      # a name, not an enumerator
    kbtf = b.btf()
    assert kbtf.enumerator("SOCK_LINGER") == 5
    assert kbtf.enumerator("SOCK_DEAD") == 0


def test_enum_before_enum64():
    b = Builder()
    b.enum64("big", [("X", 1 << 40)])
    b.enum("small", [("X", 7)])
    assert b.btf().enumerator("X") == 7


def test_signed_enumerators():
    b = Builder()
    b.enum("e32", [("NEG", -1), ("POS", 3)])
    b.enum64("e64", [("MIN", -(1 << 63)), ("ONE", 1), ("M1", -1)],
             signed=True)
    b.enum64("u64", [("TOP", 1 << 63)], signed=False)
    kbtf = b.btf()
    assert kbtf.enum("e32") == {-1: "NEG", 3: "POS"}
    assert kbtf.enum("e64") == {-(1 << 63): "MIN", 1: "ONE", -1: "M1"}
    assert kbtf.enum("u64") == {1 << 63: "TOP"}
    assert kbtf.enumerator("MIN") == -(1 << 63)


def test_prototype_errors():
    b = Builder()
    i = b.int("int", 4, signed=True)
    b.typedef("btf_trace_bad", i)           # not a pointer to a prototype
    kbtf = b.btf()
    with pytest.raises(BTFError) as e:
        kbtf.proto_params(i)
    assert str(e.value) == "type %d is not a function prototype" % i
    with pytest.raises(BTFError) as e:
        kbtf.tracepoint_params("bad")
    assert str(e.value) == "btf_trace_bad is not a function pointer"
    assert kbtf.tracepoint_params("none") is None
    assert kbtf.func_params("none") is None
