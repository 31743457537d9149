"""Storage samplers: measure how much each user and group stores, and post it to accounting.

Each sampler runs where the data is (the NFS home server, the Kubernetes cluster, the one
machine) and posts samples through the accounting service's ingest scope. Run one with
``eohub-storage-sampler --sampler=filesystem|kubernetes|local``.
"""
