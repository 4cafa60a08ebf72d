import { mkdir, readlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { alarmFile } from '@slipway/local';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/dev-server.ts';
import { scenario } from '../support/scenario.ts';

/**
 * Analysis on the embedded default: the dev server probes the environment's HTTP check (and reads
 * its alarms' files) through every bake after a switch; failures reaching the limit fail the
 * release and put every switched host back; an analysis that cannot run at the start fails safe.
 */
let server: TestServer;
const s = scenario(() => server);

/** The service the analysis probes: healthy until `failWhen` says otherwise (asked on every probe). */
let probed: Server;
let failWhen: () => Promise<boolean> = async () => false;
let probeUrl = '';

beforeAll(async () => {
  server = await startTestServer();
  probed = createServer((request, response) => {
    void failWhen().then((failing) => {
      response.statusCode = failing ? 500 : 200;
      response.end(failing ? 'broken' : 'ok');
    });
  });
  await new Promise<void>((resolve) => probed.listen(0, '127.0.0.1', resolve));
  probeUrl = `http://127.0.0.1:${(probed.address() as AddressInfo).port}/health?token=not-for-the-log`;
});
afterAll(async () => {
  await new Promise((resolve) => probed.close(resolve));
  await server.stop();
});

async function rollingApp(name: string, analysis: Record<string, unknown>) {
  const hosts = [`${name}-1`, `${name}-2`, `${name}-3`];
  await s.app({
    name,
    deployRoot: `/srv/${name}`,
    environments: [{ name: 'production', targets: { hosts }, strategy: { type: 'rolling', batchSize: 1 }, bakeSeconds: 3, analysis }],
  });
  return hosts;
}

describe('an HTTP analysis', () => {
  it('fails a 3-host rolling release whose probe starts answering 500 during the last bake, and puts all three hosts back', async () => {
    const hosts = await rollingApp('probed', { http: { url: probeUrl, expectStatus: 200, timeoutSeconds: 2 }, intervalSeconds: 1, failureLimit: 2 });
    failWhen = async () => false;
    const first = await s.open('probed', '1.0.0');
    expect((await s.waitForEnd(first, 90_000)).status).toBe('succeeded');

    // The second release breaks the service once its last host runs it: during the last bake.
    let second = '';
    failWhen = async () => (await readlink(s.fleet(hosts[2]!, 'current')).catch(() => '')) === `releases/${second}`;
    second = await s.open('probed', '2.0.0');
    const ended = await s.waitForEnd(second, 90_000);
    expect(ended.status).toBe('failed');
    expect(ended.reason).toMatch(/^analysis failed: GET http:\/\/127\.0\.0\.1:\d+\/health, last status 500 \(expected 200\)/);
    // Every switched host is back on the release live before.
    for (const host of hosts) expect(await s.current(host)).toBe(`releases/${first}`);
    expect(await s.live('probed')).toEqual({ production: { live: first, lock: null } });
    // Each probe is on the release with its time and status; the URL's query is in no event, reason or log line.
    const probes = ended.events.filter((e: any) => e.type === 'analysis.probe');
    expect(probes.some((e: any) => e.data.ok === true && e.data.status === '200')).toBe(true);
    expect(probes.filter((e: any) => e.data.ok === false)).toHaveLength(2);
    for (const probe of probes) expect(probe.at).toMatch(/^\d{4}-/);
    expect(JSON.stringify([ended.events, ended.reason, ended.environments])).not.toContain('not-for-the-log');
    expect(server.logs.join('\n')).not.toContain('not-for-the-log');
  });

  it('fails safe when the probe cannot reach its URL at the start: the switched host goes back', async () => {
    const hosts = await rollingApp('unreachable', { http: { url: probeUrl, timeoutSeconds: 1 }, intervalSeconds: 1 });
    failWhen = async () => false;
    const first = await s.open('unreachable', '1.0.0');
    expect((await s.waitForEnd(first, 90_000)).status).toBe('succeeded');
    await server.call('PUT', '/v1/apps/unreachable', {
      body: {
        name: 'unreachable',
        deployRoot: '/srv/unreachable',
        environments: [{ name: 'production', targets: { hosts }, strategy: { type: 'rolling', batchSize: 1 }, bakeSeconds: 3, analysis: { http: { url: 'http://127.0.0.1:9/health', timeoutSeconds: 1 } } }],
      },
    });
    const second = await s.open('unreachable', '2.0.0');
    const ended = await s.waitForEnd(second, 90_000);
    expect(ended.status).toBe('failed');
    expect(ended.reason).toContain('could not run at the start of the analysis');
    for (const host of hosts) expect(await s.current(host)).toBe(`releases/${first}`);
  });
});

describe('an alarm analysis (locally: a file under <dataDir>/alarms)', () => {
  it('fails the release when the alarm goes to ALARM during the bake', async () => {
    const alarms = join(server.dataDir, 'alarms');
    await mkdir(alarms, { recursive: true });
    await writeFile(alarmFile(alarms, 'shop/5xx'), 'OK\n');
    const hosts = await rollingApp('alarmed', { alarms: ['shop/5xx'], intervalSeconds: 1, failureLimit: 1 });
    const first = await s.open('alarmed', '1.0.0');
    expect((await s.waitForEnd(first, 90_000)).status).toBe('succeeded');
    const second = await s.open('alarmed', '2.0.0');
    await s.waitFor(second, (r) => r.events.some((e: any) => e.type === 'analysis.probe' && e.data.ok), 'probed');
    await writeFile(alarmFile(alarms, 'shop/5xx'), 'ALARM\n');
    const ended = await s.waitForEnd(second, 90_000);
    expect(ended.status).toBe('failed');
    expect(ended.reason).toContain('analysis failed: alarms shop/5xx, last status ALARM: shop/5xx');
    for (const host of hosts) expect(await s.current(host)).toBe(`releases/${first}`);
  });
});
