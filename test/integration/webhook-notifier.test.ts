import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createUnsignedWebhookRefusal, createWebhookNotifier } from '@slipway/aws';
import { ConfigurationError } from '@slipway/core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';

/** The webhook adapter against a real HTTP receiver on 127.0.0.1; only the backoff's waits are faked. */
const SECRET = 'whsec_0123456789abcdef0123456789abcdef';

interface Received {
  headers: IncomingHttpHeaders;
  raw: string;
}

/** What the receiver does with the n-th request (from 0): answer a status, or never answer. */
let respond: (n: number, response: ServerResponse) => void;
let received: Received[];
let receiver: Server;
let url: string;

beforeAll(async () => {
  receiver = createServer(async (request, response) => {
    let raw = '';
    for await (const chunk of request) raw += chunk;
    received.push({ headers: request.headers, raw });
    respond(received.length - 1, response);
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks/slipway`;
});
afterAll(async () => {
  receiver.closeAllConnections();
  await new Promise((resolve) => receiver.close(resolve));
});
beforeEach(() => {
  received = [];
  respond = (_n, response) => response.writeHead(204).end();
});

/** What a receiver does (the README's snippet): recompute the HMAC, compare in constant time, refuse stale timestamps. */
function verify(headers: IncomingHttpHeaders, raw: string, secret: string, nowSeconds: number): boolean {
  const timestamp = String(headers['x-slipway-timestamp']);
  const expected = Buffer.from(`sha256=${createHmac('sha256', secret).update(`${timestamp}.${raw}`).digest('hex')}`);
  const given = Buffer.from(String(headers['x-slipway-signature']));
  const fresh = Math.abs(nowSeconds - Number(timestamp)) <= 300;
  return fresh && expected.length === given.length && timingSafeEqual(expected, given);
}

/** A clock the fake sleep moves forward, so each attempt's timestamp is its own. */
function fakeTime(startSeconds = 1_750_000_000) {
  let now = startSeconds * 1000;
  const waits: number[] = [];
  return {
    waits,
    clock: { now: () => new Date(now) },
    sleep: async (ms: number) => {
      waits.push(ms);
      now += ms;
    },
    nowSeconds: () => Math.floor(now / 1000),
  };
}

const payload = {
  event: 'release.succeeded',
  release: { id: '01JREL', app: 'shop', version: '1.4.0', status: 'succeeded', reason: null, openedBy: 'dev@example.com' },
  link: 'https://deploy.example.com/v1/releases/01JREL',
};

describe('webhook notifier', () => {
  it('signs the timestamp and the exact raw body with the secret', async () => {
    const time = fakeTime();
    const notifier = createWebhookNotifier({ secret: SECRET, clock: time.clock, sleep: time.sleep });
    const delivery = await notifier.post(url, payload, 'delivery-1');

    expect(delivery).toEqual({ ok: true, deliveryId: 'delivery-1', attempts: 1, httpStatus: 204 });
    expect(received).toHaveLength(1);
    const [{ headers, raw }] = received as [Received];
    expect(JSON.parse(raw)).toEqual(payload);
    expect(headers['content-type']).toBe('application/json');
    expect(headers['x-slipway-delivery']).toBe('delivery-1');
    expect(headers['x-slipway-timestamp']).toBe(String(time.nowSeconds()));
    expect(headers['x-slipway-signature']).toMatch(/^sha256=[0-9a-f]{64}$/);
    expect(verify(headers, raw, SECRET, time.nowSeconds())).toBe(true);
    // Anything else fails: another secret, a changed body, a replay ten minutes later.
    expect(verify(headers, raw, `${SECRET}x`, time.nowSeconds())).toBe(false);
    expect(verify(headers, raw.replace('1.4.0', '1.4.1'), SECRET, time.nowSeconds())).toBe(false);
    expect(verify(headers, raw, SECRET, time.nowSeconds() + 600)).toBe(false);
    // The timestamp is part of what is signed: moving it breaks the signature.
    const moved = { ...headers, 'x-slipway-timestamp': String(time.nowSeconds() + 1) };
    expect(verify(moved, raw, SECRET, time.nowSeconds())).toBe(false);
    // The answer is what gets recorded on the release: no secret, no signature.
    expect(JSON.stringify(delivery)).not.toContain(SECRET);
    expect(JSON.stringify(delivery)).not.toContain(String(headers['x-slipway-signature']).slice(7));
  });

  it('retries a 503 with backoff under the same delivery id, each attempt signed for its own timestamp', async () => {
    respond = (n, response) => response.writeHead(n < 2 ? 503 : 200).end(n < 2 ? 'busy' : 'ok');
    const time = fakeTime();
    const notifier = createWebhookNotifier({ secret: SECRET, clock: time.clock, sleep: time.sleep });
    const delivery = await notifier.post(url, payload, 'delivery-2');

    expect(delivery).toEqual({ ok: true, deliveryId: 'delivery-2', attempts: 3, httpStatus: 200 });
    expect(received).toHaveLength(3);
    expect(time.waits).toEqual([1000, 2000]);
    expect(received.map((r) => r.headers['x-slipway-delivery'])).toEqual(['delivery-2', 'delivery-2', 'delivery-2']);
    const stamps = received.map((r) => Number(r.headers['x-slipway-timestamp']));
    expect(stamps[1]! - stamps[0]!).toBe(1);
    expect(stamps[2]! - stamps[1]!).toBe(2);
    for (const { headers, raw } of received) {
      expect(raw).toBe(received[0]!.raw);
      expect(verify(headers, raw, SECRET, time.nowSeconds())).toBe(true);
    }
    expect(new Set(received.map((r) => r.headers['x-slipway-signature'])).size).toBe(3);
  });

  it('retries a 429 too', async () => {
    respond = (n, response) => response.writeHead(n === 0 ? 429 : 202).end();
    const time = fakeTime();
    const delivery = await createWebhookNotifier({ secret: SECRET, clock: time.clock, sleep: time.sleep }).post(url, payload, 'd-429');
    expect(delivery).toMatchObject({ ok: true, attempts: 2, httpStatus: 202 });
  });

  it('takes a 400 as final: one attempt, no retry', async () => {
    respond = (_n, response) => response.writeHead(400).end('no such hook');
    const time = fakeTime();
    const delivery = await createWebhookNotifier({ secret: SECRET, clock: time.clock, sleep: time.sleep }).post(url, payload, 'd-400');

    expect(delivery).toEqual({ ok: false, deliveryId: 'd-400', attempts: 1, httpStatus: 400, error: 'the webhook answered HTTP 400' });
    expect(received).toHaveLength(1);
    expect(time.waits).toEqual([]);
  });

  it('does not follow a redirect (the signed body stays where it was sent) and does not retry it', async () => {
    respond = (_n, response) => response.writeHead(302, { location: 'http://127.0.0.1:1/elsewhere' }).end();
    const delivery = await createWebhookNotifier({ secret: SECRET, sleep: async () => undefined }).post(url, payload, 'd-302');
    expect(delivery).toMatchObject({ ok: false, attempts: 1, httpStatus: 302 });
    expect(delivery.error).toMatch(/redirects are not followed/);
    expect(received).toHaveLength(1);
  });

  it('times out a receiver that never answers and tries again', async () => {
    respond = (n, response) => {
      if (n > 0) response.writeHead(200).end();
      // The first request hangs: no answer, ever.
    };
    const time = fakeTime();
    const started = Date.now();
    const delivery = await createWebhookNotifier({ secret: SECRET, timeoutMs: 300, clock: time.clock, sleep: time.sleep }).post(url, payload, 'd-hang');

    expect(delivery).toEqual({ ok: true, deliveryId: 'd-hang', attempts: 2, httpStatus: 200 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(received.map((r) => r.headers['x-slipway-delivery'])).toEqual(['d-hang', 'd-hang']);
    expect(time.waits).toEqual([1000]);
  });

  it('gives up after four attempts and says why the last one failed', async () => {
    respond = (_n, response) => response.writeHead(502).end();
    const time = fakeTime();
    const delivery = await createWebhookNotifier({ secret: SECRET, clock: time.clock, sleep: time.sleep }).post(url, payload, 'd-502');

    expect(delivery).toEqual({ ok: false, deliveryId: 'd-502', attempts: 4, httpStatus: 502, error: 'the webhook answered HTTP 502' });
    expect(received).toHaveLength(4);
    expect(time.waits).toEqual([1000, 2000, 4000]);
  });

  it('retries a receiver that cannot be reached, and names the network error', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const time = fakeTime();
    const delivery = await createWebhookNotifier({ secret: SECRET, retryDelaysMs: [5, 10], clock: time.clock, sleep: time.sleep }).post(
      `http://127.0.0.1:${port}/gone`,
      payload,
      'd-down',
    );
    expect(delivery).toMatchObject({ ok: false, deliveryId: 'd-down', attempts: 3 });
    expect(delivery.httpStatus).toBeUndefined();
    expect(delivery.error).toMatch(/could not be reached.*ECONNREFUSED/);
    expect(time.waits).toEqual([5, 10]);
  });

  it('refuses a secret shorter than 32 characters at construction', () => {
    expect(() => createWebhookNotifier({ secret: 'short' })).toThrow(ConfigurationError);
    expect(() => createWebhookNotifier({ secret: 'x'.repeat(31) })).toThrow(/at least 32 characters/);
  });

  it('without a secret sends nothing unsigned and says which variable to set', async () => {
    const delivery = await createUnsignedWebhookRefusal('SLIPWAY_WEBHOOK_SECRET').post(url, payload, 'd-none');
    expect(delivery).toMatchObject({ ok: false, deliveryId: 'd-none', attempts: 0 });
    expect(delivery.error).toMatch(/SLIPWAY_WEBHOOK_SECRET/);
    expect(received).toEqual([]);
  });
});
