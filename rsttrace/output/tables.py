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
