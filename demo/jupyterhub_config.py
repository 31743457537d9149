# The demo hub's config: loopback only, state in .demo/, and the same drop-ins from
# jupyterhub_config.d/ that admins copy. demo/run.py sets the EOHUB_DEMO_* variables.
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

# Login: any user name with the password demo/run.py printed; "admin" is an admin.
# Later capabilities replace this with eohub's LDAP authenticator against a demo slapd.
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = os.environ["EOHUB_DEMO_PASSWORD"]
c.Authenticator.allow_all = True
c.Authenticator.admin_users = {"admin"}

# One machine: servers run as local processes with their home in .demo/home/<user>.
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = os.path.join(STATE, "home", "{username}")
c.Spawner.start_timeout = 60
c.Spawner.http_timeout = 60
if os.geteuid() == 0:
    c.Spawner.args.append("--allow-root")
