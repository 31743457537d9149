"""Usage accounting: events and the rules of their ingest, limits, the ledger, periods,
quotas and the standings against them, reconcile, enforcement."""
