"""Pure logic of the storage samplers: who owns what they measure, and parsing the
reports they read (kubelet stats, Prometheus, ``xfs_quota``). Standard library only."""
