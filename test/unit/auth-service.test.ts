import {
  ConflictError,
  createAuditLog,
  createAuthService,
  createLogger,
  createUlidGenerator,
  NotFoundError,
  type Principal,
  UnauthorizedError,
  ValidationError,
} from '@slipway/core';
import { describe, expect, it } from 'vitest';
import { createMemoryAuditStore, createMemoryTokenStore } from '../../packages/core/src/testing/memory-stores.ts';
import { manualClock } from '../support/fixtures.ts';

const ADMIN: Principal = { name: 'admin', role: 'admin' };
const BOOTSTRAP = 'slw_bootstrap-admin-secret-00000';

async function setup() {
  const clock = manualClock('2026-03-01T12:00:00.000Z');
  const tokens = createMemoryTokenStore();
  const auditStore = createMemoryAuditStore();
  const logger = createLogger({ service: 'test', write: () => undefined });
  const audit = createAuditLog({ store: auditStore, clock, ids: createUlidGenerator(clock), logger });
  const touches: string[] = [];
  const counted = { ...tokens, touchToken: async (hash: string, at: string, notBefore: string) => {
    touches.push(at);
    await tokens.touchToken(hash, at, notBefore);
  } };
  const auth = createAuthService({ tokens: counted, clock, audit, logger });
  await auth.ensureAdminToken(BOOTSTRAP);
  return { clock, auth, tokens, auditStore, touches };
}

const bearer = (token: string) => `Bearer ${token}`;

describe('auth service: token lifecycle with a controllable clock', () => {
  it('refuses a token from the moment it expires, with the same words as an unknown one', async () => {
    const { clock, auth } = await setup();
    const created = await auth.createToken({ name: 'ci', role: 'deployer', expiresInSeconds: 60 }, ADMIN);
    expect(created).toEqual({
      name: 'ci',
      role: 'deployer',
      token: expect.stringMatching(/^slw_/),
      createdAt: '2026-03-01T12:00:00.000Z',
      expiresAt: '2026-03-01T12:01:00.000Z',
    });
    clock.advance(59_999);
    expect(await auth.authenticate(bearer(created.token))).toEqual({ name: 'ci', role: 'deployer' });
    clock.advance(1);
    const expired = auth.authenticate(bearer(created.token));
    await expect(expired).rejects.toBeInstanceOf(UnauthorizedError);
    await expect(expired).rejects.toThrow('unknown or expired token');
    // Expired is still listed (an admin sees it and can revoke it), with its expiry.
    expect((await auth.listTokens()).items.find((t) => t.name === 'ci')).toMatchObject({ expiresAt: '2026-03-01T12:01:00.000Z' });
  });

  it('tells a malformed header from an unknown token', async () => {
    const { auth } = await setup();
    for (const header of [undefined, '']) {
      await expect(auth.authenticate(header)).rejects.toThrow('"Authorization: Bearer <token>"');
    }
    for (const header of ['Basic abc', 'Bearer', 'Bearer two tokens', 'slw_just-the-token-no-scheme']) {
      await expect(auth.authenticate(header)).rejects.toThrow('the Authorization header must be "Bearer <token>"');
    }
    for (const header of ['Bearer slw_well-formed-but-never-issued', 'Bearer short', 'Bearer has.dots.like.a.jwt']) {
      const refused = auth.authenticate(header);
      await expect(refused).rejects.toThrow('unknown or expired token');
      await expect(refused).rejects.not.toThrow('Bearer');
    }
  });

  it('writes lastUsedAt at most once a minute per token', async () => {
    const { clock, auth, touches } = await setup();
    const { token } = await auth.createToken({ name: 'busy', role: 'viewer' }, ADMIN);
    touches.length = 0;
    for (let i = 0; i < 5; i++) {
      await auth.authenticate(bearer(token));
      clock.advance(10_000);
    }
    expect(touches).toEqual(['2026-03-01T12:00:00.000Z']);
    clock.set('2026-03-01T12:01:00.000Z');
    await auth.authenticate(bearer(token));
    expect(touches).toHaveLength(1);
    clock.set('2026-03-01T12:01:00.001Z');
    await auth.authenticate(bearer(token));
    expect(touches).toEqual(['2026-03-01T12:00:00.000Z', '2026-03-01T12:01:00.001Z']);
    expect((await auth.listTokens()).items.find((t) => t.name === 'busy')?.lastUsedAt).toBe('2026-03-01T12:01:00.001Z');
  });

  it('revokes at once, refuses the last working admin token, and keeps the bootstrap name', async () => {
    const { clock, auth } = await setup();
    const { token } = await auth.createToken({ name: 'dev', role: 'deployer' }, ADMIN);
    await auth.revokeToken('dev', ADMIN);
    await expect(auth.authenticate(bearer(token))).rejects.toThrow('unknown or expired token');
    await expect(auth.revokeToken('dev', ADMIN)).rejects.toBeInstanceOf(NotFoundError);

    const lastAdmin = auth.revokeToken('admin', ADMIN);
    await expect(lastAdmin).rejects.toBeInstanceOf(ConflictError);
    await expect(lastAdmin).rejects.toThrow(/last admin token/);
    // An admin token that has expired does not count as a way back in.
    await auth.createToken({ name: 'temp-admin', role: 'admin', expiresInSeconds: 60 }, ADMIN);
    clock.advance(61_000);
    await expect(auth.revokeToken('admin', ADMIN)).rejects.toThrow(/last admin token/);
    const second = await auth.createToken({ name: 'ops', role: 'admin' }, ADMIN);
    await auth.revokeToken('admin', { name: 'ops', role: 'admin' });
    await expect(auth.authenticate(bearer(BOOTSTRAP))).rejects.toThrow('unknown or expired token');
    expect(await auth.authenticate(bearer(second.token))).toEqual({ name: 'ops', role: 'admin' });

    await expect(auth.createToken({ name: 'admin', role: 'viewer' }, ADMIN)).rejects.toThrow(/kept for the bootstrap admin token/);
    await expect(auth.createToken({ name: 'ops', role: 'viewer' }, ADMIN)).rejects.toThrow(/a token named ops exists/);
  });

  it.each([
    [59, 'at least 60'],
    [31_536_001, 'at most 31536000'],
    [90.5, 'whole number'],
    ['3600', 'whole number'],
  ])('refuses expiresInSeconds %s', async (expiresInSeconds, message) => {
    const { auth } = await setup();
    const refused = auth.createToken({ name: 'x', role: 'viewer', expiresInSeconds }, ADMIN);
    await expect(refused).rejects.toBeInstanceOf(ValidationError);
    await expect(refused).rejects.toThrow(message);
  });

  it('audits creations and revocations by name and role, never the secret', async () => {
    const { auth, auditStore } = await setup();
    const created = await auth.createToken({ name: 'robot', role: 'deployer', expiresInSeconds: 3600 }, ADMIN);
    await auth.revokeToken('robot', ADMIN);
    const { items } = await auditStore.list({ limit: 10 });
    expect(items.map((e) => [e.action, e.actor, e.subject, e.details])).toEqual([
      ['token.revoked', 'admin', 'tokens/robot', { name: 'robot', role: 'deployer' }],
      ['token.created', 'admin', 'tokens/robot', { name: 'robot', role: 'deployer', expiresAt: '2026-03-01T13:00:00.000Z' }],
    ]);
    expect(JSON.stringify(items)).not.toContain(created.token);
  });
});
