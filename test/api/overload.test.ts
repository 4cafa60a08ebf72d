import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type ApiServices,
  createHttpApi,
  createIdempotency,
  IdempotencyInProgressError,
  IdempotencyKeyReusedError,
  silentLogger,
} from '@slipway/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManualClock } from '../../packages/core/src/testing/fakes.ts';
import { createMemoryIdempotencyStore } from '../../packages/core/src/testing/memory-release-store.ts';
import { startTestServer, type TestServer } from '../support/dev-server.ts';

/**
 * Under overload nothing lies (issue 18): an open retried with its Idempotency-Key answers the first
 * answer and opens nothing more; beyond capacity the API refuses at once with 503 and Retry-After.
 * Requests are held with promises the test resolves: nothing is timed.
 */
describe('Idempotency-Key on POST /v1/releases', () => {
  let server: TestServer;
  let artifact: { key: string; sha256: string };
  beforeAll(async () => {
    server = await startTestServer();
    await mkdir(join(server.dataDir, 'fleet', 'idem-1'), { recursive: true });
    const config = { name: 'idem', deployRoot: '/srv/idem', queue: true, environments: [{ name: 'production', targets: { hosts: ['idem-1'] } }] };
    expect((await server.call('PUT', '/v1/apps/idem', { body: config })).status).toBe(200);
    artifact = await server.upload('idem', 'idempotent');
  });
  afterAll(async () => server?.stop());

  const releasesOfApp = async () => (await server.call('GET', '/v1/releases?app=idem')).body.items.map((item: { id: string }) => item.id);

  it('answers a retry with the first answer and opens one release; another body with the key is refused', async () => {
    const body = { app: 'idem', version: '1.0.0', artifact };
    const headers = { 'idempotency-key': 'open-1f1b6c1e' };
    const first = await server.call('POST', '/v1/releases', { body, headers });
    expect(first.status).toBe(202);
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    const retry = await server.call('POST', '/v1/releases', { body, headers });
    expect(retry.status).toBe(202);
    expect(retry.body).toEqual(first.body);
    expect(retry.headers.get('location')).toBe(first.headers.get('location'));
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(await releasesOfApp()).toEqual([first.body.id]);

    const reused = await server.call('POST', '/v1/releases', { body: { ...body, version: '2.0.0' }, headers });
    expect(reused.status).toBe(422);
    expect(reused.body.error.code).toBe('idempotency_key_reused');
    expect(await releasesOfApp()).toEqual([first.body.id]);

    // Another caller's same key is another request.
    const viewer = await server.call('POST', '/v1/releases', { body, headers, token: await server.tokenFor('deployer', 'other-deployer') });
    expect(viewer.status).toBe(202);
    expect(viewer.body.id).not.toBe(first.body.id);
  });

  it('refuses a malformed key, naming the header', async () => {
    const refused = await server.call('POST', '/v1/releases', {
      body: { app: 'idem', version: '3.0.0', artifact },
      headers: { 'idempotency-key': 'has spaces in it' },
    });
    expect(refused.status).toBe(400);
    expect(JSON.stringify(refused.body.error.details)).toContain('Idempotency-Key');
  });
});

describe('idempotency while the first request runs, and after it failed', () => {
  it('answers 409 in progress to a concurrent retry, and runs again after a failure', async () => {
    const idempotency = createIdempotency({ store: createMemoryIdempotencyStore(), clock: createManualClock() });
    const scope = { caller: 'alice', route: 'openRelease', key: 'k-1' };
    let finish!: () => void;
    const first = idempotency.run(scope, '{}', () => new Promise((resolve) => (finish = () => resolve({ status: 202, body: { id: 'r1' } }))));
    await expect(idempotency.run(scope, '{}', async () => ({ status: 202, body: { id: 'r2' } }))).rejects.toThrow(IdempotencyInProgressError);
    await expect(idempotency.run(scope, '{"other":1}', async () => ({ status: 202, body: {} }))).rejects.toThrow(IdempotencyKeyReusedError);
    finish();
    expect(await first).toEqual({ status: 202, body: { id: 'r1' }, replayed: false });

    const failing = { ...scope, key: 'k-2' };
    await expect(idempotency.run(failing, '{}', async () => Promise.reject(new Error('store down')))).rejects.toThrow('store down');
    expect(await idempotency.run(failing, '{}', async () => ({ status: 202, body: { id: 'r3' } }))).toEqual({
      status: 202,
      body: { id: 'r3' },
      replayed: false,
    });
  });
});

describe('load shedding', () => {
  it('refuses a request beyond capacity at once with 503 and Retry-After, never /healthz, and takes requests again after', async () => {
    const held: (() => void)[] = [];
    const services = {
      logger: silentLogger,
      maxInFlightRequests: 2,
      auth: {
        authenticate: () => new Promise((resolve) => held.push(() => resolve({ name: 'admin', role: 'admin' }))),
        authorize: () => {},
      },
      apps: { list: async () => [] },
    } as unknown as ApiServices;
    const api = createHttpApi(services);
    const get = (path: string) => Promise.resolve(api.fetch(new Request(`http://slipway.test${path}`, { headers: { authorization: 'Bearer t' } })));

    const inFlight = [get('/v1/apps'), get('/v1/apps')];
    while (held.length < 2) await new Promise((resolve) => setImmediate(resolve));
    const refused = await get('/v1/apps');
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('overloaded');
    expect((await get('/healthz')).status).toBe(200);

    for (const release of held.splice(0)) release();
    expect((await Promise.all(inFlight)).map((response) => response.status)).toEqual([200, 200]);
    const after = get('/v1/apps');
    while (held.length < 1) await new Promise((resolve) => setImmediate(resolve));
    held.shift()!();
    expect((await after).status).toBe(200);
  });
});
