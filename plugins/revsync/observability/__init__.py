"""Correlation ids, business metrics and the HTML report (planned)."""
