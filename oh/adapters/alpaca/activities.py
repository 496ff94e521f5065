"""Alpaca's fills over REST (account activities of type FILL), as TradeUpdated events.

`GET /v2/account/activities/FILL?after=T&direction=asc&page_size=100` returns the account's
executions after T, oldest first, paged by `page_token` (the id of the last activity of the previous
page) until a page comes back short. alpaca-py 0.44's TradingClient has no method for this endpoint
(only the BrokerClient does), so the request goes through the TradingClient's own REST session
(`TradingClient.get`, the SDK's request code with its auth headers), hardened like every other
Alpaca call (oh.adapters.alpaca.http: retries, timeout, errors in words, credentials redacted).

One fill, one id. A fill reaches us twice, on the `trade_updates` stream and here, and the ledger
must journal it once. The two payloads carry different ids (the stream an `execution_id`, REST an
activity id `<time>::<uuid>`), and Alpaca does not document that either can be derived from the
other; but both carry the order id and the order's cumulative filled quantity after this execution
(stream: `order.filled_qty`; REST: `cum_qty`), which grows with every execution of an order. So
`fill_id(order_id, cum_qty)` is the TradeUpdated id for fills from either source.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from contracts import TradeUpdated
from oh.adapters.base import ProviderError
from oh.adapters.settings import ProviderSettings

TRADE_NAMESPACE = uuid.UUID("5e0d8c1a-7b2f-4a9e-b3c6-1d2e4f6a8b90")
PAGE_SIZE = 100
FILL_EVENTS = ("fill", "partial_fill")
_FRACTION = re.compile(r"(\.\d{6})\d+")  # Python reads at most 6 fractional digits


def quantity_key(value: Any) -> str | None:
    """A quantity as canonical text ("10", "10.0" and 10 are all "10"); None if it is not a number."""
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    if not number.is_finite():
        return None
    return format(number.normalize(), "f")


def fill_id(order_id: str, cum_qty: Any) -> str | None:
    """The TradeUpdated id of the execution that brought `order_id` to `cum_qty` filled (see module doc)."""
    key = quantity_key(cum_qty)
    if key is None:
        return None
    return uuid.uuid5(TRADE_NAMESPACE, f"alpaca:{order_id}:fill@{key}").hex


def _float(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _time(value: Any) -> datetime | None:
    """An Alpaca RFC 3339 time (up to nanoseconds, `Z` or an offset) as an aware datetime; None if unreadable."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(_FRACTION.sub(r"\1", str(value)).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def fill_event(activity: dict[str, Any]) -> TradeUpdated | None:
    """A TradeUpdated from one raw FILL activity (the JSON object Alpaca returns); None if unreadable."""
    kind, order_id, symbol = activity.get("type"), activity.get("order_id"), activity.get("symbol")
    event_id = fill_id(str(order_id), activity.get("cum_qty")) if order_id else None
    qty = _float(activity.get("qty"))
    if activity.get("activity_type", "FILL") != "FILL" or kind not in FILL_EVENTS or not (event_id and symbol) \
            or qty is None:
        return None
    return TradeUpdated(
        id=event_id, order_id=str(order_id), symbol=str(symbol), event=str(kind),
        side=str(activity.get("side") or "unknown"), qty=qty, price=_float(activity.get("price")),
        filled_at=_time(activity.get("transaction_time")),
    )


def trading_client(settings: ProviderSettings) -> Any:
    """alpaca-py's TradingClient for these settings (raw JSON answers), hardened like every Alpaca call."""
    from alpaca.trading.client import TradingClient

    from oh.adapters.alpaca.http import harden

    alpaca = settings.alpaca
    client = TradingClient(api_key=alpaca.key_id, secret_key=alpaca.secret_key, paper=alpaca.environment != "live",
                           url_override=alpaca.trading_url if alpaca.environment == "custom" else None,
                           raw_data=True)
    return harden(client, settings.retry)


def fetch_fills(settings: ProviderSettings, after: datetime, client: Any = None) -> list[TradeUpdated]:
    """Every fill of the account after `after`, oldest first; raises ProviderError (one line, redacted)."""
    client = client or trading_client(settings)
    params: dict[str, Any] = {"after": after.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                              "direction": "asc", "page_size": PAGE_SIZE}
    fills: list[TradeUpdated] = []
    while True:
        try:
            page = client.get("/account/activities/FILL", dict(params))
        except Exception as exc:
            error = _error(exc, settings)
            if error is exc:
                raise
            raise error from None
        if not isinstance(page, list):
            raise ProviderError(f"alpaca: unexpected answer for the account's fills: {type(page).__name__}")
        fills += [event for event in (fill_event(a) for a in page if isinstance(a, dict)) if event is not None]
        if len(page) < PAGE_SIZE or not isinstance(page[-1], dict) or not page[-1].get("id"):
            return fills
        params["page_token"] = page[-1]["id"]


def _error(exc: Exception, settings: ProviderSettings) -> Exception:
    """Our one-line error for what alpaca-py raised (keys, limits, outages in words; credentials redacted)."""
    from oh.adapters.alpaca.http import _alpaca_message, translate
    from oh.adapters.base import UnknownSymbol

    error = translate(exc, settings, "the account's fills", "-")
    if error is None:
        return exc  # not a vendor or network failure: a bug shows as itself
    if isinstance(error, UnknownSymbol) or type(error) is ProviderError:  # worded for a symbol: say what failed
        status = getattr(exc, "status_code", None) or "?"
        error = ProviderError(settings.redact(
            f"alpaca refused the request for the account's fills ({status} {_alpaca_message(str(exc))})"))
    return error
