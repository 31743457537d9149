# The demo's storage sampler config: drop-in 35 runs the sampler as a managed service
# and demo/run.py points EOHUB_STORAGE_CONFIG here. JupyterHub starts its services in its
# own working folder, the demo's state folder (.demo/), which holds the workspaces that
# demo/jupyterhub_config.py's launch_volumes name: home/<user>.
import os

c = get_config()  # noqa: F821

c.LocalWorkspaceSampler.workspace_paths = [os.path.join(os.getcwd(), "home", "{username}")]
# A user in several of these directory groups is charged to the first (alice: eo-scientists).
c.Sampler.group_priority = ["climate", "eo-scientists", "researchers"]
# Every minute, to see numbers in a demo; a real hub samples hourly (the default).
c.StorageSamplerApp.interval = 60
