// A real OpenID Connect provider (npm oidc-provider) on loopback, configured per test.
// Usage: node tools/node/oidc_provider.mjs CONFIG.json   (written by tests/support/oidc.py)
import { readFileSync } from 'node:fs';
import Provider from 'oidc-provider';

const cfg = JSON.parse(readFileSync(process.argv[2], 'utf8'));

const configuration = {
  clients: cfg.clients,
  claims: cfg.scopes_claims,
  // Requested claims go in the ID token too, as Keycloak and EGI Check-in do.
  conformIdTokenClaims: false,
  async findAccount(ctx, id) {
    // Re-read the accounts on every lookup, so a test can change a user's claims (say,
    // remove a group) while the provider runs, as an admin would at a real provider.
    const account = JSON.parse(readFileSync(process.argv[2], 'utf8')).accounts[id];
    if (!account) return undefined;
    return { accountId: id, async claims() { return { sub: id, ...account }; } };
  },
  jwks: cfg.jwks,
  cookies: { keys: [cfg.cookie_key] },
  // Built-in login and consent pages; any login name is accepted, and findAccount
  // decides which claims it gets.
  features: { devInteractions: { enabled: true }, rpInitiatedLogout: { enabled: true } },
  pkce: { required: () => cfg.pkce_required },
  ttl: cfg.ttl,
  // Keep refresh tokens usable in tests that exercise refresh.
  issueRefreshToken: async () => true,
};

const provider = new Provider(cfg.issuer, configuration);
provider.on('server_error', (ctx, err) => console.error('server_error', err));
provider.on('grant.error', (ctx, err) => console.error('grant.error', err.message, err.error_description || ''));
provider.listen(cfg.port, '127.0.0.1', () => console.log(`oidc-provider ready at ${cfg.issuer}`));
