"""A separate process that owns sockets, for the owner tests: forked, named
(its comm) so that events can be checked against it, and driven one step
at a time from the test. Between steps it is blocked reading a pipe, so
it is never the task a softirq interrupts: an event naming it names the
socket's owner, not whoever was on the CPU."""

import ctypes
import os
import pickle
import struct

PR_SET_NAME = 15


class OwnerProcess:
    """OwnerProcess(comm, [step, ...]): step(state) runs in the child when
    the test calls next(); it may keep what it needs in the dict `state`
    and returns a picklable value for the test. After the last step the
    child exits (its sockets closed by the kernel as it exits)."""

    def __init__(self, comm, steps):
        self.comm = comm
        self.steps = list(steps)
        to_child, self._go = os.pipe()
        self._back, from_child = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:                        # the child
            os.close(self._go)
            os.close(self._back)
            self._child(to_child, from_child)
        os.close(to_child)
        os.close(from_child)

    def _child(self, go, back):
        code = 0
        _close_inherited({go, back})     # e.g. the test's own listeners
        try:
            ctypes.CDLL(None, use_errno=True).prctl(
                PR_SET_NAME, self.comm.encode(), 0, 0, 0)
            state = {}
            for step in self.steps:
                if not os.read(go, 1):
                    break
                data = pickle.dumps(step(state))
                os.write(back, struct.pack("I", len(data)) + data)
        except BaseException as e:              # reported to the test
            data = pickle.dumps(RuntimeError("owner step failed: %r" % e))
            os.write(back, struct.pack("I", len(data)) + data)
            code = 1
        finally:
            os._exit(code)

    def next(self):
        """Run the next step in the child; what it returned."""
        os.write(self._go, b"x")
        head = _read_exactly(self._back, 4)
        value = pickle.loads(_read_exactly(self._back,
                                           struct.unpack("I", head)[0]))
        if isinstance(value, RuntimeError):
            raise value
        return value

    def close(self):
        """Let the child finish (or end it) and reap it."""
        for fd in (self._go, self._back):
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _read_exactly(fd, n):
    out = b""
    while len(out) < n:
        chunk = os.read(fd, n - len(out))
        if not chunk:
            raise RuntimeError("the owner process ended early")
        out += chunk
    return out


def _close_inherited(keep):
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass
