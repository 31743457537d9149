"""The accounting hub-service: usage ledger, quota checks, reports and exports."""
