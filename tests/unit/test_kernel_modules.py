"""Kernel modules without a kernel: module files (ELF, compressed or not),
a module's split BTF, and where a function is (rsttrace.kernel.modules)
in a made-up /lib/modules tree."""

import gzip
import lzma
import os

import pytest

from btfgen import Builder
from elfgen import module_file
from rsttrace.kernel import btf as btfmod
from rsttrace.kernel import elf, features, modules

RELEASE = "9.9.9-test"


# -- module files -------------------------------------------------------------

def test_functions_and_sections_of_a_module_file():
    data = module_file(functions=["nf_send_reset", "reject_tg"],
                       objects=["__ksymtab_nf_send_reset"],
                       sections={".BTF": b"btf bytes"})
    f = elf.Elf(data)
    assert f.functions() == {"nf_send_reset", "reject_tg"}
    assert f.section(".BTF") == b"btf bytes"
    assert f.section(".BTF.ext") is None


def test_big_endian_module_file():
    f = elf.Elf(module_file(functions=["f"], endian=">"))
    assert f.functions() == {"f"}


@pytest.mark.parametrize("suffix,pack", [(".ko", bytes),
                                         (".ko.xz", lzma.compress),
                                         (".ko.gz", gzip.compress)])
def test_compressed_module_files(tmp_path, suffix, pack):
    path = tmp_path / ("m" + suffix)
    path.write_bytes(pack(module_file(functions=["nf_send_reset6"])))
    assert elf.Elf(elf.read_module(str(path))).functions() == {
        "nf_send_reset6"}


@pytest.mark.parametrize("damage", [
    lambda d: b"not an elf at all" + d,
    lambda d: d[:40],                             # no section headers
    lambda d: d[:len(d) - 70],                    # a header cut short
    lambda d: d[:4] + b"\x01" + d[5:],            # 32-bit
    lambda d: d[:5] + b"\x07" + d[6:],            # unknown byte order
    lambda d: d[:0x3E] + b"\xff\x00" + d[0x40:],  # shstrndx past the end
])
def test_malformed_module_files_are_errors(damage):
    data = damage(module_file(functions=["f"], sections={".BTF": b"x"}))
    with pytest.raises(elf.ElfError):
        elf.Elf(data).functions()


def test_a_corrupt_compressed_file_is_an_error(tmp_path):
    path = tmp_path / "m.ko.xz"
    path.write_bytes(b"\xfd7zXZ\0 garbage")
    with pytest.raises(elf.ElfError):
        elf.read_module(str(path))


# -- split BTF ----------------------------------------------------------------

def kernel_and_module_btf():
    """A kernel's BTF with the types nf_send_reset uses, and a module's
    that adds the function on top of it."""
    k = Builder()
    sock_p = k.ptr(k.struct("sock", 8))
    skb_p = k.ptr(k.struct("sk_buff", 8))
    net_p = k.ptr(k.struct("net", 8))
    int_t = k.int("int", 4, signed=True)
    kernel = btfmod.BTF(k.blob())
    m = Builder(base=k)
    m.func("nf_send_reset", m.func_proto(0, [
        ("net", net_p), ("sk", sock_p), ("oldskb", skb_p), ("hook", int_t)]))
    m.struct("nf_reject_only", 4)
    return kernel, m.blob()


def test_module_btf_continues_the_kernels():
    kernel, blob = kernel_and_module_btf()
    mod = btfmod.BTF(blob, kernel)
    params = mod.func_params("nf_send_reset")
    assert [n for n, _ in params] == ["net", "sk", "oldskb", "hook"]
    assert [mod.describe(t) for _, t in params] == [
        "struct net *", "struct sock *", "struct sk_buff *", "int"]
    assert mod.struct_id("nf_reject_only") > mod.struct_id("sock")
    assert kernel.func_params("nf_send_reset") is None   # base unchanged


# -- where a function is -------------------------------------------------------

@pytest.fixture()
def tree(tmp_path, monkeypatch):
    """/lib/modules/<release> and /proc/modules made up in tmp_path, and
    kallsyms as the test sets it: ({symbol: [address]}, {symbol: module})."""
    root = tmp_path / "lib-modules"
    (root / RELEASE / "kernel" / "net").mkdir(parents=True)
    proc = tmp_path / "proc-modules"
    proc.write_text("")
    syms = ({}, {})
    monkeypatch.setattr(modules, "MODULES_ROOT", str(root))
    monkeypatch.setattr(modules, "PROC_MODULES", str(proc))
    monkeypatch.setattr(modules, "SYS_BTF", str(tmp_path / "sys-btf"))
    monkeypatch.setattr(features, "release", lambda: RELEASE)
    monkeypatch.setattr(features, "_kallsyms", lambda: syms)
    for cached in (modules.builtin, modules.installed, modules.exporters,
                   modules._module_file):
        cached.cache_clear()
    yield Tree(root / RELEASE, proc, syms)
    for cached in (modules.builtin, modules.installed, modules.exporters,
                   modules._module_file):
        cached.cache_clear()


class Tree:
    def __init__(self, base, proc, syms):
        self.base, self.proc, self.syms = base, proc, syms

    def install(self, name, functions, compress=None, btf=None):
        rel = "kernel/net/%s.ko%s" % (name, ".xz" if compress else "")
        data = module_file(functions=functions,
                           sections={".BTF": btf} if btf else None)
        (self.base / rel).write_bytes(lzma.compress(data) if compress
                                      else data)
        with open(self.base / "modules.dep", "a") as f:
            f.write("%s:\n" % rel)

    def export(self, symbol, module):
        with open(self.base / "modules.symbols", "a") as f:
            f.write("alias symbol:%s %s\n" % (symbol, module))

    def builtin(self, name):
        with open(self.base / "modules.builtin", "a") as f:
            f.write("kernel/net/%s.ko\n" % name)

    def load(self, name, *symbols):
        with open(self.proc, "a") as f:
            f.write("%s 16384 0 - Live 0x0\n" % name)
        for s in symbols:
            self.syms[0][s] = ["ffffffffc0000000"]
            self.syms[1][s] = name


def test_a_function_of_a_loaded_module(tree):
    tree.load("nf_reject_ipv4", "nf_send_reset")
    place = modules.locate("nf_send_reset", "nf_reject_ipv4")
    assert (place.state, place.module, place.symbol) == (
        modules.IN_KERNEL, "nf_reject_ipv4", "nf_send_reset")


def test_a_kernel_function(tree):
    tree.syms[0]["tcp_reset"] = ["ffffffff81000000"]
    place = modules.locate("tcp_reset")
    assert (place.state, place.module) == (modules.IN_KERNEL, None)


def test_an_exported_function_of_a_module_not_loaded(tree):
    tree.install("nf_reject_ipv4", ["nf_send_reset", "nf_reject_skb_v4"])
    tree.export("nf_send_reset", "nf_reject_ipv4")
    place = modules.locate("nf_send_reset")
    assert (place.state, place.module, place.symbol) == (
        modules.NOT_LOADED, "nf_reject_ipv4", "nf_send_reset")
    assert place.text() == ("in module nf_reject_ipv4, not loaded now: "
                            "hooked when it loads")


def test_a_compressed_module_named_by_the_hook(tree):
    tree.install("nf_reject_ipv6", ["nf_send_reset6.constprop.0"],
                 compress=True)
    place = modules.locate("nf_send_reset6", "nf_reject_ipv6")
    assert (place.state, place.symbol) == (modules.NOT_LOADED,
                                           "nf_send_reset6.constprop.0")


def test_a_function_inlined_in_its_modules_file(tree):
    tree.install("nf_reject_ipv4", ["nf_reject_skb_v4"])
    place = modules.locate("nf_send_reset", "nf_reject_ipv4")
    assert place.state == modules.INLINED
    assert place.text().startswith("inlined: nf_send_reset has no symbol "
                                   "in module nf_reject_ipv4's file")


@pytest.mark.parametrize("how", ["builtin", "loaded"])
def test_a_function_missing_from_a_module_that_is_there(tree, how):
    getattr(tree, {"builtin": "builtin", "loaded": "load"}[how])(
        "nf_reject_ipv4")
    place = modules.locate("nf_send_reset", "nf_reject_ipv4")
    assert place.state == modules.INLINED and "nf_reject_ipv4" in place.why


def test_a_module_this_kernel_does_not_have(tree):
    place = modules.locate("nf_send_reset", "nf_reject_ipv4")
    assert place.state == modules.ABSENT
    assert place.text() == (
        "not in this kernel: module nf_reject_ipv4 is neither built in nor "
        "installed in %s/" % tree.base)


def test_a_kernel_that_loads_no_modules(tree):
    os.unlink(tree.proc)
    place = modules.locate("nf_send_reset", "nf_reject_ipv4")
    assert place.state == modules.ABSENT
    assert place.why.endswith("and this kernel loads no modules")


def test_a_kernel_function_without_a_symbol_is_inlined(tree):
    place = modules.locate("tcp_send_challenge_ack")
    assert place.state == modules.INLINED and place.module is None
    assert "not in kallsyms" in place.text()


def test_module_btf_from_the_kernel_or_the_file(tree, tmp_path):
    kernel, blob = kernel_and_module_btf()
    tree.install("nf_reject_ipv4", ["nf_send_reset"], btf=blob)
    from_file = modules.module_btf("nf_reject_ipv4", kernel)
    assert from_file.func_params("nf_send_reset")[1][0] == "sk"
    # loaded: the kernel's copy in /sys/kernel/btf wins
    (tmp_path / "sys-btf").mkdir()
    (tmp_path / "sys-btf" / "nf_reject_ipv4").write_bytes(b"not BTF")
    assert modules.module_btf("nf_reject_ipv4", kernel) is None
    assert modules.module_btf("absent_module", kernel) is None
