"""Run a command and record the peak resident memory of it and its descendants.

    python bench/rss_wrapper.py OUT.json -- COMMAND ARGS...

This process does nothing but wait, so `getrusage(RUSAGE_CHILDREN).ru_maxrss` afterwards is
the peak RSS of the command (doit) and of every descendant it waited for (doit's workers
under `-n`): the largest single process, not a sum (Linux reports it that way). Output
goes to the terminal unchanged; OUT.json gets {"returncode", "maxrss_kib"}. The exit
status is the command's.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    out, command = argv[0], argv[2:]
    returncode = subprocess.call(command)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    with open(out, "w", encoding="utf-8") as stream:
        json.dump({"returncode": returncode, "maxrss_kib": peak}, stream)
    return returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
