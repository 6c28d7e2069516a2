"""Operating revsync: status, failure alerts; correlation ids and business metrics (the report: planned)."""
