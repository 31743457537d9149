# eohub drop-in 45: let a portal embed the hub and the users' JupyterLab in an iframe,
# when $EOHUB_EMBED_ORIGINS is set (origins separated by spaces or commas, e.g.
# "https://portal.example.org https://*.science.example.org"). Without it this file
# does nothing, and JupyterHub's default stays: no page may frame the hub or a server.
#
# eohub.embedding.allow_embedding(c, origins) sets the hub's Content-Security-Policy
# frame-ancestors (merged into c.JupyterHub.tornado_settings, keeping what the site or
# the Zero to JupyterHub chart set there), SameSite=None; Secure on the hub's cookies
# (served over https only), and the same policy for every user's server through the
# spawner's args (--ServerApp.tornado_settings=...). It refuses at start-up, saying why:
# "*", 'self' or the hub's own origin while the hub and the users' servers share one
# origin (no c.JupyterHub.subdomain_host), http other than loopback, paths, and
# wildcards that cover the users' servers. Set c.JupyterHub.subdomain_host (and your own
# --ServerApp.tornado_settings argument, if any) in a file before this one. When the hub
# starts it checks the origins again against c.JupyterHub.public_url (warning once when
# that is unset: set it, hub.config.JupyterHub.public_url in Zero to JupyterHub). With
# KubeSpawner, singleuser.cmd: null, a profile overriding `args`, or args assigned after
# this file drop the servers' argument (see the how-to).
#
# Logging in through OIDC must happen in the top-level window: providers refuse to be
# framed. The portal links to the hub with target="_top" (or opens a popup) for login;
# see the how-to "Embed the hub in a portal".
# The Zero to JupyterHub chart runs drop-ins in its own config file's globals, where `c`
# is already set and `get_config` is the chart's z2jh.get_config(key).
import os

from eohub.embedding import allow_embedding, split_origins

c = globals().get("c") or get_config()

_embed_origins = split_origins(os.environ.get("EOHUB_EMBED_ORIGINS", ""))
if _embed_origins:
    allow_embedding(c, _embed_origins)
