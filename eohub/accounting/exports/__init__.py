"""Usage exports: CSV and Open XDMoD job records, written in parallel by worker processes."""
