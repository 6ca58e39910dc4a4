"""Which header tree bcc compiles with (rsttrace/kernel/headers.py), on
trees laid out as Debian and Ubuntu install them. The real compile with a
borrowed tree is tests/integration/test_headers_fallback.py."""

import os

from rsttrace.kernel import headers

REL = "6.18.1-custom"


def touch(path, text=""):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def debian_tree(usr_src, version, flavour="amd64", arch="x86"):
    """linux-headers-<version>-<flavour> (generated headers, a Makefile
    that includes the -common half) and linux-headers-<version>-common."""
    common = os.path.join(usr_src, "linux-headers-%s-common" % version)
    build = os.path.join(usr_src, "linux-headers-%s-%s" % (version, flavour))
    touch(os.path.join(common, "include/linux/kconfig.h"))
    touch(os.path.join(common, "Makefile"), "# the real one\n")
    touch(os.path.join(build, "Makefile"), "include %s/Makefile\n" % common)
    touch(os.path.join(build, "include/generated/utsrelease.h"),
          '#define UTS_RELEASE "%s-%s"\n' % (version, flavour))
    touch(os.path.join(build, "arch", arch, "include/generated/asm/x.h"))
    return build, common


def test_debian_split_tree_is_found_with_its_common_half(tmp_path):
    build, common = debian_tree(str(tmp_path), "6.1.0-57")
    tree = headers.find(REL, {}, str(tmp_path / "modules"), str(tmp_path),
                        "x86")
    assert tree == headers.Tree(build, common, "generic")
    assert tree.environ() == {"BCC_KERNEL_SOURCE": common}
    assert tree.cflags("x86") == [
        "-I%s/arch/x86/include/generated/uapi" % build,
        "-I%s/arch/x86/include/generated" % build,
        "-I%s/include" % build, "-I%s/include/generated/uapi" % build]
    assert not tree.matches(REL)
    assert tree.matches("6.1.0-57-amd64")


def test_newest_tree_of_this_architecture(tmp_path):
    debian_tree(str(tmp_path), "6.1.0-9")
    newest, _ = debian_tree(str(tmp_path), "6.1.0-10")
    debian_tree(str(tmp_path), "6.12.0-1", flavour="arm64", arch="arm64")
    tree = headers.generic(str(tmp_path), "x86")
    assert tree.build == newest
    assert headers.generic(str(tmp_path), "arm64").build.endswith(
        "linux-headers-6.12.0-1-arm64")
    assert headers.generic(str(tmp_path), "riscv") is None


def test_a_common_half_alone_or_a_broken_partner_is_no_tree(tmp_path):
    build, common = debian_tree(str(tmp_path), "6.1.0-57")
    os.remove(os.path.join(common, "include/linux/kconfig.h"))
    assert headers.generic(str(tmp_path), "x86") is None


def test_whole_tree_needs_no_partner(tmp_path):
    """Ubuntu's linux-headers-<version>-generic (or a self-built tree):
    one directory, so bcc is pointed at it and needs no -I flags."""
    whole = str(tmp_path / "linux-headers-6.8.0-40-generic")
    touch(os.path.join(whole, "include/linux/kconfig.h"))
    touch(os.path.join(whole, "include/generated/autoconf.h"))
    touch(os.path.join(whole, "arch/x86/include/generated/asm/x.h"))
    tree = headers.generic(str(tmp_path), "x86")
    assert tree == headers.Tree(whole, whole, "generic")
    assert tree.environ() == {"BCC_KERNEL_SOURCE": whole}
    assert tree.cflags("x86") == []


def test_the_kernels_own_headers_come_first_and_need_nothing(tmp_path):
    debian_tree(str(tmp_path), "6.1.0-57")
    own = tmp_path / "modules" / REL / "build"
    touch(str(own / "include/generated/utsrelease.h"),
          '#define UTS_RELEASE "%s"\n' % REL)
    tree = headers.find(REL, {}, str(tmp_path / "modules"), str(tmp_path),
                        "x86")
    assert tree == headers.Tree(str(own), str(own), "modules")
    assert tree.environ() == {} and tree.cflags("x86") == []
    assert tree.matches(REL)
    assert not tree.matches(REL[:-1])      # a prefix is another release


def test_bcc_kernel_source_set_by_the_user_wins(tmp_path):
    debian_tree(str(tmp_path), "6.1.0-57")
    mine = tmp_path / "mine"
    mine.mkdir()
    env = {"BCC_KERNEL_SOURCE": str(mine)}
    tree = headers.find(REL, env, str(tmp_path / "modules"), str(tmp_path),
                        "x86")
    assert tree == headers.Tree(str(mine), str(mine), "env")
    assert tree.environ() == {} and tree.cflags("x86") == []
    env = {"BCC_KERNEL_SOURCE": str(tmp_path / "missing")}
    assert headers.find(REL, env, str(tmp_path / "modules"), str(tmp_path),
                        "x86") is None


def test_no_tree_anywhere(tmp_path):
    assert headers.find(REL, {}, str(tmp_path / "modules"), str(tmp_path),
                        "x86") is None
    modules, archive = str(tmp_path / "modules"), str(tmp_path / "kh.tar.xz")
    assert not headers.kheaders_possible(REL, modules, archive)
    touch(archive)
    assert headers.kheaders_possible(REL, modules, archive)
    os.remove(archive)
    touch(os.path.join(modules, REL, "kernel/kernel/kheaders.ko.xz"))
    assert headers.kheaders_possible(REL, modules, archive)


def test_bcc_architecture_names():
    assert [headers.karch(m) for m in ("x86_64", "i686", "aarch64",
                                       "s390x", "mips")] == [
        "x86", "x86", "arm64", "s390", "mips"]


def test_compiling_with_a_generic_tree_sets_bcc_kernel_source_and_back(
        tmp_path, monkeypatch):
    build, common = debian_tree(str(tmp_path), "6.1.0-57")
    tree = headers.Tree(build, common, "generic")
    monkeypatch.setenv("BCC_KERNEL_SOURCE", "/before")
    with headers.compiling_with(tree):
        assert os.environ["BCC_KERNEL_SOURCE"] == common
    assert os.environ["BCC_KERNEL_SOURCE"] == "/before"
    monkeypatch.delenv("BCC_KERNEL_SOURCE")
    with headers.compiling_with(tree):
        assert os.environ["BCC_KERNEL_SOURCE"] == common
    assert "BCC_KERNEL_SOURCE" not in os.environ
    with headers.compiling_with(None):
        assert "BCC_KERNEL_SOURCE" not in os.environ
