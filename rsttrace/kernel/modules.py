"""The kernel's modules: which are loaded, built in or installed, which one
holds a function, and a module's BTF; and where a function is (`locate`):
in the kernel now, in a module not loaded now, inlined, or not there.

Everything is asked of the running kernel and its module tree:
/proc/modules (loaded now), kallsyms (features.symbol_module), and
/lib/modules/<release>/: modules.builtin (built in), modules.dep (installed,
with their files), modules.symbols (who exports what), the module files'
symbol tables and .BTF sections; /sys/kernel/btf/<module> for a loaded
module's BTF.
"""

import functools
import os

from rsttrace.kernel import btf as btfmod
from rsttrace.kernel import elf, features

PROC_MODULES = "/proc/modules"
MODULES_ROOT = "/lib/modules"
SYS_BTF = "/sys/kernel/btf"


def canonical(name):
    """Module names as the kernel spells them (kmod treats - and _ alike)."""
    return name.replace("-", "_")


def _name_of_file(path):
    return canonical(os.path.basename(path).split(".ko", 1)[0])


def loaded():
    """The names of the modules loaded now; empty when the kernel loads
    none (no /proc/modules)."""
    return frozenset(name for name, _ in instances())


def instances():
    """(name, load address) of each module loaded now: a module unloaded
    and loaded again between two looks is back under the same name, likely
    at another address."""
    try:
        with open(PROC_MODULES, "rb") as f:
            rows = [line.split() for line in f if line.strip()]
    except OSError:
        return frozenset()
    return frozenset((r[0].decode("ascii", "replace"),
                      r[5].decode("ascii", "replace") if len(r) > 5 else "")
                     for r in rows)


def supported():
    """Whether this kernel loads modules at all."""
    return os.path.exists(PROC_MODULES)


def _tree(name):
    return os.path.join(MODULES_ROOT, features.release(), name)


def _lines(name):
    try:
        with open(_tree(name), encoding="utf-8", errors="replace") as f:
            return f.read().splitlines()
    except OSError:
        return []


@functools.lru_cache(maxsize=None)
def builtin():
    """Modules compiled into the kernel (modules.builtin)."""
    return frozenset(_name_of_file(line) for line in _lines("modules.builtin")
                     if line.strip())


@functools.lru_cache(maxsize=None)
def installed():
    """{module: its file} of the modules installed for this kernel
    (modules.dep)."""
    out = {}
    for line in _lines("modules.dep"):
        path = line.split(":", 1)[0].strip()
        if path:
            out[_name_of_file(path)] = _tree(path)
    return out


@functools.lru_cache(maxsize=None)
def exporters():
    """{symbol: module} of the symbols modules export (modules.symbols:
    `alias symbol:nf_send_reset nf_reject_ipv4`)."""
    out = {}
    for line in _lines("modules.symbols"):
        parts = line.split()
        if len(parts) == 3 and parts[1].startswith("symbol:"):
            out[parts[1][len("symbol:"):]] = canonical(parts[2])
    return out


@functools.lru_cache(maxsize=64)
def _module_file(name):
    """The module's file parsed, or None when it is not installed or not
    readable."""
    path = installed().get(name)
    if path is None:
        return None
    try:
        return elf.Elf(elf.read_module(path))
    except (OSError, elf.ElfError):
        return None


def functions_in_file(name):
    """The functions in the symbol table of module `name`'s file, or None
    when it cannot be read."""
    f = _module_file(name)
    try:
        return f.functions() if f is not None else None
    except elf.ElfError:
        return None


def module_btf(name, base):
    """Module `name`'s BTF on top of the kernel's (`base`): the kernel's
    copy while it is loaded, else its file's .BTF section; None without
    either (a kernel built without CONFIG_DEBUG_INFO_BTF_MODULES)."""
    try:
        return btfmod.BTF.load(os.path.join(SYS_BTF, name), base)
    except OSError:
        pass
    except btfmod.BTFError:
        return None
    f = _module_file(name)
    try:
        data = f.section(".BTF") if f is not None else None
        return btfmod.BTF(data, base) if data else None
    except (elf.ElfError, btfmod.BTFError):
        return None


# Where a function is (Place.state).
IN_KERNEL = "in-kernel"       # in kallsyms now: the kernel or a loaded module
NOT_LOADED = "not-loaded"     # in a module that is installed, not loaded now
INLINED = "inlined"           # its home is there, the function has no symbol
ABSENT = "absent"             # its module is neither built in nor installed


class Place:
    """Where function `function` is in this kernel: `state`, and the
    module that holds it (None: the kernel itself)."""

    def __init__(self, function, state, module=None, symbol=None,
                 why=None):
        self.function = function
        self.state = state
        self.module = module
        self.symbol = symbol    # its kallsyms name (IN_KERNEL)
        self.why = why          # detail for INLINED and ABSENT

    def text(self):
        """What doctor and trace say about it."""
        if self.state == IN_KERNEL:
            return ("in module %s" % self.module if self.module
                    else "in the kernel")
        if self.state == NOT_LOADED:
            return ("in module %s, not loaded now: hooked when it loads"
                    % self.module)
        if self.state == INLINED:
            return "inlined: " + self.why
        return "not in this kernel: " + self.why


def locate(function, module_hint=None):
    """The Place of `function` (a name as in the source). `module_hint`:
    the module it lives in when built as one, for functions no module
    exports (modules.symbols lists exported ones)."""
    symbol = features.function_symbol(function)
    if symbol is not None:
        return Place(function, IN_KERNEL, features.symbol_module(symbol),
                     symbol)
    module = exporters().get(function) or module_hint
    if module is None:
        # rsttrace hooks functions every kernel it supports has
        return Place(function, INLINED, why="%s is not in kallsyms "
                     "(the compiler merged it into its callers)" % function)
    if module in builtin() or module in loaded():
        return Place(function, INLINED, module, why="%s has no symbol in "
                     "module %s (the compiler merged it into its callers)"
                     % (function, module))
    if module not in installed():
        where = ("in " + _tree("") if supported() else "and this kernel "
                 "loads no modules")
        return Place(function, ABSENT, module, why="module %s is neither "
                     "built in nor installed %s" % (module, where))
    funcs = functions_in_file(module)
    symbol = features.function_symbol(function, funcs) if funcs else function
    if symbol is None:
        return Place(function, INLINED, module, why="%s has no symbol in "
                     "module %s's file (the compiler merged it into its "
                     "callers)" % (function, module))
    return Place(function, NOT_LOADED, module, symbol)
