"""Reading back the JSON lines rsttrace writes: `trace --json` captures
(`report`) and `scenarios run -o` results (`matrix`). One reader, so both
treat bad input alike: one clear error for a file that is not what was
asked for, a warning (and the rest of the file) for a last line cut off by
a kill, never a traceback."""

import json

from rsttrace.errors import RsttraceError

# The record kinds of a `trace --json` capture (docs/json-schema.md).
EVENT_KINDS = ("sent", "received", "challenge_ack", "abort")
OTHER_KINDS = ("lost", "summary")


def read(path, what, warn):
    """The JSON objects of the file at `path`, one per line. `what` names
    what the file should be (for the errors), `warn(text)` takes
    warnings."""
    fix = "give a file written by %s" % what
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise RsttraceError("cannot read %s (%s)" % (path, e.strerror),
                            "check the path")
    lines = data.split(b"\n")
    cut = lines[-1] != b""          # no newline at the end
    out = []
    for n, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise RsttraceError("%s line %d is not text (a binary file?)"
                                % (path, n), fix)
        except ValueError:
            if cut and n == len(lines):
                warn("%s: its last line is cut off (the writer was killed "
                     "mid-line?), skipped" % path)
                break
            raise RsttraceError("%s line %d is not JSON" % (path, n), fix)
        if not isinstance(obj, dict):
            raise RsttraceError("%s line %d is not a JSON object" % (path, n),
                                fix)
        out.append((n, obj))
    return out
