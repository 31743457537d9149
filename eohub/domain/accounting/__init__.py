"""Usage accounting: events, limits, the ledger, periods, quotas, reconcile, enforcement."""
