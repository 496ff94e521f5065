"""The ways a real market-data provider fails, each a ProviderError a trader can act on.

Adapters translate vendor exceptions (alpaca-py's APIError, requests' and curl_cffi's network
errors, yfinance's YF* exceptions) into these at their edge, with messages that say what to do
and that never carry a credential (see oh.adapters.settings.redact). The jobs record the message
on the failed asset row and the run.
"""

from __future__ import annotations

from oh.adapters.base import ProviderError, UnknownSymbol

__all__ = [
    "BadCredentials", "MissingCredentials", "NotEntitled", "ProviderError", "ProviderTimeout",
    "ProviderUnavailable", "RateLimited", "SnapshotNotAvailable", "UnknownSymbol",
]


class MissingCredentials(ProviderError):
    """No API keys are configured for a provider that needs them."""


class BadCredentials(ProviderError):
    """The provider refused the configured keys (HTTP 401, or 403 without an entitlement reason)."""


class NotEntitled(ProviderError):
    """The account has no subscription for the feed asked for (HTTP 403 naming the feed)."""


class RateLimited(ProviderError):
    """The provider kept answering 429 after every retry the policy allows."""


class ProviderTimeout(ProviderError):
    """The provider did not answer within the configured timeout, retries included."""


class ProviderUnavailable(ProviderError):
    """The provider could not be reached, or kept failing with server errors (5xx)."""


class SnapshotNotAvailable(ProviderError):
    """A live-only dataset (an option chain snapshot) was asked for a session it no longer describes."""
