"""Opening an output path as root without being led by another user.

rsttrace runs as root, often with `-o /tmp/...`. In a sticky world-writable
directory (/tmp) any user can plant a symlink, or a file, under the name
root is about to write; following that link would let them choose which
file root overwrites. The kernel's fs.protected_symlinks and
fs.protected_regular refuse that, but only when the sysctls are set (they
are not everywhere), so rsttrace applies the same rule itself:

    in a sticky world-writable directory, a symlink, file or FIFO is
    trusted only when the caller or the directory's owner owns it.

An untrusted symlink is never followed and an untrusted file never written
(an untrusted file's owner could read what rsttrace writes into it); any
other symlink is followed, as users expect (`-o` through a link in their
own directory).

The rule holds for every component of the path, not only the last, and is
decided on what is actually opened, not on a name looked at earlier: the
path is walked one component at a time with O_PATH|O_NOFOLLOW file
descriptors (a link is judged on its own fd, then read with readlinkat),
and the final file is opened with O_NOFOLLOW relative to its directory's
fd and checked by inode against what the walk saw. A name that changed
under us is walked again.
"""

import collections
import errno
import os
import re
import stat

from rsttrace.errors import RsttraceError

TEMPORARY = ".%s.%s.rsttrace-partial"      # name, 8 random hex digits
MAX_LINKS = 40          # the kernel's limit on links in one lookup (ELOOP)
ATTEMPTS = 5            # walks of a path that keeps changing under us
_PATH = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC

# The directory fd, name and lstat (None: no such file yet) of the last
# component of a walked path; `shown` is how an error names it; `created`:
# open_for_write() made the file.
Target = collections.namedtuple("Target", "dir_fd name st shown created",
                                defaults=(False,))


def _kind(st):
    if stat.S_ISLNK(st.st_mode):
        return "a symlink", "write through it"
    if stat.S_ISFIFO(st.st_mode):
        return "a FIFO", "write into it"
    return "a file", "write into it"


class Refused(RsttraceError):
    """Another user's symlink or file in a world-writable directory."""

    def __init__(self, shown, st):
        kind, doing = _kind(st)
        super().__init__(
            "%s is %s owned by uid %d in a world-writable directory: "
            "refusing to %s" % (shown, kind, st.st_uid, doing),
            "remove it, or write into a directory only you can write to")


def trusted(dir_st, st, uid):
    """The rule of fs.protected_symlinks / protected_regular: in a sticky
    world-writable directory only the caller's and the directory owner's
    entries are trusted; elsewhere every entry is."""
    sticky_ww = stat.S_ISVTX | stat.S_IWOTH
    return (dir_st.st_mode & sticky_ww != sticky_ww or
            st.st_uid in (uid, dir_st.st_uid))


def _parts(path):
    return collections.deque(p for p in path.split("/") if p not in ("", "."))


def _join(directory, name):
    return os.path.join(directory, name) if directory else name


def resolve(path, follow_last=True):
    """The Target that writing `path` reaches: every trusted symlink on the
    way followed (the last one too unless follow_last is false), an
    untrusted one refused. The caller owns the returned dir_fd."""
    uid = os.geteuid()
    absolute = path.startswith("/")
    cur = os.open("/" if absolute else ".", _PATH | os.O_DIRECTORY)
    shown_dir = "/" if absolute else ""
    parts = _parts(path)
    if not parts:
        parts.append(".")       # `-o .`: the directory itself (EISDIR)
    links = 0
    try:
        while True:
            name = parts.popleft()
            last = not parts
            shown = _join(shown_dir, name)
            try:
                fd = os.open(name, _PATH, dir_fd=cur)
            except FileNotFoundError:
                if last:
                    target, cur = Target(cur, name, None, shown), None
                    return target
                raise
            try:
                st = os.fstat(fd)
                if stat.S_ISLNK(st.st_mode) and (follow_last or not last):
                    if not trusted(os.fstat(cur), st, uid):
                        raise Refused(shown, st)
                    links += 1
                    if links > MAX_LINKS:
                        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP))
                    link = os.readlink("", dir_fd=fd)   # the fd judged
                    if link.startswith("/"):
                        os.close(cur)
                        cur = None
                        cur = os.open("/", _PATH | os.O_DIRECTORY)
                        shown_dir = "/"
                    parts.extendleft(reversed(_parts(link) or ["."]))
                    continue
                if last:
                    target, cur = Target(cur, name, st, shown), None
                    return target
                if not stat.S_ISDIR(st.st_mode):
                    raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
                os.close(cur)
                cur, fd = fd, None
                shown_dir = shown
            finally:
                if fd is not None:
                    os.close(fd)
    finally:
        if cur is not None:
            os.close(cur)


def check(target):
    """Refuse an existing entry another user planted (see trusted())."""
    if target.st is not None and not trusted(os.fstat(target.dir_fd),
                                             target.st, os.geteuid()):
        raise Refused(target.shown, target.st)


def open_for_write(path):
    """(fd open for writing, its Target) for `path`, created (mode 0666
    less the umask) if missing, not truncated: the caller decides that
    once it knows what it opened."""
    for _ in range(ATTEMPTS):
        target = resolve(path)
        try:
            check(target)
            try:
                fd = os.open(target.name, os.O_WRONLY | os.O_CREAT |
                             os.O_NOFOLLOW | os.O_CLOEXEC, 0o666,
                             dir_fd=target.dir_fd)
            except OSError as e:
                # A link appeared since the walk: O_NOFOLLOW says ELOOP,
                # or EACCES for another user's link in a sticky directory
                # (O_CREAT). Walk again, to judge it.
                if e.errno in (errno.ELOOP, errno.EACCES) and \
                        _is_link(target):
                    os.close(target.dir_fd)
                    continue
                raise
            st = os.fstat(fd)
            same = (target.st is None or
                    (st.st_dev, st.st_ino) ==
                    (target.st.st_dev, target.st.st_ino))
            if same:
                # What we created, or what another user created first.
                check(target._replace(st=st))
                return fd, target._replace(st=st,
                                           created=target.st is None)
            os.close(fd)                        # replaced since: again
        except BaseException:
            os.close(target.dir_fd)
            raise
        os.close(target.dir_fd)
    raise OSError(errno.EAGAIN, "it keeps changing while it is opened")


def _is_link(target):
    try:
        return stat.S_ISLNK(os.stat(target.name, dir_fd=target.dir_fd,
                                    follow_symlinks=False).st_mode)
    except OSError:
        return False


def create_new(dir_fd, name, mode=0o666):
    """A file that did not exist, created with O_EXCL in `dir_fd` (never
    through a link, never someone else's)."""
    return os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL |
                   os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=dir_fd)


def create_temporary(dir_fd, name):
    """(fd, name) of a new hidden file beside `name` in `dir_fd`, made the
    way tempfile.mkstemp makes one (a random name, O_EXCL, mode 0600), but
    relative to a directory fd so it lands where the walk decided."""
    for _ in range(100):
        tmp = TEMPORARY % (name, os.urandom(4).hex())
        try:
            return create_new(dir_fd, tmp, 0o600), tmp
        except FileExistsError:
            continue
    raise OSError(errno.EEXIST, "no free temporary name")


def temporary_of(entry):
    """The name a create_temporary() file was made for, or None."""
    m = re.fullmatch(r"\.(.+)\.[0-9a-f]{8}\.rsttrace-partial", entry)
    return m.group(1) if m else None


def entries(dir_fd):
    """The names in the directory `dir_fd` (an O_PATH fd) holds."""
    fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC,
                 dir_fd=dir_fd)
    try:
        return os.listdir(fd)
    finally:
        os.close(fd)


def judged(dir_fd, name, shown):
    """The lstat of `name` in `dir_fd` (None: there is none), refused
    when another user planted it (see trusted())."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    if not trusted(os.fstat(dir_fd), st, os.geteuid()):
        raise Refused(shown, st)
    return st


def create_replacing(dir_fd, name, shown, mode):
    """A new file `name` in `dir_fd` (O_EXCL, never through a link): what
    is there already is removed first when it is trusted (a symlink
    itself, not what it points to), refused otherwise."""
    for _ in range(ATTEMPTS):
        try:
            return create_new(dir_fd, name, mode)
        except FileExistsError:
            if judged(dir_fd, name, shown) is not None:
                unlink_same(dir_fd, name, None)
    raise OSError(errno.EAGAIN, "it keeps coming back while it is made")


def unlink_same(dir_fd, name, st):
    """Remove `name` from `dir_fd` when it is still the file `st` names
    (any file when `st` is None). True when it was removed."""
    try:
        now = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if st is not None and (now.st_dev, now.st_ino) != (st.st_dev,
                                                           st.st_ino):
            return False
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return False
    return True
