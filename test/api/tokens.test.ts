import { createHash } from 'node:crypto';
import { main } from '@slipway/cli';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/dev-server.ts';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => server.stop());

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

describe('GET /v1/outbox', () => {
  it('is for admins only: approvers\' mails carry their approval links', async () => {
    for (const role of ['viewer', 'deployer', 'approver'] as const) {
      const token = await server.tokenFor(role, `outbox-${role}@example.com`);
      const refused = await server.call('GET', '/v1/outbox', { token });
      expect(refused.status).toBe(403);
      expect(refused.body.error.message).toMatch(new RegExp(`has role ${role}; this needs role admin`));
    }
    const allowed = await server.call('GET', '/v1/outbox');
    expect(allowed.status).toBe(200);
    expect(allowed.body).toHaveProperty('items');
  });
});

describe('token lifecycle through the API', () => {
  it('creates, uses, lists without the secret, revokes, and refuses the token at once', async () => {
    const created = await server.call('POST', '/v1/tokens', { body: { name: 'lifecycle@example.com', role: 'deployer' } });
    expect(created.status).toBe(201);
    expect(created.headers.get('location')).toBe('/v1/tokens/lifecycle%40example.com');
    expect(created.body).toEqual({
      name: 'lifecycle@example.com',
      role: 'deployer',
      token: expect.stringMatching(/^slw_[A-Za-z0-9_-]{43}$/),
      createdAt: expect.any(String),
    });
    const secret = created.body.token as string;

    const me = await server.call('GET', '/v1/me', { token: secret });
    expect(me.body).toEqual({ name: 'lifecycle@example.com', role: 'deployer' });

    const listed = await server.call('GET', '/v1/tokens');
    expect(listed.status).toBe(200);
    const mine = listed.body.items.find((t: any) => t.name === 'lifecycle@example.com');
    expect(mine).toEqual({
      name: 'lifecycle@example.com',
      role: 'deployer',
      createdAt: created.body.createdAt,
      createdBy: 'admin',
      lastUsedAt: expect.any(String),
    });
    expect(Date.parse(mine.lastUsedAt)).toBeGreaterThanOrEqual(Date.parse(created.body.createdAt));
    expect(listed.body.items.find((t: any) => t.name === 'admin')).toMatchObject({ role: 'admin', createdBy: 'bootstrap' });
    for (const text of [secret, sha256(secret), server.adminToken, sha256(server.adminToken)]) {
      expect(JSON.stringify(listed.body)).not.toContain(text);
    }

    const revoked = await server.call('DELETE', '/v1/tokens/lifecycle%40example.com');
    expect(revoked.status).toBe(204);
    expect(revoked.body).toBe('');
    const after = await server.call('GET', '/v1/me', { token: secret });
    expect(after.status).toBe(401);
    expect(after.body.error.message).toContain('unknown or expired token');
    expect((await server.call('GET', '/v1/tokens')).body.items.map((t: any) => t.name)).not.toContain('lifecycle@example.com');
    expect((await server.call('DELETE', '/v1/tokens/lifecycle%40example.com')).status).toBe(404);
  });

  it('keeps names unique: 409 while the name is taken, free again after a revoke', async () => {
    const first = await server.call('POST', '/v1/tokens', { body: { name: 'dup@example.com', role: 'viewer' } });
    expect(first.status).toBe(201);
    const second = await server.call('POST', '/v1/tokens', { body: { name: 'dup@example.com', role: 'admin' } });
    expect(second.status).toBe(409);
    expect(second.body.error).toMatchObject({ code: 'conflict', message: expect.stringMatching(/a token named dup@example.com exists/) });
    expect((await server.call('GET', '/v1/me', { token: first.body.token })).body.role).toBe('viewer');
    expect((await server.call('POST', '/v1/tokens', { body: { name: 'admin', role: 'viewer' } })).status).toBe(409);

    expect((await server.call('DELETE', '/v1/tokens/dup@example.com')).status).toBe(204);
    const again = await server.call('POST', '/v1/tokens', { body: { name: 'dup@example.com', role: 'approver' } });
    expect(again.status).toBe(201);
    expect((await server.call('GET', '/v1/me', { token: again.body.token })).body.role).toBe('approver');
    expect((await server.call('GET', '/v1/me', { token: first.body.token })).status).toBe(401);
  });

  it('sets an expiry from expiresInSeconds and checks its range', async () => {
    const before = Date.now();
    const created = await server.call('POST', '/v1/tokens', { body: { name: 'short-lived', role: 'viewer', expiresInSeconds: 3600 } });
    expect(created.status).toBe(201);
    const expiresAt = Date.parse(created.body.expiresAt);
    expect(expiresAt - Date.parse(created.body.createdAt)).toBe(3_600_000);
    expect(expiresAt).toBeGreaterThanOrEqual(before + 3_600_000);
    expect((await server.call('GET', '/v1/tokens')).body.items.find((t: any) => t.name === 'short-lived')).toMatchObject({
      expiresAt: created.body.expiresAt,
    });
    for (const expiresInSeconds of [0, 59, 31_536_001, 1.5, '60']) {
      const bad = await server.call('POST', '/v1/tokens', { body: { name: 'bad-expiry', role: 'viewer', expiresInSeconds } });
      expect(bad.status).toBe(400);
      expect(bad.body.error.details.map((d: any) => d.field)).toEqual(['expiresInSeconds']);
    }
  });

  it('lets only admins list and revoke, and never revokes the last admin token', async () => {
    const deployer = await server.tokenFor('deployer', 'not-an-admin@example.com');
    expect((await server.call('GET', '/v1/tokens', { token: deployer })).status).toBe(403);
    expect((await server.call('DELETE', '/v1/tokens/admin', { token: deployer })).status).toBe(403);
    const last = await server.call('DELETE', '/v1/tokens/admin');
    expect(last.status).toBe(409);
    expect(last.body.error.message).toMatch(/last admin token/);
    expect((await server.call('GET', '/v1/me')).status).toBe(200);
    expect((await server.call('DELETE', '/v1/tokens/nobody@example.com')).status).toBe(404);
    expect((await server.call('DELETE', '/v1/tokens/not%20a%20name')).status).toBe(400);
    expect((await server.call('GET', '/v1/tokens/admin')).status).toBe(405);
  });

  it('says "unknown or expired token" to a well-formed unknown token, and "Bearer <token>" only to a malformed header', async () => {
    for (const token of ['slw_well-formed-but-never-issued-0000000000', 'abc.def.ghi']) {
      const refused = await server.call('GET', '/v1/apps', { token });
      expect(refused.status).toBe(401);
      expect(refused.body.error.message).toContain('unknown or expired token');
      expect(refused.body.error.message).not.toContain('Bearer');
    }
    for (const authorization of ['Basic YWxhZGRpbjpvcGVu', 'Bearer', `Token ${server.adminToken}`]) {
      const refused = await server.call('GET', '/v1/apps', { token: null, headers: { authorization } });
      expect(refused.status).toBe(401);
      expect(refused.body.error.message).toBe('the Authorization header must be "Bearer <token>"');
    }
  });
});

describe('slipway token', () => {
  async function slipway(args: string[]) {
    const out: string[] = [];
    const err: string[] = [];
    const code = await main(args, { SLIPWAY_URL: server.url, SLIPWAY_TOKEN: server.adminToken }, {
      out: (line) => out.push(line),
      err: (line) => err.push(line),
    });
    return { code, out: out.join('\n'), err: err.join('\n') };
  }

  it('creates with an expiry, lists, and revokes', async () => {
    const created = await slipway(['token', 'create', '--name', 'cli-bot', '--role', 'deployer', '--expires-in', '600']);
    expect(created.code).toBe(0);
    expect(created.out).toMatch(/^slw_/);
    expect(created.err).toMatch(/token for cli-bot \(deployer, expires .+\); it is shown only now/);
    expect((await server.call('GET', '/v1/me', { token: created.out })).status).toBe(200);

    const listed = await slipway(['token', 'list', '--json']);
    expect(listed.code).toBe(0);
    const bot = JSON.parse(listed.out).items.find((t: any) => t.name === 'cli-bot');
    expect(bot).toMatchObject({ role: 'deployer', createdBy: 'admin', expiresAt: expect.any(String), lastUsedAt: expect.any(String) });
    expect(listed.out).not.toContain(created.out);
    const human = await slipway(['token', 'list']);
    expect(human.out).toMatch(/^cli-bot {2}deployer {2}created .+ by admin {2}last used .+ {2}expires /m);

    expect(await slipway(['token', 'revoke', 'cli-bot'])).toMatchObject({ code: 0, out: 'token cli-bot revoked' });
    expect((await server.call('GET', '/v1/me', { token: created.out })).status).toBe(401);
    expect(await slipway(['token', 'revoke', 'cli-bot'])).toMatchObject({ code: 1, err: expect.stringMatching(/no token is named cli-bot/) });
    expect(await slipway(['token', 'create', '--name', 'x', '--role', 'viewer', '--expires-in', 'soon'])).toMatchObject({ code: 2 });
    expect(await slipway(['token', 'revoke'])).toMatchObject({ code: 2, err: expect.stringMatching(/missing required argument 'name'[\s\S]*slipway token revoke --help/) });
    expect(await slipway(['token', 'rotate'])).toMatchObject({ code: 2 });
  });
});
