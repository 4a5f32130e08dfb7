#!/usr/bin/env python3
"""Crashes a glint tool on purpose and shows what it printed.

    crash-signal.py SIGNAL TOOL [ARGS...]

Runs `TOOL ARGS... @FIFO`: the tool's command-line parser (after
llvm::InitLLVM and runtime::setBugReportMessage() in main) opens the response
file FIFO and waits for its contents. Once the tool has it open, which proves
main() is past the crash-handler setup, the tool gets SIGNAL (SEGV, ABRT, ...):
the same signal handlers run as for a real fault, with no test-only code in
the tool. Prints the tool's stderr and how it ended, and exits 1 if the tool
ended cleanly (exit code 0) or never opened the FIFO.
"""

import errno
import os
import signal
import subprocess
import sys
import tempfile
import time


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    signum = getattr(signal, "SIG" + sys.argv[1])
    with tempfile.TemporaryDirectory() as scratch:
        fifo = os.path.join(scratch, "args")
        os.mkfifo(fifo)
        with open(os.path.join(scratch, "stderr"), "w+") as err:
            tool = subprocess.Popen(sys.argv[2:] + ["@" + fifo],
                                    stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=err)
            # Opening a FIFO for writing without blocking fails with ENXIO
            # until a reader has it open.
            writer = None
            deadline = time.monotonic() + 120
            while writer is None and tool.poll() is None:
                try:
                    writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
                except OSError as e:
                    if e.errno != errno.ENXIO or time.monotonic() > deadline:
                        tool.kill()
                        raise
                    time.sleep(0.01)
            if writer is not None:
                tool.send_signal(signum)
            code = tool.wait()
            if writer is not None:
                os.close(writer)
            err.seek(0)
            sys.stdout.write(err.read())
    if writer is None:
        print("crash-signal.py: the tool ended (exit code %d) before opening "
              "its response file" % code)
        return 1
    if code < 0:
        print("crash-signal.py: killed by signal %d" % -code)
    else:
        print("crash-signal.py: exit code %d" % code)
    return 1 if code == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
