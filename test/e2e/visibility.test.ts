import { mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '@slipway/cli';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/dev-server.ts';
import { scenario } from '../support/scenario.ts';
import { openSse, type SseEvent } from '../support/sse.ts';

/**
 * Live host output over SSE, release updates over SSE, and the host list with drift, on the
 * embedded default. The health check prints, then waits for a file the test creates: a line that
 * arrives while the file is missing arrived while the check was still running.
 */
let server: TestServer;
const HOSTS = ['vis-1', 'vis-2'];
const ids: Record<string, string> = {};
const hostDir = (host: string) => join(server.dataDir, 'fleet', host);

const HEALTH_CHECK = [
  'echo "health of $VERSION on ${DEPLOY_ROOT##*/}"',
  'echo "a warning on stderr" >&2',
  'if [ -f "$DEPLOY_ROOT/hold" ]; then until [ -f "$DEPLOY_ROOT/go" ]; do sleep 0.05; done; fi',
  'echo "checked $VERSION"',
].join('; ');

beforeAll(async () => {
  server = await startTestServer();
  for (const host of HOSTS) await mkdir(hostDir(host), { recursive: true });
  const stored = await server.call('PUT', '/v1/apps/vis', {
    body: {
      name: 'vis',
      deployRoot: '/srv/vis',
      keepReleases: 3,
      hooks: { healthCheck: HEALTH_CHECK },
      environments: [{ name: 'production', targets: { hosts: HOSTS }, strategy: { type: 'rolling', batchSize: 2 } }],
    },
  });
  if (stored.status !== 200) throw new Error(JSON.stringify(stored.body));
});
afterAll(async () => server.stop());

async function open(version: string): Promise<string> {
  const artifact = await scenario(() => server).tarball('vis', { 'index.html': `v${version}` });
  const opened = await server.call('POST', '/v1/releases', { body: { app: 'vis', version, artifact } });
  expect(opened.status).toBe(202);
  return opened.body.id;
}

async function cli(args: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const env = { SLIPWAY_URL: server.url, SLIPWAY_TOKEN: server.adminToken };
  const code = await main(args, env, { out: (line) => out.push(line), err: (line) => err.push(line) });
  return { code, out, err };
}

const outputUrl = (id: string, host: string) => `${server.url}/v1/releases/${id}/hosts/${host}/output`;

/** Reads a stream's `line` events until its `end`. */
async function linesUntilEnd(stream: Awaited<ReturnType<typeof openSse>>): Promise<SseEvent[]> {
  const lines: SseEvent[] = [];
  for (let event = await stream.next(); event && event.event !== 'end'; event = await stream.next()) {
    if (event.event === 'line') lines.push(event);
  }
  return lines;
}

/** The lines of each stream of each step, in order. */
function perStream(events: SseEvent[]): Record<string, string[]> {
  const streams: Record<string, string[]> = {};
  for (const { data } of events) (streams[`${data.step} ${data.stream}`] ??= []).push(data.text);
  return streams;
}

describe('live host output', () => {
  let full: SseEvent[] = [];

  it('streams a host\'s lines over SSE while its health check is still running, then ends with the release', async () => {
    for (const host of HOSTS) await writeFile(join(hostDir(host), 'hold'), '');
    ids['1'] = await open('1');
    const viewer = await server.tokenFor('viewer', 'watcher@example.com');
    const stream = await openSse(outputUrl(ids['1']!, 'vis-1'), viewer);
    const watching = cli(['release', 'watch', ids['1']!, '--host', 'vis-2']);
    expect(stream.status).toBe(200);
    expect(stream.contentType).toContain('text/event-stream');
    const seen: SseEvent[] = [];
    const health = await stream.until((event) => {
      if (event.event === 'line') seen.push(event);
      return event.event === 'line' && event.data.text === 'health of 1 on vis-1';
    }, 120_000);
    expect(health).toBeDefined();
    // The check cannot end before the file exists: the line came while it ran.
    expect(existsSync(join(hostDir('vis-1'), 'go'))).toBe(false);
    expect((await server.call('GET', `/v1/releases/${ids['1']}`)).body.status).toBe('switching');
    expect(health!.data).toMatchObject({ step: 'switch', environment: 'production', stream: 'stdout' });
    // The distribute step's lines came first, in order.
    expect(seen[0]!.data.step).toBe('distribute');
    expect(seen.some((e) => e.data.step === 'distribute' && /distributed release/.test(e.data.text))).toBe(true);

    for (const host of HOSTS) await writeFile(join(hostDir(host), 'go'), '');
    const rest = await linesUntilEnd(stream);
    full = [...seen, ...rest];
    expect(rest.map((e) => e.data.text)).toContain('checked 1');
    expect(full.find((e) => e.data.text === 'a warning on stderr')?.data.stream).toBe('stderr');
    expect(new Set(full.map((e) => e.id)).size).toBe(full.length);
    expect((await server.waitForEnd(ids['1']!)).status).toBe('succeeded');
    for (const host of HOSTS) await rm(join(hostDir(host), 'hold'));

    // `slipway release watch --host` followed the other host the same while it ran.
    const watched = await watching;
    expect(watched.code, watched.err.join('\n')).toBe(0);
    expect(watched.out).toContain('switch     health of 1 on vis-2');
    expect(watched.out).toContain('switch     checked 1');
    expect(watched.err).toContain('switch     a warning on stderr');
  });

  it('resumes after Last-Event-ID with the lines after it and none twice', async () => {
    const middle = Math.floor(full.length / 2);
    const resumed = await openSse(outputUrl(ids['1']!, 'vis-1'), server.adminToken, { 'last-event-id': full[middle]!.id! });
    const lines = await linesUntilEnd(resumed);
    // Each stream's lines in their order; stdout and stderr are separate files, so how the two
    // interleave is only as fine as each read (README): compared per stream.
    const before = full.slice(0, middle + 1);
    expect(lines.length).toBe(full.length - before.length);
    expect(perStream([...before, ...lines])).toEqual(perStream(full));
  });

  it('answers the same lines as JSON, and reads on from `after`', async () => {
    const whole = await server.call('GET', `/v1/releases/${ids['1']}/hosts/vis-1/output`);
    expect(whole.status).toBe(200);
    expect(whole.body.ended).toBe(true);
    const asEvents = (lines: any[]) => lines.map((line) => ({ event: 'line', id: line.position, data: line }));
    expect(perStream(asEvents(whole.body.lines))).toEqual(perStream(full));
    // The first lines are distribute's stdout, read in one go: their positions are the stream's.
    const after = await server.call('GET', `/v1/releases/${ids['1']}/hosts/vis-1/output?after=${encodeURIComponent(full[1]!.id!)}`);
    expect(after.body.lines.length).toBe(full.length - 2);
    expect(perStream([...full.slice(0, 2), ...asEvents(after.body.lines)])).toEqual(perStream(full));
    expect((await server.call('GET', `/v1/releases/${ids['1']}/hosts/vis-1/output?after=nonsense`)).status).toBe(400);
    expect((await server.call('GET', '/v1/releases/01arz3ndektsv4rrffq69g5fav/hosts/vis-1/output')).status).toBe(404);
  });
});

describe('release updates over SSE', () => {
  it('sends the release as it changes, then ends with it', async () => {
    ids['2'] = await open('2');
    const stream = await openSse(`${server.url}/v1/releases/${ids['2']}/events`, server.adminToken);
    expect(stream.status).toBe(200);
    const statuses: string[] = [];
    let event: SseEvent | undefined;
    while ((event = await stream.next(120_000)) && event.event !== 'end') {
      expect(event.event).toBe('release');
      if (statuses.at(-1) !== event.data.status) statuses.push(event.data.status);
    }
    expect(event?.data).toEqual({ id: ids['2'], status: 'succeeded' });
    expect(statuses.at(-1)).toBe('succeeded');
    expect(statuses.length).toBeGreaterThan(1);
    const log = await server.call('GET', `/v1/releases/${ids['2']}/events`);
    expect(log.body.items.map((e: any) => e.type)).toContain('release.succeeded');
  });
});

describe('hosts and drift', () => {
  const hostsPath = '/v1/apps/vis/environments/production/hosts';

  it('knows every host from the switch outcomes, without a scan', async () => {
    const listed = await server.call('GET', hostsPath);
    expect(listed.status).toBe(200);
    expect(listed.body.items).toEqual(
      HOSTS.map((host) => expect.objectContaining({ host, current: { releaseId: ids['2'], version: '2' }, expected: ids['2'], drift: false, source: 'switch' })),
    );
  });

  it('finds a host flipped by hand within one scan', async () => {
    // `ln -sfn` by hand: vis-2 back on release 1 behind Slipway's back.
    await rm(join(hostDir('vis-2'), 'current'));
    await symlink(`releases/${ids['1']}`, join(hostDir('vis-2'), 'current'));
    expect((await server.call('GET', hostsPath)).body.items.every((h: any) => !h.drift)).toBe(true);

    const viewer = await server.tokenFor('viewer', 'scan-viewer@example.com');
    expect((await server.call('POST', `${hostsPath}/scan`, { token: viewer })).status).toBe(403);
    const deployer = await server.tokenFor('deployer', 'scanner@example.com');
    const scan = await server.call('POST', `${hostsPath}/scan`, { token: deployer });
    expect(scan.status).toBe(200);
    expect(scan.body).toMatchObject({ scanned: 2, unreachable: 0 });
    const byHost = Object.fromEntries(scan.body.items.map((h: any) => [h.host, h]));
    expect(byHost['vis-1']).toMatchObject({ current: { releaseId: ids['2'], version: '2' }, drift: false, source: 'scan' });
    expect(byHost['vis-2']).toMatchObject({ current: { releaseId: ids['1'], version: '1' }, expected: ids['2'], drift: true, source: 'scan' });
    expect(byHost['vis-2'].retained).toEqual([ids['2'], ids['1']]);
    const printed = await cli(['hosts', 'vis', 'production']);
    expect(printed.code).toBe(1);
    expect(printed.out.find((line) => line.includes('vis-2'))).toMatch(/^DRIFT\s+vis-2\s+1 \(/);
    expect(printed.out.at(-1)).toBe('1 of 2 hosts drift');
    // Recorded: the list says the same without scanning again.
    expect((await server.call('GET', hostsPath)).body.items.find((h: any) => h.host === 'vis-2').drift).toBe(true);
  });

  it('flags a host the scan cannot read as drifting, keeping what it last ran', async () => {
    await rm(hostDir('vis-1'), { recursive: true });
    const scan = await server.call('POST', `${hostsPath}/scan`);
    const vis1 = scan.body.items.find((h: any) => h.host === 'vis-1');
    expect(vis1).toMatchObject({ drift: true, current: { releaseId: ids['2'] } });
    expect(vis1.unreachable).toMatch(/no host vis-1/);
  });
});
