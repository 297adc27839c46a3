"""The warehouse: tables, migrations, loading and the queries the rest of the product asks."""
