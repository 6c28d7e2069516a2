"""revsync: keeps billing, CRM, support and ERP in step.

Extract DAGs land vendor data in a warehouse, dbt reconciles it, Great Expectations gates the
change sets and push DAGs write them back. See README.md and ARCHITECTURE.md.
"""

__version__ = "0.1.0"
