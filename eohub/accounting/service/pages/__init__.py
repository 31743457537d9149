"""The usage pages: my usage, my groups (for PIs) and all usage (for admins)."""
