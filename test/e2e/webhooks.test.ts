import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dataPaths } from '@slipway/local';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/dev-server.ts';
import { scenario } from '../support/scenario.ts';

/**
 * Signed release outcomes on the embedded default: a receiver on 127.0.0.1 checks every delivery's
 * signature with the secret the dev server made and kept in its data folder.
 */
let server: TestServer;
const s = scenario(() => server);

interface Delivery {
  headers: IncomingHttpHeaders;
  raw: string;
  body: any;
  verified: boolean;
}

let secret: string;
let receiver: Server;
let hookUrl: string;
const deliveries: Delivery[] = [];
/** The HTTP status the receiver answers with, by app. */
const answers = new Map<string, number>();

function verified(headers: IncomingHttpHeaders, raw: string): boolean {
  const timestamp = String(headers['x-slipway-timestamp']);
  const expected = Buffer.from(`sha256=${createHmac('sha256', secret).update(`${timestamp}.${raw}`).digest('hex')}`);
  const given = Buffer.from(String(headers['x-slipway-signature']));
  const fresh = Math.abs(Date.now() / 1000 - Number(timestamp)) <= 300;
  return fresh && expected.length === given.length && timingSafeEqual(expected, given);
}

beforeAll(async () => {
  server = await startTestServer();
  secret = (await readFile(dataPaths(server.dataDir).webhookSecret, 'utf8')).trim();
  receiver = createServer(async (request, response) => {
    let raw = '';
    for await (const chunk of request) raw += chunk;
    const body = JSON.parse(raw);
    deliveries.push({ headers: request.headers, raw, body, verified: verified(request.headers, raw) });
    response.writeHead(answers.get(body.release.app) ?? 204).end();
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/slipway`;
});
afterAll(async () => {
  receiver.closeAllConnections();
  await new Promise((resolve) => receiver.close(resolve));
  await server.stop();
});

const FAIL_MARKER_CHECK = 'test ! -e "$DEPLOY_ROOT/FAIL"';

async function hookedApp(name: string, overrides: Record<string, unknown> = {}) {
  await s.app({
    name,
    deployRoot: `/srv/${name}`,
    webhookUrl: hookUrl,
    hooks: { healthCheck: FAIL_MARKER_CHECK },
    environments: [{ name: 'production', targets: { hosts: [`${name}-1`] } }],
    ...overrides,
  });
}

/** The deliveries about one release, once it ended; each must carry a valid signature. */
function deliveriesOf(id: string) {
  const mine = deliveries.filter((d) => d.body.release.id === id);
  for (const delivery of mine) {
    expect(delivery.verified, 'signature').toBe(true);
    expect(delivery.headers['x-slipway-delivery']).toMatch(/^[0-9a-z]{26}$/);
  }
  return mine;
}

/** Nothing more arrives later: each outcome is told exactly once. */
const quietly = () => new Promise((resolve) => setTimeout(resolve, 300));

describe('signed webhooks for every outcome', () => {
  it('tells a success once, signed, and records the delivery on the release', async () => {
    await hookedApp('whok');
    const id = await s.open('whok', '1.0.0');
    const ended = await s.waitForEnd(id);
    expect(ended.status).toBe('succeeded');
    await quietly();

    const [delivery, ...more] = deliveriesOf(id);
    expect(more).toEqual([]);
    expect(delivery!.body).toEqual({
      event: 'release.succeeded',
      release: { id, app: 'whok', version: '1.0.0', status: 'succeeded', reason: null, openedBy: 'admin' },
      link: `${server.url}/v1/releases/${id}`,
    });
    const recorded = ended.events.filter((e: any) => e.type.startsWith('notification.webhook'));
    expect(recorded).toHaveLength(1);
    expect(recorded[0].data).toEqual({
      status: 'succeeded',
      deliveryId: delivery!.headers['x-slipway-delivery'],
      attempts: 1,
      httpStatus: 204,
    });
    // Neither the secret nor a signature is ever on the record.
    const everything = JSON.stringify(ended);
    expect(everything).not.toContain(secret);
    expect(everything).not.toContain(String(delivery!.headers['x-slipway-signature']).slice('sha256='.length));
  });

  it('tells a failure once, with the failing health check as the reason', async () => {
    await hookedApp('whfail');
    await writeFile(s.fleet('whfail-1', 'FAIL'), '');
    const id = await s.open('whfail', '1.0.0');
    const ended = await s.waitForEnd(id);
    expect(ended.status).toBe('failed');
    await quietly();

    const [delivery, ...more] = deliveriesOf(id);
    expect(more).toEqual([]);
    expect(delivery!.body.event).toBe('release.failed');
    expect(delivery!.body.release).toMatchObject({ id, status: 'failed', reason: ended.reason });
    expect(ended.reason).toBeTruthy();
    expect(ended.events.filter((e: any) => e.type === 'notification.webhook').map((e: any) => e.data.status)).toEqual(['failed']);
  });

  it('tells a cancel of a running release once, with who cancelled', async () => {
    await hookedApp('whcancel', {
      environments: [{ name: 'production', targets: { hosts: ['whcancel-1'] }, approval: { approvers: ['lead@example.com'] } }],
    });
    const id = await s.open('whcancel', '1.0.0');
    await s.waitForGate(id, 'production');
    expect((await server.call('POST', `/v1/releases/${id}/cancel`)).status).toBe(202);
    const ended = await s.waitForEnd(id);
    expect(ended.status).toBe('cancelled');
    await quietly();

    const [delivery, ...more] = deliveriesOf(id);
    expect(more).toEqual([]);
    expect(delivery!.body).toEqual({
      event: 'release.cancelled',
      release: {
        id,
        app: 'whcancel',
        version: '1.0.0',
        status: 'cancelled',
        reason: 'cancelled by admin',
        openedBy: 'admin',
        cancelledBy: 'admin',
      },
      link: `${server.url}/v1/releases/${id}`,
    });
    expect(ended.events.filter((e: any) => e.type === 'notification.webhook').map((e: any) => e.data.status)).toEqual(['cancelled']);
  });

  // A pending release is stopped outright and ends through RecordFailure, which tells a cancel too.
  it('tells a cancel of a release still waiting in line once', async () => {
    await hookedApp('whqueue', { queue: true, hooks: { postRelease: 'sleep 2' } });
    const first = await s.open('whqueue', '1');
    const second = await s.open('whqueue', '2');
    // Whichever got the lock runs; the other waits in line (environment.queued), still pending.
    const deadline = Date.now() + 30_000;
    let waiting: string | undefined;
    while (!waiting) {
      for (const id of [first, second]) {
        if ((await s.release(id)).events.some((e: any) => e.type === 'environment.queued')) waiting = id;
      }
      if (Date.now() > deadline) throw new Error('neither release waited in line');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const ahead = waiting === first ? second : first;
    expect((await s.release(waiting)).status).toBe('pending');
    expect((await server.call('POST', `/v1/releases/${waiting}/cancel`)).status).toBe(202);
    expect((await s.waitForEnd(waiting)).status).toBe('cancelled');
    expect((await s.waitForEnd(ahead)).status).toBe('succeeded');
    await quietly();

    const [cancelled, ...more] = deliveriesOf(waiting);
    expect(more).toEqual([]);
    expect(cancelled!.body.event).toBe('release.cancelled');
    expect(cancelled!.body.release).toMatchObject({ status: 'cancelled', reason: 'cancelled by admin', cancelledBy: 'admin' });
    expect(deliveriesOf(ahead).map((d) => d.body.event)).toEqual(['release.succeeded']);
  });

  it('a webhook that refuses never fails the release: the refusal is recorded, once, without retries', async () => {
    answers.set('whrefused', 400);
    await hookedApp('whrefused');
    const id = await s.open('whrefused', '1.0.0');
    const ended = await s.waitForEnd(id);
    expect(ended.status).toBe('succeeded');
    await quietly();

    expect(deliveriesOf(id)).toHaveLength(1);
    const failed = ended.events.filter((e: any) => e.type.startsWith('notification.webhook'));
    expect(failed.map((e: any) => e.type)).toEqual(['notification.webhook_failed']);
    expect(failed[0].data).toMatchObject({ status: 'succeeded', attempts: 1, httpStatus: 400, error: 'the webhook answered HTTP 400' });
  });
});
