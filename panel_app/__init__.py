"""The Panel dashboard (`oh ui`): every page live from the bus, history through the ledger, read-only."""
