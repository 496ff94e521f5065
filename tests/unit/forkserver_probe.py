"""A child for tests/unit/test_forkserver.py: `python -m tests.unit.forkserver_probe ACTION [ARG]`."""

from __future__ import annotations

import atexit
import os
import sys
import time


def main(argv: list[str]) -> None:
    action = argv[1]
    if action == "exit":
        value = argv[2]
        sys.exit(int(value) if value.isdigit() else value)
    if action == "raise":
        raise RuntimeError("probe failed")
    if action == "describe":
        umask = os.umask(0)
        os.umask(umask)
        print(f"argv={sys.argv[1:]}")
        print(f"argv0={os.path.basename(sys.argv[0])}")
        print(f"cwd={os.getcwd()}")
        print(f"umask={oct(umask)}")
        for name in ("OH_PROBE_VALUE", "OH_SEGMENT_BYTES"):
            print(f"{name}={os.environ.get(name)}")
        return
    if action == "imported":  # whether these modules were imported before the probe ran (preloaded by the server)
        print(" ".join(str(name in sys.modules) for name in argv[2:]))
        return
    if action == "atexit":
        atexit.register(lambda: print("at exit"))
        sys.stdout.write("body\n")  # buffered: must be flushed at exit
        return
    if action == "sleep":
        time.sleep(120)
        return
    if action == "pid-sleep":  # says its pid, exits 7 on SIGTERM (a service's stop), else sleeps
        import signal

        signal.signal(signal.SIGTERM, lambda *_: sys.exit(7))
        print(f"pid {os.getpid()} parent {os.getppid()}", flush=True)
        time.sleep(120)
        return
    if action == "crlf":
        sys.stdout.buffer.write("caf\u00e9\r\nline\rend\n".encode())
        return
    if action == "flood":
        count = int(argv[2])
        sys.stderr.write("e\n" * count)
        sys.stdout.write("o\n" * count)
        return
    raise SystemExit(f"unknown action {action}")


if __name__ == "__main__":
    main(sys.argv)
