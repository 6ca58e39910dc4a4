"""The kernel header tree bcc compiles rsttrace's BPF program with.

rsttrace reads struct offsets from BTF, so the tree only has to satisfy
bcc's own includes: any recent kernel's headers do. Where it comes from,
first found first:

  1. BCC_KERNEL_SOURCE, bcc's own variable, when the user set it;
  2. /lib/modules/$(uname -r)/build (and source): the running kernel's
     headers (Debian's linux-headers-$(uname -r)), where bcc looks itself;
  3. otherwise a distribution's generic tree under /usr/src (what the
     linux-headers-<arch> metapackage installs: Debian's
     linux-headers-<version>-<flavour> with its -common half, or a whole
     tree such as Ubuntu's -generic), newest first. rsttrace points bcc at
     it for its own compile only (BCC_KERNEL_SOURCE and -I flags) and
     changes nothing on the host.

bcc's last resort, /sys/kernel/kheaders.tar.xz (CONFIG_IKHEADERS), needs no
help from rsttrace.
"""

import contextlib
import glob
import os
import re
from dataclasses import dataclass

from rsttrace.errors import RsttraceError

MODULES_DIR = "/lib/modules"
USR_SRC = "/usr/src"
KHEADERS = "/sys/kernel/kheaders.tar.xz"
ENV = "BCC_KERNEL_SOURCE"

# bcc's name for the architecture (kbuild_helper.cc: uname -m -> arch/)
_KARCH = {"x86_64": "x86", "aarch64": "arm64", "ppc64le": "powerpc",
          "s390x": "s390", "riscv64": "riscv", "loongarch64": "loongarch"}


def karch(machine=None):
    machine = machine or os.uname().machine
    if re.fullmatch(r"i.86", machine):
        return "x86"
    return _KARCH.get(machine, machine)


@dataclass(frozen=True)
class Tree:
    """A header tree: `source` holds include/linux, `build` the generated
    headers (the same directory unless the distribution splits them, as
    Debian does into linux-headers-<version>-<flavour> and -common).
    `origin` is where it was found: "env", "modules" or "generic"."""
    build: str
    source: str
    origin: str

    def environ(self):
        """What bcc's environment needs to compile with this tree."""
        return {ENV: self.source} if self.origin == "generic" else {}

    def cflags(self, arch=None):
        """-I flags for the generated headers of a split generic tree
        (bcc adds them itself for /lib/modules/*/build + source, but with
        BCC_KERNEL_SOURCE it knows one directory only)."""
        if self.origin != "generic" or self.build == self.source:
            return []
        arch = arch or karch()
        return ["-I" + os.path.join(self.build, d) for d in (
            "arch/%s/include/generated/uapi" % arch,
            "arch/%s/include/generated" % arch,
            "include", "include/generated/uapi")]

    def matches(self, release):
        """True when this is the headers of kernel `release` itself."""
        return matches(self.build, release)


def _has_sources(path):
    return os.path.isfile(os.path.join(path, "include/linux/kconfig.h"))


def _generated(path, arch):
    return (os.path.isdir(os.path.join(path, "include/generated")) and
            os.path.isdir(os.path.join(path, "arch", arch,
                                       "include/generated")))


def _partner(build):
    """The source half of a Debian build tree: its Makefile is one line,
    `include /usr/src/linux-headers-<version>-common/Makefile`."""
    try:
        with open(os.path.join(build, "Makefile")) as f:
            m = re.match(r"include\s+(\S+)/Makefile\s*$", f.read(4096))
    except OSError:
        return None
    return m.group(1) if m and _has_sources(m.group(1)) else None


def _version_key(path):
    return [int(p) if p.isdigit() else p
            for p in re.split(r"(\d+)", os.path.basename(path))]


def generic(usr_src=USR_SRC, arch=None):
    """The newest usable tree under usr_src for this architecture."""
    arch = arch or karch()
    found = []
    for build in glob.glob(os.path.join(usr_src, "linux-headers-*")):
        if not _generated(build, arch):
            continue
        source = build if _has_sources(build) else _partner(build)
        if source:
            found.append(Tree(os.path.realpath(build),
                              os.path.realpath(source), "generic"))
    return max(found, key=lambda t: _version_key(t.build), default=None)


def find(release=None, environ=None, modules_dir=MODULES_DIR,
         usr_src=USR_SRC, arch=None):
    """The tree bcc will compile with (module docstring), or None."""
    release = release or os.uname().release
    environ = os.environ if environ is None else environ
    if environ.get(ENV):
        path = environ[ENV]
        return Tree(path, path, "env") if os.path.isdir(path) else None
    kdir = os.path.join(modules_dir, release)
    build, source = (os.path.join(kdir, d) for d in ("build", "source"))
    if os.path.isdir(os.path.join(build, "include")):
        if not os.path.isdir(source):
            source = build
        return Tree(os.path.realpath(build), os.path.realpath(source),
                    "modules")
    return generic(usr_src, arch)


def required(have_btf, release):
    """The tree for the tracer's compile (find()), or None where bcc falls
    back on kheaders; RsttraceError when rsttrace cannot compile: without
    BTF the struct offsets need this kernel's own headers, and bcc needs
    some tree for its includes."""
    tree = find()
    if not have_btf and not (tree and tree.matches(release)):
        raise RsttraceError(
            "this kernel has no BTF (/sys/kernel/btf/vmlinux) and no "
            "matching headers, so rsttrace cannot know its struct layout",
            "install linux-headers-%s, or use a kernel built with "
            "CONFIG_DEBUG_INFO_BTF=y" % release)
    if tree is None and not kheaders_possible():
        raise RsttraceError(
            "found no kernel headers for bcc (%s/%s/build, /usr/src)"
            % (MODULES_DIR, release),
            "install linux-headers-%s, or where there is none the "
            "generic linux-headers package of this architecture" % release)
    return tree


@contextlib.contextmanager
def compiling_with(tree):
    """os.environ as bcc's compile with `tree` needs it (bcc reads
    BCC_KERNEL_SOURCE while it compiles), put back as it was afterwards."""
    values = tree.environ() if tree else {}
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def kheaders_possible(release=None, modules_dir=MODULES_DIR,
                      kheaders=KHEADERS):
    """True when bcc can fall back on the kernel's own headers archive
    (CONFIG_IKHEADERS: built in, or the kheaders module it loads)."""
    release = release or os.uname().release
    return os.path.exists(kheaders) or bool(glob.glob(os.path.join(
        modules_dir, release, "kernel/kernel/kheaders.ko*")))


def matches(path, release):
    """True when the tree at `path` is kernel `release`'s own (its release
    string matches)."""
    # UTS_RELEASE is what uname -r says; Debian's include/config/
    # kernel.release holds the upstream version (6.1.192) instead.
    for rel, want in (("include/generated/utsrelease.h", '"%s"' % release),
                      ("include/config/kernel.release", release)):
        try:
            with open(os.path.join(path, rel)) as f:
                return want in f.read().split()
        except OSError:
            continue
    return os.path.basename(path.rstrip("/")) == "linux-headers-" + release
