# eohub drop-in 10: login settings shared by eohub's LDAP and OIDC authenticators.
#
# Pick the authenticator and its directory or provider settings in your own file
# (see the how-to pages for OpenLDAP, Active Directory, Keycloak and EGI Check-in);
# these settings make the group model work whichever you choose.
# The Zero to JupyterHub chart runs drop-ins in its own config file's globals, where `c`
# is already set and `get_config` is the chart's z2jh.get_config(key).
c = globals().get("c") or get_config()

# Groups, PIs, uid/gid and the git identity are kept in auth_state, which JupyterHub
# encrypts: set JUPYTERHUB_CRYPT_KEY in the hub's environment (`openssl rand -hex 32`).
c.Authenticator.enable_auth_state = True

# Re-read groups every 5 minutes and before each spawn, so that a user removed from a
# group loses what it granted without having to log out.
c.Authenticator.auth_refresh_age = 300
c.Authenticator.refresh_pre_spawn = True
