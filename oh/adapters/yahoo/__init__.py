"""Yahoo Finance (yfinance): daily candles, option chains and option bars."""
