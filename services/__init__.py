"""Long-lived processes: the ledger and the workers. Each is `python -m services.NAME`."""
