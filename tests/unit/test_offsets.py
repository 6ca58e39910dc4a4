"""Field offsets from BTF (rsttrace.offsets) on synthetic kernels generated
from offsets.FIELDS, so that every field rsttrace reads is exercised."""

import pytest

from btfgen import Builder
from rsttrace.kernel import offsets
from rsttrace.kernel.btf import BTFError
from rsttrace.errors import RsttraceError
from rsttrace.kernel.offsets import FIELDS, HEADER_EXPRESSIONS


def generate(choose=None, drop=(), sizes=None, bitfields=(), endian="<",
             linger_bit=5, extra_members=None):
    """A BTF blob with every struct and member path of FIELDS.

    choose: {macro: index into its paths} (default: the first path);
    drop: macros left out; sizes: {macro: size} overriding the expected
    size; bitfields: macros encoded as bitfields. Each struct begins with 24
    bytes of padding and members follow at distinct 8-byte-aligned offsets,
    nested paths through a named struct for intermediate parts.
    Returns (BTF, {macro: expected byte offset})."""
    choose = choose or {}
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

    # struct -> tree of {member: subtree or (macro, size)}
    trees = {}
    for macro, (struct, paths, size) in FIELDS.items():
        trees.setdefault(struct, {})
        if macro in drop:
            continue
        path = paths[choose.get(macro, 0)]
        node = trees[struct]
        parts = path.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = (macro, sizes.get(macro, size))
    for struct, extra in (extra_members or {}).items():
        trees.setdefault(struct, {}).update(extra)

    expected = {}

    def emit(name, tree, base):
        """Emit a struct for `tree`; return (type id, size in bytes)."""
        off = 24
        members = []
        for mname, sub in tree.items():
            if isinstance(sub, dict):
                tid, size = emit("%s_%s" % (name, mname), sub, base + off)
                members.append((mname, tid, off * 8))
            else:
                macro, size = sub
                if macro in bitfields:
                    members.append((mname, leaf(4), off * 8, 3))
                    size = 4
                else:
                    members.append((mname, leaf(size), off * 8))
                if macro is not None:
                    expected[macro] = base + off
            off += (size + 7) // 8 * 8 + 8
        return b.struct(name, off, members), off

    for struct, tree in trees.items():
        emit(struct, tree, 0)
    b.enum("sock_flags", [("SOCK_DEAD", 0), ("SOCK_DONE", 1),
                          ("SOCK_LINGER", linger_bit)])
    return b.btf(), expected


@pytest.mark.parametrize("endian", ["<", ">"])
def test_all_fields(endian):
    kbtf, expected = generate(endian=endian)
    found = offsets.from_btf(kbtf)
    assert set(found) == set(FIELDS)
    for macro, off in found.items():
        struct, paths, size = FIELDS[macro]
        assert off.offset == expected[macro], macro
        assert off.path == paths[0]
        assert off.struct == struct
        assert off.size == size
        assert off.macro == macro
    assert len(set(expected.values())) > 5      # offsets really differ


def test_nested_paths_add_up():
    kbtf, expected = generate()
    found = offsets.from_btf(kbtf)
    # skc_net.net, ns.inum, nd_net.net are two levels deep
    for macro in ("OFF_SKC_NET", "OFF_NET_INUM", "OFF_DEV_NET"):
        assert found[macro].offset == expected[macro]
        assert found[macro].offset > 24


def test_sk_flags_from_sock_common():
    """6.18 keeps sk_flags in sock_common (`#define sk_flags
    __sk_common.skc_flags`): the second path is used."""
    kbtf, expected = generate(choose={"OFF_SK_FLAGS": 1})
    with pytest.raises(BTFError):
        kbtf.member("sock", "sk_flags")
    found = offsets.from_btf(kbtf)["OFF_SK_FLAGS"]
    assert found.path == "__sk_common.skc_flags"
    assert found.offset == expected["OFF_SK_FLAGS"]
    assert found.offset == kbtf.offsetof("sock", "__sk_common.skc_flags")
    assert found.size == 8


def test_first_path_wins_when_both_exist():
    kbtf, expected = generate(extra_members={
        "sock": {"__sk_common": {"skc_flags": (None, 8)}}})
    found = offsets.from_btf(kbtf)["OFF_SK_FLAGS"]
    assert found.path == "sk_flags"
    assert found.offset == expected["OFF_SK_FLAGS"]
    assert found.offset != kbtf.offsetof("sock", "__sk_common.skc_flags")


@pytest.mark.parametrize("macro", ["OFF_TP_SND_UNA", "OFF_SKC_NET",
                                   "OFF_SK_FLAGS", "OFF_DEV_NET"])
def test_missing_field(macro):
    kbtf, _ = generate(drop=[macro])
    struct, paths, _ = FIELDS[macro]
    with pytest.raises(RsttraceError) as e:
        offsets.from_btf(kbtf)
    msg = str(e.value)
    assert "%s.%s" % (struct, paths[0]) in msg
    for p in paths[1:]:
        assert p in msg
    assert "\n" not in msg


def test_missing_struct():
    kbtf, _ = generate()
    fields = dict(FIELDS, OFF_X=("no_such_struct", ["x"], 4))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(offsets, "FIELDS", fields)
        with pytest.raises(RsttraceError, match="no_such_struct.x"):
            offsets.from_btf(kbtf)


def test_wrong_size():
    kbtf, _ = generate(sizes={"OFF_SKC_STATE": 2})
    with pytest.raises(RsttraceError) as e:
        offsets.from_btf(kbtf)
    msg = str(e.value)
    assert "sock_common.skc_state" in msg
    assert "2 bytes" in msg and "expects 1" in msg


def test_bitfield_field():
    kbtf, _ = generate(bitfields=["OFF_SKC_FAMILY"])
    with pytest.raises(RsttraceError, match="sock_common.skc_family is a "
                       "bitfield"):
        offsets.from_btf(kbtf)


def test_header_expressions_cover_fields():
    assert set(HEADER_EXPRESSIONS) == set(FIELDS)
    for macro, (struct, paths, _) in FIELDS.items():
        assert HEADER_EXPRESSIONS[macro].startswith(
            "offsetof(struct %s, " % struct), macro


def test_cflags_from_btf():
    kbtf, expected = generate(linger_bit=7)
    flags = offsets.cflags(kbtf)
    for macro, off in expected.items():
        assert "-D%s=%d" % (macro, off) in flags
    assert "-DSOCK_LINGER_BIT=7" in flags
    assert "-DOFFSETS_FROM_HEADERS" not in flags
    assert len(flags) == len(FIELDS) + 1


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
