"""``python -m runtime.daemon.execshim PID_FILE RUNC_EXEC_ARGV...``: the parent of a ``docker exec -t`` process.

In the foreground, ``runc exec --tty`` relays through a terminal of its own and clears ONLCR on the container's
only once it has started, so what a quick command prints comes out ending ``\\r\\n``, ``\\n`` or ``\\r\\r\\n`` by
chance. Detached (``--detach --console-socket``), runc hands the container's terminal to the daemon and exits; the
process it leaves is reparented to the nearest subreaper: this shim, which reaps it and exits with its code.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ..monitor import reap
from ..ociruntime import become_subreaper

CANNOT_EXEC = 126  # docker's code for an exec that could not start


def main(argv: list[str]) -> int:
    pid_file, *command = argv
    become_subreaper()
    if subprocess.run(command, stdin=subprocess.DEVNULL, check=False).returncode != 0:
        return CANNOT_EXEC  # runc said why on our stderr
    return reap(int(Path(pid_file).read_text()))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
