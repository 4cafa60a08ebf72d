import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiError, createApiClient } from '../../packages/cli/src/client.ts';

/**
 * The CLI's client tries again only what cannot be done twice: reads and opens (with one
 * Idempotency-Key for all tries) on a dropped connection, anything refused with 503. The server
 * answers from a script of what each request gets; waits are recorded, never slept.
 */
type Step = 'drop' | { status: number; body?: unknown; headers?: Record<string, string> };

let server: Server | undefined;
afterEach(async () => {
  await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
  server = undefined;
});

async function serve(steps: Step[]) {
  const seen: { method: string; url: string; key: string | undefined }[] = [];
  server = createServer((request: IncomingMessage, response: ServerResponse) => {
    request.resume();
    request.on('end', () => {
      seen.push({ method: request.method!, url: request.url!, key: request.headers['idempotency-key'] as string | undefined });
      const step = steps.shift() ?? { status: 500 };
      if (step === 'drop') {
        request.socket.destroy();
        return;
      }
      response.writeHead(step.status, { 'content-type': 'application/json', connection: 'close', ...step.headers });
      response.end(JSON.stringify(step.body ?? {}));
    });
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  const waits: number[] = [];
  const client = createApiClient(`http://127.0.0.1:${(server!.address() as AddressInfo).port}`, 'token', {
    sleep: async (ms) => {
      waits.push(ms);
    },
  });
  return { client, seen, waits };
}

describe('CLI API client', () => {
  it('reads again after a dropped connection', async () => {
    const { client, seen } = await serve(['drop', 'drop', { status: 200, body: { id: 'r1' } }]);
    expect(await client.request('GET', '/v1/releases/r1')).toEqual({ id: 'r1' });
    expect(seen).toHaveLength(3);
  });

  it('sends an open again after a dropped connection with the same Idempotency-Key', async () => {
    const { client, seen } = await serve(['drop', { status: 202, body: { id: 'r1', status: 'pending' } }]);
    expect(await client.request('POST', '/v1/releases', { app: 'shop' })).toEqual({ id: 'r1', status: 'pending' });
    expect(seen).toHaveLength(2);
    expect(seen[0]!.key).toMatch(/^[0-9a-f-]{36}$/);
    expect(seen[1]!.key).toBe(seen[0]!.key);
    // The next open is another request: another key.
    const next = await serve([{ status: 202, body: { id: 'r2' } }]);
    await next.client.request('POST', '/v1/releases', { app: 'shop' });
    expect(next.seen[0]!.key).not.toBe(seen[0]!.key);
  });

  it('never sends another write again after a dropped connection, and says it may have been done', async () => {
    const { client, seen } = await serve(['drop', { status: 200 }]);
    const error = await client.request('POST', '/v1/apps/shop/environments/production/rollback', {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).code).toBe('unreachable');
    expect((error as ApiError).message).toContain('may have been done');
    expect(seen).toHaveLength(1);
  });

  it('waits what Retry-After says when the API is at capacity, then gives the API\'s error after the last try', async () => {
    const overloaded = { status: 503, body: { error: { code: 'overloaded', message: 'at capacity' } }, headers: { 'retry-after': '1' } };
    const { client, seen, waits } = await serve([overloaded, { status: 200, body: { ok: true } }]);
    expect(await client.request('POST', '/v1/apps/shop/environments/production/rollback', {})).toEqual({ ok: true });
    expect(seen).toHaveLength(2);
    expect(waits).toEqual([1000]);

    const always = await serve([overloaded, overloaded, overloaded, overloaded, overloaded]);
    await expect(always.client.request('GET', '/v1/apps')).rejects.toMatchObject({ status: 503, code: 'overloaded' });
    expect(always.seen).toHaveLength(5);
  });
});
