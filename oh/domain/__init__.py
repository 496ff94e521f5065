"""The pure domain: pricing, OCC symbols, the calendar, flow, derived metrics, checks, the portfolio
model and its analysis. Imports contracts only: no sockets, no DuckDB, no vendor SDK, no files."""
