"""Logs are bounded: each process's `<name>.log` rotates by size and keeps the configured number of old files.

A real ledger is made to log (rejected frames, each one a warning) with a small OH_LOG_MAX_BYTES;
its log must rotate, keep exactly OH_LOG_BACKUPS old files, and still end with the shutdown line.
supervisord's own files are bounded by its settings in supervisord.conf.
"""

from __future__ import annotations

import configparser
import os
import sys
import time

import pytest
import zmq

from bus.control_client import ControlClient
from bus.home import Home
from devtools import forkserver
from devtools.processes import REPO, Service, wait_for_ledger

MAX_BYTES, BACKUPS, FRAMES = 600, 2, 20


@pytest.mark.integration
def test_a_services_log_rotates_and_keeps_the_configured_count(home: Home) -> None:
    """20 rejected frames log 20 warnings (~3 KB) into 600-byte files: ledger.log, .1 and .2 exist, .3 never,
    none is over the limit, the oldest lines are gone, and the newest file ends with the clean shutdown."""
    ledger = Service(home, "ledger", env={"OH_LOG_MAX_BYTES": str(MAX_BYTES), "OH_LOG_BACKUPS": str(BACKUPS)}).start()
    try:
        wait_for_ledger(home)
        sock = zmq.Context.instance().socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 1000)
        sock.connect(home.endpoint("ingress"))
        for i in range(FRAMES):
            sock.send(b"not a message %d" % i)
        client = ControlClient(home)
        try:
            deadline = time.monotonic() + 30
            while client.status().counters.get("frames_rejected", 0) < FRAMES and time.monotonic() < deadline:
                time.sleep(0.05)
            assert client.status().counters.get("frames_rejected", 0) == FRAMES
        finally:
            client.close()
            sock.close()
    finally:
        assert ledger.stop() == 0
    files = sorted(p.name for p in home.logs.glob("ledger.log*"))
    assert files == ["ledger.log", "ledger.log.1", "ledger.log.2"]
    assert all((home.logs / name).stat().st_size <= MAX_BYTES for name in files)
    kept = "".join((home.logs / name).read_text() for name in files)
    assert 0 < kept.count("rejected frame") < FRAMES  # bounded: the oldest warnings were dropped
    assert "ledger stopped at seq" in (home.logs / "ledger.log").read_text()


@pytest.mark.integration
@pytest.mark.parametrize(("name", "value"), [("OH_LOG_MAX_BYTES", "lots"), ("OH_LOG_BACKUPS", "0"),
                                             ("OH_LOG_MAX_BYTES", "-5")])
def test_a_malformed_log_setting_is_one_clear_line(home: Home, name: str, value: str) -> None:
    """A bad size or count stops the service at start with one line naming the variable (0 backups would mean
    a log that never rotates)."""
    result = forkserver.run([sys.executable, "-m", "services.ledger"], cwd=REPO, timeout=60,
                            env={**os.environ, name: value})
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and name in lines[0] and repr(value) in lines[0], result.stderr


def test_supervisord_bounds_every_file_it_writes() -> None:
    """supervisord's own log and every program's `*.out.log` have a size limit and a backup count."""
    from oh.adapters.supervisor import conf_text

    conf = configparser.RawConfigParser()
    conf.read_string(conf_text())
    assert int(conf["supervisord"]["logfile_backups"]) > 0 and conf["supervisord"]["logfile_maxbytes"] != "0"
    programs = [section for section in conf.sections() if section.startswith("program:")]
    assert programs
    for section in programs:
        assert conf[section]["stdout_logfile_maxbytes"] not in ("", "0"), section
        assert int(conf[section]["stdout_logfile_backups"]) > 0, section
