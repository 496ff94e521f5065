"""`oh keys init | allow | list | revoke`: the CURVE keys of the tcp bus (bus/curve.py, docs/architecture.md).

On the ledger's host, `oh keys init` makes the ledger's key pair and this home's client pair (and
authorizes the latter as `local`). On another host, `oh keys init --client --server-key server.key`
makes that host's client pair and stores the ledger's public key; its `client.key` goes back to the
ledger's host, where `oh keys allow client.key --name HOST` lets it in. Bad input is one line and exit 2.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from bus import curve
from bus.home import Home
from oh.cli.common import console, fail

keys_app = typer.Typer(help="CURVE keys for the bus over tcp (bus.toml, OH_BUS).", no_args_is_help=True)


def _home() -> Home:
    return Home.from_env().ensure()


@keys_app.command("init")
def init(
    client: bool = typer.Option(False, "--client", help="Only a client key: for a host whose processes reach "
                                "another host's ledger (OH_BUS=tcp://HOST:PORT)."),
    server_key: Path = typer.Option(None, "--server-key", help="The ledger's public key file (server.key, copied "
                                    "from the ledger's host); implies --client."),
) -> None:
    """Make the keys this home is missing (existing keys are kept) and say what to do next."""
    home = _home()
    directory = home.keys
    client = client or server_key is not None
    try:
        done = curve.init_keys(directory, server=not client, server_key=server_key)
    except curve.CurveKeyError as exc:
        fail(str(exc), 2)
    for line in done or [f"nothing to do: the keys in {directory} exist already"]:
        console.print(escape(line), soft_wrap=True, highlight=False)
    client_pub = curve.public_file(directory, curve.CLIENT)
    if not client:
        console.print(
            f"next: listen on tcp with a \\[tcp] table in {escape(str(home.config / 'bus.toml'))} (docs/architecture.md); "
            f"give {escape(str(curve.public_file(directory, curve.SERVER)))} to each client host, and authorize its "
            "client.key with `oh keys allow FILE --name HOST`",
            soft_wrap=True, highlight=False,
        )
    else:
        console.print(
            f"next: give {escape(str(client_pub))} to the ledger's owner (`oh keys allow FILE --name HOST`), then "
            "set OH_BUS=tcp://LEDGER_HOST:PORT for this host's workers, `oh emit` and Dagster steps",
            soft_wrap=True, highlight=False,
        )
        if not curve.public_file(directory, curve.SERVER).exists():
            console.print("the ledger's public key is still missing: rerun with --server-key FILE", highlight=False)


@keys_app.command("allow")
def allow(
    key_file: Path = typer.Argument(..., help="The client's PUBLIC key file (its client.key).", show_default=False),
    name: str = typer.Option(None, "--name", help="What to call this client (its host); default: the file's name."),
) -> None:
    """Authorize a client's public key: processes holding its secret key may use the bus over tcp."""
    chosen = name or key_file.name.removesuffix(".key")
    if name is None and chosen in (curve.CLIENT, curve.SERVER):
        fail(f"name this client: --name HOST ({key_file.name} is what every host calls its key)", 2)
    try:
        path = curve.allow(_home().keys, key_file, chosen)
    except curve.CurveKeyError as exc:
        fail(str(exc), 2)
    console.print(f"authorized {escape(chosen)!s} ({escape(str(path))}); it may connect from now on", highlight=False)


@keys_app.command("list")
def list_keys() -> None:
    """Show this home's keys and the clients the ledger lets in."""
    directory = _home().keys
    table = Table(title=f"CURVE keys ({directory})")
    for column in ("key", "public key", "file"):
        table.add_column(column)
    try:
        for label, name in (("ledger (server)", curve.SERVER), ("this home's client", curve.CLIENT)):
            path = curve.public_file(directory, name)
            table.add_row(label, curve.read_public_key(path).decode() if path.exists() else "none", str(path))
        for name, key in curve.authorized(directory):
            table.add_row(f"authorized: {name}", key.decode(), str(curve.public_file(curve.authorized_dir(directory), name)))
    except curve.CurveKeyError as exc:
        fail(str(exc), 2)
    console.print(table)


@keys_app.command("revoke")
def revoke(name: str = typer.Argument(..., help="The authorized client's name (`oh keys list`).", show_default=False)) -> None:
    """Stop letting a client in: its next connection is refused (restart the ledger to cut open ones at once)."""
    try:
        removed = curve.revoke(_home().keys, name)
    except curve.CurveKeyError as exc:
        fail(str(exc), 2)
    if not removed:
        fail(f"no authorized client named {name!r} (`oh keys list`)", 2)
    console.print(f"revoked {escape(name)}: its next connection is refused", highlight=False)
