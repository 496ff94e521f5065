"""Alpaca (alpaca-py): history, option chains and bars, and the live stock, option and trade streams."""
