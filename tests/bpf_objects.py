"""The BPF objects loaded in the kernel (bpftool) and those a process
holds (its file descriptors' fdinfo), by id: ids are not reused soon, so
unlike names they tell one run's objects from a concurrent run's."""

import json
import os
import subprocess

KINDS = {"prog": "prog_id", "map": "map_id", "link": "link_id"}


def bpf_ids():
    """{"prog"|"map"|"link": {id: name}} of everything loaded now."""
    out = {}
    for kind in KINDS:
        res = subprocess.run(["bpftool", kind, "show", "-j"],
                             capture_output=True, text=True, check=True)
        out[kind] = {o["id"]: o.get("name") or o.get("tp_name")
                     for o in json.loads(res.stdout or "[]")}
    return out


def held_bpf_ids(pid):
    """{"prog"|"map"|"link": {id}} of the BPF objects process `pid` has
    file descriptors for."""
    held = {kind: set() for kind in KINDS}
    fdinfo = "/proc/%d/fdinfo" % pid
    for fd in os.listdir(fdinfo):
        try:
            with open(os.path.join(fdinfo, fd)) as f:
                lines = f.read().splitlines()
        except OSError:                  # closed meanwhile
            continue
        for line in lines:
            key, _, value = line.partition(":")
            for kind, field in KINDS.items():
                if key == field:
                    held[kind].add(int(value))
    return held
