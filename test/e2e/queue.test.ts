import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { restartTestServer, startTestServer, type TestServer } from '../support/dev-server.ts';
import { scenario } from '../support/scenario.ts';

/**
 * The line of an app with `queue: true`, on the embedded default: a release that finds its
 * environment held waits on its EnterEnvironment callback token, in the order releases were opened,
 * and whoever frees the lock lets the first in line in. Waiting costs the execution a handful of
 * history events however long it lasts (no retry loop that could reach the 25,000-event cap).
 */
let server: TestServer;
const s = scenario(() => server);

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => server.stop());

async function restart() {
  server = await restartTestServer(server);
}

/** An app whose releases queue, one environment of two hosts; the first release's switch is slow. */
async function queuedApp(name: string) {
  const hosts = [`${name}-1`, `${name}-2`];
  await s.app({
    name,
    deployRoot: `/srv/${name}`,
    queue: true,
    hooks: { postRelease: 'sleep 2' },
    environments: [{ name: 'live', targets: { hosts } }],
  });
  return hosts;
}

/** Uploads first, so that the opens themselves follow each other closely. */
async function upload(app: string, version: string) {
  return s.tarball(app, { 'index.html': version });
}

async function openWith(app: string, version: string, artifact: { key: string; sha256: string }) {
  const opened = await server.call('POST', '/v1/releases', { body: { app, version, artifact, description: `release ${version}` } });
  if (opened.status !== 202) throw new Error(JSON.stringify(opened.body));
  return opened.body.id as string;
}

const eventOf = (release: any, type: string) => release.events.find((e: any) => e.type === type);
const at = (release: any, type: string) => {
  const event = eventOf(release, type);
  if (!event) throw new Error(`release ${release.id} has no ${type} event`);
  return Date.parse(event.at);
};

const queuedEvent = (id: string) => s.waitFor(id, (r) => eventOf(r, 'environment.queued') !== undefined, 'waited in line', 30_000);

/** Opens three releases: the first gets in, the second and third wait in line, in that order. */
async function threeInLine(app: string) {
  const artifacts = [await upload(app, '1'), await upload(app, '2'), await upload(app, '3')];
  const first = await openWith(app, '1', artifacts[0]!);
  await s.waitFor(first, (r) => eventOf(r, 'environment.entered') !== undefined, 'entered', 30_000);
  const second = await openWith(app, '2', artifacts[1]!);
  await queuedEvent(second);
  const third = await openWith(app, '3', artifacts[2]!);
  await queuedEvent(third);
  return [first, second, third] as const;
}

/** Each release entered only after the one before it ended, and the hosts run the last. */
function expectInOrder(ended: any[]) {
  for (const release of ended) expect(release.status, release.reason).toBe('succeeded');
  for (let i = 1; i < ended.length; i++) {
    expect(at(ended[i], 'environment.entered')).toBeGreaterThanOrEqual(at(ended[i - 1], 'release.succeeded'));
  }
  for (const release of ended) {
    expect(release.events.filter((e: any) => e.type === 'environment.entered'), release.id).toHaveLength(1);
  }
}

describe('a queue: true app', () => {
  it('runs releases strictly in the order they were opened, each after the one before ended', async () => {
    const hosts = await queuedApp('fifo');
    const ids = await threeInLine('fifo');
    const ended = [];
    for (const id of ids) ended.push(await s.waitForEnd(id, 60_000));
    expectInOrder(ended);
    expect(ended[0].events.some((e: any) => e.type === 'environment.queued')).toBe(false);
    expect(eventOf(ended[1], 'environment.queued').data).toMatchObject({ environment: 'live', position: 1, holder: ids[0] });
    expect(eventOf(ended[2], 'environment.queued').data).toMatchObject({ environment: 'live', position: 2 });
    // Queued once each, however often it was woken.
    for (const release of ended.slice(1)) expect(release.events.filter((e: any) => e.type === 'environment.queued')).toHaveLength(1);
    for (const host of hosts) expect(await s.current(host)).toBe(`releases/${ids[2]}`);
    expect(await s.live('fifo')).toEqual({ live: { live: ids[2], lock: null } });

    // The third waited through two whole releases, yet its history is no longer for it.
    const histories = await Promise.all(ids.map(async (id) => (await server.executor.releaseHistory(id))!.events));
    const waited = at(ended[2], 'environment.entered') - at(ended[2], 'environment.queued');
    expect(waited).toBeGreaterThan(4000);
    const onEnter = (events: any[]) => events.filter((e) => e.state === 'EnterEnvironment');
    for (const events of histories) {
      expect(events.length).toBeLessThan(40);
      expect(events.filter((e: any) => e.type === 'StateRetried')).toEqual([]);
    }
    expect(onEnter(histories[2]!).length).toBe(onEnter(histories[0]!).length);
    expect(histories[2]!.length - histories[0]!.length).toBeLessThanOrEqual(2);
  });

  it('takes a cancelled release out of the line; the next one still runs after the holder', async () => {
    const hosts = await queuedApp('leave');
    const [first, second, third] = await threeInLine('leave');
    expect((await s.release(second)).status).toBe('pending');
    // Positions, 1 next; the holder has none.
    expect((await s.release(first)).queuePosition).toBeUndefined();
    expect(await s.release(second)).toMatchObject({ queuePosition: 1, queuedFor: 'live' });
    expect(await s.release(third)).toMatchObject({ queuePosition: 2, queuedFor: 'live' });
    expect((await server.call('POST', `/v1/releases/${second}/cancel`)).status).toBe(202);
    expect((await s.waitForEnd(second)).status).toBe('cancelled');
    // The one behind it moved up (unless the holder ended meanwhile and let it in).
    const moved = await s.release(third);
    if (moved.status === 'pending') expect(moved.queuePosition).toBe(1);
    expect((await s.release(second)).queuePosition).toBeUndefined();
    const ended = [await s.waitForEnd(first, 60_000), await s.waitForEnd(third, 60_000)];
    expectInOrder(ended);
    expect((await s.release(second)).events.some((e: any) => e.type === 'environment.entered')).toBe(false);
    for (const host of hosts) expect(await s.current(host)).toBe(`releases/${third}`);
    expect(await s.live('leave')).toEqual({ live: { live: third, lock: null } });
  });

  it('keeps the order across a restart of the server while two releases wait', async () => {
    const hosts = await queuedApp('again');
    const ids = await threeInLine('again');
    await restart();
    const ended = [];
    for (const id of ids) ended.push(await s.waitForEnd(id, 60_000));
    expectInOrder(ended);
    for (const host of hosts) expect(await s.current(host)).toBe(`releases/${ids[2]}`);
    expect(await s.live('again')).toEqual({ live: { live: ids[2], lock: null } });
  });

  it('a release cancelled in a later environment\'s line leaves it at once from behind, and the one ahead keeps its place', async () => {
    // The holder waits at b's gate, so b's line stands still while the test looks at it.
    await s.app({
      name: 'later',
      deployRoot: '/srv/later',
      queue: true,
      environments: [
        { name: 'a', targets: { hosts: ['later-a'] } },
        { name: 'b', targets: { hosts: ['later-b'] }, approval: { approvers: ['lead@example.com'] } },
      ],
    });
    const artifacts = [await upload('later', '1'), await upload('later', '2'), await upload('later', '3')];
    const holder = await openWith('later', '1', artifacts[0]!);
    await s.waitForGate(holder, 'b');
    const second = await openWith('later', '2', artifacts[1]!);
    await s.waitFor(second, (r) => r.queuedFor === 'b', 'waited in b\'s line');
    const third = await openWith('later', '3', artifacts[2]!);
    await s.waitFor(third, (r) => r.queuedFor === 'b', 'waited in b\'s line');
    expect(await s.release(second)).toMatchObject({ queuePosition: 1, queuedFor: 'b' });
    expect(await s.release(third)).toMatchObject({ queuePosition: 2, queuedFor: 'b' });

    // Behind another waiter, and past its first environment: it still ends now, not when it reaches the front.
    expect((await server.call('POST', `/v1/releases/${third}/cancel`)).status).toBe(202);
    const cancelled = await s.waitForEnd(third, 30_000);
    expect(cancelled.status).toBe('cancelled');
    expect(cancelled.queuePosition).toBeUndefined();
    expect((await s.release(holder)).status).toBe('awaiting_approval');
    expect(await s.release(second)).toMatchObject({ queuePosition: 1, queuedFor: 'b' });

    // The holder ends: the first in line is let in by that very release's end.
    expect((await server.call('POST', `/v1/releases/${holder}/cancel`)).status).toBe(202);
    expect((await s.waitForEnd(holder)).status).toBe('cancelled');
    const entered = await s.waitForGate(second, 'b');
    expect(entered.queuePosition).toBeUndefined();
    expect((await server.call('POST', `/v1/releases/${second}/cancel`)).status).toBe(202);
    expect((await s.waitForEnd(second)).status).toBe('cancelled');
  });
});
