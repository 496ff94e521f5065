"""`oh keys init | allow | list | revoke` as a user runs them on two hosts (two OH_HOMEs), bad input included."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from bus import curve
from bus.home import Home
from devtools import forkserver
from devtools.processes import REPO
from tests.integration.conftest import OH

pytestmark = pytest.mark.integration


def oh(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OH_HOME": str(root)}
    env.pop("OH_BUS", None)
    env.pop("OH_BUS_KEYS", None)
    return forkserver.run([OH, *args], timeout=120, cwd=REPO, env=env)


def refused(result: subprocess.CompletedProcess[str], says: str) -> None:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1 and says in lines[0], (result.returncode, result.stderr)


def test_two_hosts_set_up_their_keys_with_the_cli(home: Home, tmp_path: Path) -> None:
    """The ledger's host makes its pair, a client host makes its own and takes the ledger's public key, the
    ledger's host authorizes it by name, lists it, revokes it; the key files end up 0600 in 0700 directories."""
    ledger, client = home.root, tmp_path / "hostb"
    made = oh(ledger, "keys", "init")
    assert made.returncode == 0 and "made the ledger key" in made.stdout, made.stderr
    server_pub = curve.public_file(home.keys, curve.SERVER)
    joined = oh(client, "keys", "init", "--client", "--server-key", str(server_pub))
    assert joined.returncode == 0 and "stored the ledger's public key" in joined.stdout, joined.stderr
    client_keys = client / "config" / "keys"
    assert not curve.secret_file(client_keys, curve.SERVER).exists()
    assert curve.load_client(client_keys).server_public == curve.load_server(home.keys).public

    refused(oh(ledger, "keys", "allow", str(curve.public_file(client_keys, curve.CLIENT))), "--name HOST")
    allowed = oh(ledger, "keys", "allow", str(curve.public_file(client_keys, curve.CLIENT)), "--name", "hostb")
    assert allowed.returncode == 0, allowed.stderr
    listed = oh(ledger, "keys", "list")
    assert listed.returncode == 0 and "authorized: hostb" in listed.stdout and "authorized: local" in listed.stdout
    assert dict(curve.authorized(home.keys))["hostb"] == curve.load_client(client_keys).public

    again = oh(ledger, "keys", "init")
    assert again.returncode == 0 and "nothing to do" in again.stdout  # keys are never replaced
    revoked = oh(ledger, "keys", "revoke", "hostb")
    assert revoked.returncode == 0, revoked.stderr
    assert "hostb" not in dict(curve.authorized(home.keys))
    for path in (home.keys, client_keys):
        assert oct(path.stat().st_mode & 0o777) == "0o700"
        assert {oct(p.stat().st_mode & 0o777) for p in path.rglob("*") if p.is_file()} == {"0o600"}


def test_bad_key_input_is_one_line_and_exit_2(home: Home, tmp_path: Path) -> None:
    """A secret file where a public one goes, a malformed or missing file, a name that is not a file name, an
    unknown client to revoke, --server-key on the ledger's own home: each refused in one line, exit 2."""
    ledger = home.root
    assert oh(ledger, "keys", "init").returncode == 0
    bad = tmp_path / "bad.key"
    bad.write_text("not a key\n")
    refused(oh(ledger, "keys", "allow", str(curve.secret_file(home.keys, curve.CLIENT)), "--name", "x"), "SECRET key")
    refused(oh(ledger, "keys", "allow", str(bad), "--name", "x"), "no public key")
    refused(oh(ledger, "keys", "allow", str(tmp_path / "missing.key"), "--name", "x"), "does not exist")
    refused(oh(ledger, "keys", "allow", str(curve.public_file(home.keys, curve.CLIENT)), "--name", "../up"), "client name")
    refused(oh(ledger, "keys", "revoke", "nobody"), "no authorized client named 'nobody'")
    refused(oh(ledger, "keys", "init", "--server-key", str(curve.public_file(home.keys, curve.SERVER))),
            "holds the ledger's own key pair")
    refused(oh(tmp_path / "fresh", "keys", "allow", str(curve.public_file(home.keys, curve.CLIENT)), "--name", "x"),
            "no ledger key")
    assert [name for name, _ in curve.authorized(home.keys)] == [curve.LOCAL_CLIENT]
