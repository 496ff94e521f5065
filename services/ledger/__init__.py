"""The ledger: sequencer, journal writer, single owner of the DuckDB file, query and catch-up server."""
