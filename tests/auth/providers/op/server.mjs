// The certified OpenID provider (npm `oidc-provider`) the external-provider tests sign in with.
//
// Started by tests/auth/providers/conftest.py on a free loopback port with one confidential test
// client whose redirect URI is BlockBot's callback. Its development interactions (login and
// consent screens) are driven over HTTP by the tests. Accounts are arranged by the tests through
// POST /__test/accounts {id, email, email_verified, name}: a login with that id gets those claims.
import http from 'node:http';

import Provider from 'oidc-provider';

const port = Number(process.env.OP_PORT);
const issuer = `http://127.0.0.1:${port}`;
const accounts = new Map();

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: process.env.OP_CLIENT_ID,
      client_secret: process.env.OP_CLIENT_SECRET,
      redirect_uris: process.env.OP_REDIRECT_URIS.split(','),
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
  },
  features: {
    devInteractions: { enabled: true },
  },
  async findAccount(ctx, sub) {
    const account = accounts.get(sub) ?? { email: `${sub}@unverified.test`, email_verified: false };
    return {
      accountId: sub,
      async claims() {
        return { sub, ...account };
      },
    };
  },
});

// Test-only endpoint: arrange the claims of an account id.
provider.use(async (ctx, next) => {
  if (ctx.path === '/__test/accounts' && ctx.method === 'POST') {
    const chunks = [];
    for await (const chunk of ctx.req) chunks.push(chunk);
    const { id, ...claims } = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    accounts.set(id, claims);
    ctx.status = 204;
    return;
  }
  await next();
});

http.createServer(provider.callback()).listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${issuer}`);
});
