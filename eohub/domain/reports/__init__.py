"""Reports from the ledger: Open XDMoD job records, CSV rows and chart series."""
