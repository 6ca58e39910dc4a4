"""Text tables and endpoints, for every human-readable output."""

import textwrap

from tabulate import tabulate


def endpoint(addr, port):
    """addr:port, [addr]:port for IPv6, ? when unknown."""
    if addr is None:
        return "?"
    return ("[%s]:%s" % (addr, port)) if ":" in addr else "%s:%s" % (addr,
                                                                     port)


def table(rows, headers, widths=()):
    """tabulate, with the cells of column i wrapped at widths[i] characters
    (None: not wrapped). Wrapped here: tabulate's own maxcolwidths came in
    0.8.10, and Debian 11 and 12 ship 0.8.7 and 0.8.9."""
    def wrap(cell, width):
        if width is None or not isinstance(cell, str):
            return cell
        return "\n".join(line for part in cell.split("\n")
                         for line in (textwrap.wrap(part, width) or [""]))
    widths = list(widths)
    return tabulate([[wrap(c, widths[i] if i < len(widths) else None)
                      for i, c in enumerate(row)] for row in rows],
                    headers=headers)


def owner_text(record):
    """The socket's owner as `comm[pid]`, `-` when there is none."""
    if record.get("owner_pid") is None:
        return "-"
    return "%s[%s]" % (record.get("owner_comm") or "?", record["owner_pid"])


def container_text(record):
    """A container by name (else its short ID), `-` for none."""
    ctr = record.get("container")
    if not ctr:
        return "-"
    return ctr.get("name") or (ctr.get("id") or "?")[:12]


def pod_text(record):
    pod = record.get("pod")
    if not pod:
        return "-"
    return "%s/%s" % (pod["namespace"], pod["name"]) if pod.get("namespace") \
        else pod.get("name") or "?"


def who_text(record):
    """Who is behind an RST, in one line (None when rsttrace was told not
    to find out): owner, or why none; container, pod, namespace name."""
    source = record.get("owner_source")
    if source is None:
        return None
    parts = ["owner " + owner_text(record) if record.get("owner_pid")
             is not None else "no owner (%s)" % source]
    if record.get("container"):
        parts.append("container %s (%s)" % (container_text(record),
                                            record["container"].get("runtime")
                                            or "?"))
    if record.get("pod"):
        parts.append("pod " + pod_text(record))
    if record.get("netns_name"):
        parts.append("netns " + record["netns_name"])
    return ", ".join(parts)
