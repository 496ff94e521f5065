"""The Panel dashboard (not built yet: see the dashboard issue). Nothing imports this package yet."""
