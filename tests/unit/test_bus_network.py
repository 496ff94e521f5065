"""Where the bus is: bus.toml (the ledger's tcp listener) and OH_BUS (a client's), and Home.endpoint deciding."""

from __future__ import annotations

from pathlib import Path

import pytest

from bus.errors import HomeError
from bus.home import Home
from bus.network import BusConfigError, TcpAddress, listen_address, load_bus_config, parse_bus


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bus.toml"
    path.write_text(text)
    return path


def test_no_file_or_no_tcp_table_means_ipc_only(tmp_path: Path) -> None:
    """Nothing listens on a network unless bus.toml has a [tcp] table."""
    assert listen_address(load_bus_config(tmp_path / "missing.toml")) is None
    assert listen_address(load_bus_config(_config(tmp_path, "# nothing here\n"))) is None


def test_tcp_table_defaults_to_loopback(tmp_path: Path) -> None:
    """`[tcp]` alone listens on 127.0.0.1:7780 (loopback); the address and port are the user's to set."""
    address = listen_address(load_bus_config(_config(tmp_path, "[tcp]\n")))
    assert address == TcpAddress("127.0.0.1", 7780) and address.loopback
    address = listen_address(load_bus_config(_config(tmp_path, '[tcp]\naddress = "0.0.0.0"\nport = 9000\n')))
    assert address == TcpAddress("0.0.0.0", 9000) and not address.loopback
    assert [address.endpoint(n) for n in ("ingress", "events", "control")] == [
        "tcp://0.0.0.0:9000", "tcp://0.0.0.0:9001", "tcp://0.0.0.0:9002"]


@pytest.mark.parametrize(("text", "says"), [
    ('[tcp]\nadress = "127.0.0.1"\n', "tcp: object contains unknown field `adress`"),
    ('[tpc]\n', "unknown field `tpc`"),
    ('[tcp]\nport = "7780"\n', "tcp.port: expected `int`, got `str`"),
    ('[tcp]\naddress = "ledger.example"\n', "tcp.address: 'ledger.example' is not an IP address"),
    ('[tcp]\naddress = "127.0.0.1:7780"\n', "is not an IP address"),
    ('[tcp]\nport = 0\n', "tcp.port: port 0 must be between 1 and 65533"),
    ('[tcp]\nport = 65534\n', "port 65534 must be between 1 and 65533"),
    ('[tcp\n', "not valid TOML"),
], ids=["misspelt-key", "misspelt-table", "port-as-text", "hostname", "address-with-port", "port-0", "port-too-high",
        "broken-toml"])
def test_a_bad_bus_toml_is_one_line_naming_the_key(tmp_path: Path, text: str, says: str) -> None:
    """A typo never silently leaves the bus on ipc or listening somewhere else: one line, file and key."""
    path = _config(tmp_path, text)
    with pytest.raises(BusConfigError) as caught:
        load_bus_config(path)
    message = str(caught.value)
    assert message.startswith(str(path)) and says in message and "\n" not in message
    assert isinstance(caught.value, HomeError)  # the CLI prints it as one line, exit 2


@pytest.mark.parametrize(("text", "expected"), [
    ("", None), ("ipc", None), ("  ", None),
    ("tcp://127.0.0.2:7780", TcpAddress("127.0.0.2", 7780)),
    ("tcp://ledger.lan:9000", TcpAddress("ledger.lan", 9000)),
    ("tcp://[::1]:7780", TcpAddress("::1", 7780)),
])
def test_oh_bus_spellings_that_work(text: str, expected: TcpAddress | None) -> None:
    """OH_BUS is empty/ipc (the local bus) or tcp://HOST:PORT."""
    assert parse_bus(text) == expected


@pytest.mark.parametrize("text", [
    "127.0.0.1:7780", "tcp://127.0.0.1", "tcp://127.0.0.1:http", "udp://127.0.0.1:7780", "tcp://:7780",
    "tcp://127.0.0.1:7780/ingress", "tcp://user@127.0.0.1:7780", "tcp://127.0.0.1:70000", "tcp://127.0.0.1:0",
    "ipc:///tmp/x",
])
def test_oh_bus_spellings_that_are_refused(text: str) -> None:
    """A malformed OH_BUS is a one-line error naming it, never a silent fall back to ipc."""
    with pytest.raises(BusConfigError) as caught:
        parse_bus(text)
    assert "OH_BUS=" in str(caught.value) and "\n" not in str(caught.value)


def test_home_endpoint_decides_ipc_or_tcp(tmp_path: Path) -> None:
    """Home.endpoint: ipc by default; with OH_BUS the three bus sockets go to the ledger's host, ticks stay local."""
    local = Home(tmp_path / "a", bus="", bus_keys="")
    assert local.endpoint("ingress") == local.ipc_endpoint("ingress") == f"ipc://{local.sockets}/ingress"
    remote = Home(tmp_path / "b", bus="tcp://127.0.0.2:7000", bus_keys="")
    assert remote.endpoint("ingress") == "tcp://127.0.0.2:7000"
    assert remote.endpoint("events") == "tcp://127.0.0.2:7001"
    assert remote.endpoint("control") == "tcp://127.0.0.2:7002"
    assert remote.endpoint("ticks") == f"ipc://{remote.sockets}/ticks"  # the live channel never leaves the host
    assert remote.ipc_endpoint("control") == f"ipc://{remote.sockets}/control"  # what a ledger here binds


def test_home_reads_oh_bus_and_keys_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every Home (from_env or made directly) follows OH_BUS and OH_BUS_KEYS, so child processes do too."""
    monkeypatch.setenv("OH_BUS", "tcp://127.0.0.2:7100")
    monkeypatch.setenv("OH_BUS_KEYS", str(tmp_path / "k"))
    monkeypatch.setenv("OH_HOME", str(tmp_path / "h"))
    for home in (Home.from_env(), Home(tmp_path / "h")):
        assert home.endpoint("control") == "tcp://127.0.0.2:7102"
        assert home.keys == tmp_path / "k"
    monkeypatch.delenv("OH_BUS_KEYS")
    assert Home.from_env().keys == tmp_path / "h" / "config" / "keys"
    monkeypatch.setenv("OH_BUS", "127.0.0.2:7100")
    with pytest.raises(BusConfigError):
        Home.from_env().endpoint("ingress")
