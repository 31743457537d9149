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
