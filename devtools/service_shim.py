"""The interpreter supervisord runs for the tests' `oh up`: each service forked from the fork server.

supervisord (started by `oh up`) runs every program as `$OH_PYTHON -m services.X` (oh/adapters/supervisord.conf),
and `oh up` sets OH_PYTHON to its own `sys.executable`. In the suite, an `oh` command forked from the fork
server sees this program as its `sys.executable` (devtools/forkserver.py writes it, with a shebang naming
the real interpreter with `-S`, so it imports the standard library only: a few milliseconds), and:

- `-m MODULE ...` (`services.X`, `oh.cli ui`; supervisord itself excepted): asks the fork server (its socket in OH_TEST_FORKSERVER_SOCKET) to
  fork the module with this process's environment, directory, umask and standard streams (the program's
  log pipes from supervisord), then stays as the pid supervisord watches: it forwards every signal
  supervisord or anyone sends it (TERM to stop, INT, HUP, QUIT, USR1, USR2) to the service and exits as
  the service did (its exit status, or killed by the same signal). If this process is killed (SIGKILL past
  stopwaitsecs), the server kills the service (the request is tethered to this process's end of its
  status socket). So supervisord's startsecs, stop, restart and logs see what they would of the service.
- anything else (`-m supervisor.supervisord`: a daemon, which must not be the server's child; no server to
  ask): execs the real interpreter with the same
  arguments.

The service itself is a real process with its own pid (its heartbeats and `oh live status` report that
one; `oh status` reports supervisord's, this process's), sockets and files; only Python's imports are
shared. OH_TEST_SERVICE_FORK=0 runs every service as a fresh interpreter instead.
"""

import json
import os
import signal
import socket
import sys

FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)
EXECUTED_MODULES = ("supervisor",)


def _exec_real(args: list[str]) -> None:
    os.execv(sys.executable, [sys.executable, *args])


def main(args: list[str]) -> None:
    path = os.environ.get("OH_TEST_FORKSERVER_SOCKET")
    if not path or len(args) < 2 or args[0] != "-m" or args[1].startswith(EXECUTED_MODULES):
        _exec_real(args)
    child: list[int] = []
    pending: list[int] = []

    def forward(sig: int, _frame: object) -> None:
        if child:
            try:
                os.kill(child[0], sig)
            except ProcessLookupError:
                pass
        else:
            pending.append(sig)

    for sig in FORWARDED:
        signal.signal(sig, forward)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    umask = os.umask(0o077)
    os.umask(umask)
    request = {"argv": [sys.executable, *args], "kind": "module", "env": dict(os.environ), "cwd": os.getcwd(),
               "umask": umask, "tether": True}
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as server:
            server.connect(path)
            socket.send_fds(server, [json.dumps(request).encode()], [theirs.fileno(), 0, 1, 2])
    except OSError:
        _exec_real(args)  # the server is gone (its pytest worker ended): a fresh interpreter
    theirs.close()
    reply = ours.recv(64).decode()
    if not reply.startswith("pid "):
        print(f"service_shim: the fork server could not start {args}: {reply!r}", file=sys.stderr)
        sys.exit(1)
    child.append(int(reply.split()[1]))
    for sig in pending:
        forward(sig, None)
    reply = ours.recv(64).decode()  # "exit N" once the service has ended (N < 0: killed by signal -N)
    code = int(reply.split()[1]) if reply.startswith("exit ") else 1
    if code < 0:  # die of the same signal (its default action: Python ignores SIGPIPE, say)
        if -code != signal.SIGKILL:
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
        code = 128 - code  # a signal whose default action is not to end a process (none of a service's deaths)
    sys.exit(code)


if __name__ == "__main__":
    main(sys.argv[1:])
