# The demo's accounting service config: groups of the demo directory, their PIs,
# allocation periods and quotas. demo/run.py points EOHUB_ACCOUNTING_CONFIG here.
c = get_config()  # noqa: F821

c.AccountingService.groups = {
    "climate": {
        "display_name": "Climate modelling",
        "allocation": "month",
        "pis": ["carol"],
        "quotas": {
            "": {"core_hours": 200, "gpu_hours": 10, "max_servers": 6, "max_cores": 8},
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
