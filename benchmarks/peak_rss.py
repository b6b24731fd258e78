"""Run a command and write its peak RSS (KiB) to a file: `python peak_rss.py OUT CMD [ARGS...]`.

Linux gives a child the memory high-water mark of the process that spawned it (the mark survives
exec), so measuring a child of a large process (a benchmark that loaded a model, a test runner)
over-reports. This small launcher forks the command itself, so the figure is the command's own.
"""

import os
import sys

if __name__ == "__main__":
    pid = os.fork()
    if pid == 0:
        os.execvp(sys.argv[2], sys.argv[2:])
    _, status, usage = os.wait4(pid, 0)
    with open(sys.argv[1], "w") as fh:
        fh.write(str(usage.ru_maxrss))
    sys.exit(os.waitstatus_to_exitcode(status))
