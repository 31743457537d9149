"""Quota-aware spawners (Kubernetes and local process) and the group-aware launch form."""
