"""The edges: market data providers (one folder per vendor: sim, alpaca, yahoo; history and streams),
user files (portfolio, watchlists, schedule, provider settings) and supervisord."""
