"""The OpenID Connect authenticator: code flow with PKCE, claims to groups, logout."""
