# The demo hub's config: loopback only, state in .demo/, and the same drop-ins from
# jupyterhub_config.d/ that admins copy. demo/run.py starts the demo directory (slapd)
# and sets the EOHUB_DEMO_* variables.
import glob
import os

c = get_config()  # noqa: F821
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STATE = os.environ["EOHUB_DEMO_STATE"]

for path in sorted(glob.glob(os.path.join(ROOT, "jupyterhub_config.d", "*.py"))):
    load_subconfig(path)  # noqa: F821
# python demo/run.py --portal sets EOHUB_EMBED_ORIGINS to its portal page's origin
# (http://localhost:<port>); drop-in 45 then lets that page frame the hub and the users'
# servers (docs/how-to/embedding.md). The hub's public URL, which eohub checks the
# origins against (a portal must not be the hub's own origin), is the demo's.
if os.environ.get("EOHUB_EMBED_ORIGINS"):
    c.JupyterHub.public_url = f"http://127.0.0.1:{os.environ['EOHUB_DEMO_PORT']}/"

c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = int(os.environ["EOHUB_DEMO_PORT"])
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = int(os.environ["EOHUB_DEMO_HUB_PORT"])
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{os.environ['EOHUB_DEMO_PROXY_API_PORT']}"
c.ConfigurableHTTPProxy.command = [os.environ["EOHUB_DEMO_CHP"]]
# python demo/run.py --json-logs: drop-in 40 (EOHUB_LOG_FORMAT=json) makes the hub's and
# the accounting service's lines JSON. The proxy and the users' servers have text logs of
# their own; they append them to files in .demo/logs/, so the hub's stderr is JSON only.
if os.environ.get("EOHUB_DEMO_TEXT_LOGS"):
    import shlex

    def _output_to(name: str) -> list[str]:
        log = shlex.quote(os.path.join(os.environ["EOHUB_DEMO_TEXT_LOGS"], name))
        return ["/bin/sh", "-c", f'exec "$0" "$@" >>{log} 2>&1']

    c.ConfigurableHTTPProxy.command = [*_output_to("proxy.log"), os.environ["EOHUB_DEMO_CHP"]]
    c.Spawner.cmd = [*_output_to("servers.log"), "jupyterhub-singleuser"]
c.JupyterHub.db_url = "sqlite:///" + os.path.join(STATE, "jupyterhub.sqlite")
c.JupyterHub.cookie_secret_file = os.path.join(STATE, "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = os.path.join(STATE, "jupyterhub.pid")

# Login: eohub's LDAP authenticator against the demo directory, over LDAPS with the CA
# the demo generated. Users and groups are in tests/data/10-directory.ldif.
c.JupyterHub.authenticator_class = "eohub-ldap"
c.LDAPAuthenticator.server_urls = [os.environ["EOHUB_DEMO_LDAP_URL"]]
c.LDAPAuthenticator.tls_ca_file = os.environ["EOHUB_DEMO_LDAP_CA"]
c.LDAPAuthenticator.service_dn = os.environ["EOHUB_DEMO_LDAP_SERVICE_DN"]
c.LDAPAuthenticator.service_password = os.environ["EOHUB_DEMO_LDAP_SERVICE_PASSWORD"]
c.LDAPAuthenticator.user_search_base = "ou=people,dc=example,dc=org"
c.LDAPAuthenticator.group_search_base = "ou=groups,dc=example,dc=org"
c.LDAPAuthenticator.nested_groups = True
c.LDAPAuthenticator.pi_attribute = "owner"
_policy = c.LDAPAuthenticator
# python demo/run.py --with-oidc: visitors log in through an OpenID Connect provider
# beside the directory's staff, on one login page (docs/how-to/ldap-and-oidc.md). The
# access rules then sit on the combined authenticator, for users of both.
if os.environ.get("EOHUB_DEMO_OIDC_ISSUER"):
    c.JupyterHub.authenticator_class = "eohub-ldap-oidc"
    _hub = f"http://127.0.0.1:{os.environ['EOHUB_DEMO_PORT']}/hub"
    c.OIDCAuthenticator.issuer = os.environ["EOHUB_DEMO_OIDC_ISSUER"]
    c.OIDCAuthenticator.client_id = os.environ["EOHUB_DEMO_OIDC_CLIENT_ID"]
    c.OIDCAuthenticator.client_secret = os.environ["EOHUB_DEMO_OIDC_CLIENT_SECRET"]
    c.OIDCAuthenticator.oauth_callback_url = _hub + "/oauth_callback"
    c.OIDCAuthenticator.post_logout_redirect_uri = _hub + "/login"
    c.OIDCAuthenticator.scope = ["openid", "profile", "email", "groups"]
    c.OIDCAuthenticator.login_service = "the demo identity provider"
    _policy = c.LDAPOIDCAuthenticator
_policy.allowed_groups = {"researchers", "climate", "eo-scientists"}
_policy.admin_groups = {"hub-admins"}

# One machine: eohub's quota spawner runs servers as local processes, as the hub's own
# user (switch_user = False: demo only), each in its workspace .demo/home/<user>. The
# launch form shows the environments and sizes of the user's groups, and each session
# is charged to a group in the accounting service (demo/eohub_accounting_config.py).
c.JupyterHub.spawner_class = "eohub-local"
c.QuotaLocalSpawner.switch_user = False
c.QuotaLocalSpawner.charge_groups = ["climate", "eo-scientists", "researchers"]
c.QuotaLocalSpawner.launch_sizes = {
    "small": {"display_name": "Small", "cpu": 0.5, "memory": "1G"},
    "medium": {"display_name": "Medium", "cpu": 1, "memory": "2G", "memory_limit": "4G"},
    "large": {"display_name": "Large", "cpu": 2, "memory": "4G"},
}
c.QuotaLocalSpawner.launch_environments = {
    "lab": {
        "display_name": "JupyterLab",
        "description": "Python with the scientific stack",
        "sizes": ["small", "medium"],
        "default": True,
    },
    "climate-lab": {
        "display_name": "Climate modelling",
        "description": "For the climate group: larger sizes",
        "allowed_groups": ["climate"],
        "sizes": ["small", "medium", "large"],
        "env": {"CLIMATE_DATA": "/data/climate"},
        # Model runs take longer: the climate group's servers here may run a day.
        "group_limits": {"climate": {"max_duration": "1d"}},
    },
    "from-repo": {
        "display_name": "From a git repository",
        "description": "Clone a repository into your workspace and open it",
        "repository": True,
        "sizes": ["small", "medium"],
    },
    "classic": {
        "display_name": "Notebook (classic view)",
        "description": "The same server, opening the notebook view",
        "default_urlpath": "/tree",
    },
}
# Session limits, shown on the launch form and the home page: the accounting service
# stops a server idle for 2 hours (no activity in JupyterLab), or 12 hours after it
# started, and records why (docs/how-to/session-limits.md).
c.QuotaLocalSpawner.session_limits = {"idle_timeout": "2h", "max_duration": "12h"}
# The storage sampler (drop-in 35, demo/eohub_storage_config.py) measures the same
# workspaces every minute.
c.QuotaLocalSpawner.launch_volumes = {
    "home": {
        "kind": "workspace",
        "display_name": "Your workspace",
        "mount_path": "/home/jovyan",
        "local_path": os.path.join(STATE, "home", "{username}"),
    },
    "common_data": {
        "kind": "host_path",
        "display_name": "Common data (read-only)",
        "mount_path": "/data/common",
        "path": os.path.join(ROOT, "demo"),
        "read_only": True,
        "optional": True,
    },
}
# Repository launches: the demo serves its own repository (demo/example-repo) over git
# on loopback, which a real hub must never allow (allow_private_hosts, allow_http).
c.RepoLaunches.allow_http = True
c.RepoLaunches.allow_private_hosts = True
c.RepoLaunches.allowed_hosts = ["127.0.0.1", "github.com", "gitlab.com"]
c.RepoLaunches.trusted_repos = ["127.0.0.1/eohub-demo"]

# Launch links and the form's spawn route come with drop-in 00 (use_launch_links).

c.Spawner.start_timeout = 60
c.Spawner.http_timeout = 60
if os.geteuid() == 0:
    c.Spawner.args.append("--allow-root")

# Last: check the launch config, so a mistake stops the demo with the key named.
from eohub.spawner import check_hub_config  # noqa: E402

check_hub_config(c)
