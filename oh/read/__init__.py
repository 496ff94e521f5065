"""Read models: SQL views of the warehouse read through the query client (health, latest quotes)."""
