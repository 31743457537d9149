"""JupyterHub Authenticator classes that resolve one group model from LDAP or OIDC."""
