# eohub drop-in 00: hub-wide settings that the launch form and accounting build on.
#
# Drop-ins load in file-name order, the way the Zero to JupyterHub chart loads
# /usr/local/etc/jupyterhub/jupyterhub_config.d/*.py (see README.md in this folder).
# Copy the files you want into your hub's config folder and edit the values.
# The Zero to JupyterHub chart runs drop-ins in its own config file's globals, where `c`
# is already set and `get_config` is the chart's z2jh.get_config(key).
c = globals().get("c") or get_config()

# JupyterLab is the default interface; an environment on the launch form can open
# another path (/vscode, /rstudio) through its urlpath.
c.Spawner.default_url = "/lab"

# Scientists may run several environments side by side, each charged on its own; the
# launch form asks for a server name. Raise or lower the limit to suit your cluster.
c.JupyterHub.allow_named_servers = True
c.JupyterHub.named_server_limit_per_user = 3

# eohub's pages under /hub/: launch links (/hub/eohub/launch/...), their badge, and the
# launch form's own Start (/hub/eohub/spawn/...), which shows a refused launch again on
# that server's form with the user's choices. Added to a site's own extra_handlers, once
# however many files call it. JupyterHub's start-up note that extra_handlers is
# deprecated then reads as an INFO line: it is still the one way to serve such pages.
from eohub.spawner.form.hub_routes import use_launch_links  # noqa: E402

use_launch_links(c)

# Who stopped each server, for the usage ledger: its user, an admin (or a service such as
# the accounting service), an idle culler (the Zero to JupyterHub chart's service
# "jupyterhub-idle-culler"), or the hub shutting down. eohub serves JupyterHub's own
# server stop routes (/hub/api/users/<name>/server...) with handlers that note the caller
# and then do exactly what JupyterHub's do; the hub's start-up log says so.
from eohub.spawner.stop_routes import use_stop_reasons  # noqa: E402

use_stop_reasons(c)
