"""The warehouse: tables, migrations, loading, and the queries the rest of the product asks, by
what they read (roster_queries, record_queries, rejection_queries; plan_queries: a plan's SQL)."""
