"""The simulated market: deterministic candles, option chains, option bars and a live feed (offline)."""
