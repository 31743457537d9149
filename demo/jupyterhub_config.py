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

c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = int(os.environ["EOHUB_DEMO_PORT"])
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = int(os.environ["EOHUB_DEMO_HUB_PORT"])
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{os.environ['EOHUB_DEMO_PROXY_API_PORT']}"
c.ConfigurableHTTPProxy.command = [os.environ["EOHUB_DEMO_CHP"]]
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
c.LDAPAuthenticator.allowed_groups = {"researchers", "climate", "eo-scientists"}
c.LDAPAuthenticator.admin_groups = {"hub-admins"}

# One machine: servers run as local processes with their home in .demo/home/<user>.
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = os.path.join(STATE, "home", "{username}")
c.Spawner.start_timeout = 60
c.Spawner.http_timeout = 60
if os.geteuid() == 0:
    c.Spawner.args.append("--allow-root")
