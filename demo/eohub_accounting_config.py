# The demo's accounting service config: groups of the demo directory, their PIs,
# allocation periods and quotas. demo/run.py points EOHUB_ACCOUNTING_CONFIG here.
c = get_config()  # noqa: F821

c.AccountingService.groups = {
    "climate": {
        "display_name": "Climate modelling",
        "allocation": "month",
        "pis": ["carol"],
        "quotas": {
            # Its members' workspaces (measured by the storage sampler, drop-in 35) may
            # hold 10 GiB together. To see the warnings, make bob's hold more:
            #   fallocate -l 11G .demo/home/bob/big.nc   (then wait a minute)
            "": {
                "core_hours": 200,
                "gpu_hours": 10,
                "max_servers": 6,
                "max_cores": 8,
                "storage_bytes": 10 * 1024**3,
            },
            "*": {"max_servers": 2},
        },
    },
    "eo-scientists": {
        "display_name": "Earth observation",
        "allocation": "quarter",
        "quotas": {"": {"core_hours": 500}},
    },
    "researchers": {
        "display_name": "All researchers",
        "allocation": "rolling:30",
        "quotas": {"*": {"core_hours": 50, "max_servers": 1}},
    },
}
# Check every minute that running servers and open sessions agree.
c.AccountingService.reconcile_interval = 60
# A spent budget is only warned of; session limits (demo/jupyterhub_config.py's
# session_limits) are enforced whatever this says, with a warning on the usage pages
# 15 minutes before a server reaches its maximum duration.
c.AccountingService.enforcement = "warn"
c.AccountingService.max_duration_warning = 900
# A group over its storage quota may start servers for a day more (default: 3 days).
c.AccountingService.storage_grace = 24 * 3600
