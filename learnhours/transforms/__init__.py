"""Pure functions: rows in, rows out. Nothing here touches the database, the network or mail."""
