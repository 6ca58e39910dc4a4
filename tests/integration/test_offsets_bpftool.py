"""The offsets rsttrace passes to its BPF program, checked against what
`bpftool btf dump` says about the running kernel: a second, independent
reading of the same BTF (bpftool's parser, not ours)."""

import os
import re
import shutil
import subprocess

import pytest

from rsttrace.kernel import offsets
from rsttrace.kernel.btf import BTF

VMLINUX = "/sys/kernel/btf/vmlinux"

TYPE_RE = re.compile(r"^\[(\d+)\] (\w+) '([^']*)'(.*)$")
MEMBER_RE = re.compile(r"^\t'([^']*)' type_id=(\d+) bits_offset=(\d+)")
ATTR_RE = re.compile(r"(\w+)=(\d+)")


def need_bpftool():
    path = shutil.which("bpftool") or (
        "/usr/sbin/bpftool" if os.path.exists("/usr/sbin/bpftool") else None)
    if not path or not os.path.exists(VMLINUX):
        why = "needs bpftool and %s" % VMLINUX
        if os.environ.get("CI"):
            pytest.fail("CI must run this test, but it " + why)
        pytest.skip(why)
    return path


@pytest.fixture(scope="module")
def bpftool_types():
    """{id: (kind, name, attrs, members)} parsed from bpftool's text."""
    tool = need_bpftool()
    text = subprocess.run([tool, "btf", "dump", "file", VMLINUX],
                          capture_output=True, text=True, check=True).stdout
    types, current = {}, None
    for line in text.splitlines():
        m = TYPE_RE.match(line)
        if m:
            tid = int(m.group(1))
            attrs = {k: int(v) for k, v in ATTR_RE.findall(m.group(4))}
            current = types[tid] = (m.group(2), m.group(3), attrs, [])
            continue
        m = MEMBER_RE.match(line)
        if m and current is not None and current[0] in ("STRUCT", "UNION"):
            current[3].append((m.group(1), int(m.group(2)),
                               int(m.group(3))))
    return types


def resolve(types, tid):
    while types[tid][0] in ("TYPEDEF", "CONST", "VOLATILE", "RESTRICT",
                            "TYPE_TAG"):
        tid = types[tid][2]["type_id"]
    return tid


def find(types, tid, name):
    """(bit offset, member type) of `name` in struct `tid`, looking into
    anonymous members as C does."""
    for mname, mtype, off in types[resolve(types, tid)][3]:
        if mname == name:
            return off, mtype
        if mname == "(anon)":
            inner = find(types, mtype, name)
            if inner:
                return off + inner[0], inner[1]
    return None


def bpftool_offset(types, struct, path):
    sid = next(i for i, t in types.items()
               if t[0] == "STRUCT" and t[1] == struct)
    total, tid = 0, sid
    for part in path.split("."):
        found = find(types, tid, part)
        if found is None:
            return None
        total += found[0]
        tid = found[1]
    return total // 8


def test_offsets_match_bpftool(bpftool_types):
    ours = offsets.from_btf(BTF.load(VMLINUX))
    assert set(ours) == set(offsets.FIELDS)
    for macro, off in ours.items():
        theirs = bpftool_offset(bpftool_types, off.struct, off.path)
        assert theirs == off.offset, (macro, off, theirs)


def test_sock_linger_bit_matches_bpftool():
    tool = need_bpftool()
    text = subprocess.run([tool, "btf", "dump", "file", VMLINUX],
                          capture_output=True, text=True, check=True).stdout
    m = re.search(r"\n\t'SOCK_LINGER' val=(\d+)", text)
    assert m
    assert offsets.sock_linger_bit(BTF.load(VMLINUX)) == int(m.group(1))
