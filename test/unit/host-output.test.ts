import { createHostOutput, createReleaseFeed, type HostOutputRead, type Release, type ReleaseView, type StepRecord } from '@slipway/core';
import { describe, expect, it } from 'vitest';
import { createMemoryReleaseStore } from '../../packages/core/src/testing/memory-release-store.ts';
import { shopConfig } from '../support/fixtures.ts';

/** Host output and the release feed on fakes: the fleets that cannot stream, and what an open stream costs the store. */

const RELEASE = '01aaaaaaaaaaaaaaaaaaaaaaa1';

function release(status: Release['status']): Release {
  return {
    id: RELEASE,
    app: 'shop',
    version: '1.0',
    artifact: { key: 'k', sha256: 'a'.repeat(64), size: 1 },
    description: '',
    status,
    openedBy: 'dev',
    createdAt: '2026-01-01T00:00:00.000Z',
    updatedAt: '2026-01-01T00:00:00.000Z',
    config: shopConfig,
  };
}

const step = (kind: StepRecord['kind'], state: StepRecord['state'], createdAt: string): StepRecord => ({
  releaseId: RELEASE,
  key: `${kind}#production`,
  kind,
  environment: 'production',
  hosts: ['web-1'],
  commandId: `cmd-${kind}`,
  state,
  createdAt,
  updatedAt: createdAt,
});

async function storeWith(status: Release['status'], steps: StepRecord[]) {
  const store = createMemoryReleaseStore();
  await store.createRelease(release(status), []);
  for (const s of steps) await store.startStep(s);
  return store;
}

describe('host output from a fleet that cannot read it live', () => {
  it('answers what each step recorded once it settled, in step order, and resumes by line', async () => {
    const store = await storeWith('switching', [step('distribute', 'succeeded', '2026-01-01T00:00:01Z'), step('switch', 'running', '2026-01-01T00:00:02Z')]);
    await store.ensureHostStates(RELEASE, 'production', ['web-1'], 't');
    const output = { exitCode: 0, stdout: 'downloading\ndistributed\n', stderr: 'slow mirror\n', startedAt: 't', endedAt: 't' };
    await store.recordHostOutcomes(RELEASE, 'production', 'distribute', [{ host: 'web-1', output }], 't');
    const service = createHostOutput({ store });
    const first = await service.read(RELEASE, 'web-1');
    expect(first.lines.map((l) => [l.position, l.step, l.stream, l.text])).toEqual([
      ['0.L1', 'distribute', 'stdout', 'downloading'],
      ['0.L2', 'distribute', 'stdout', 'distributed'],
      ['0.L3', 'distribute', 'stderr', 'slow mirror'],
    ]);
    // The switch runs: nothing of it yet, and not ended.
    expect(first).toMatchObject({ next: '1.', ended: false });
    expect((await service.read(RELEASE, 'web-1', { after: '0.L1' })).lines.map((l) => l.text)).toEqual(['distributed', 'slow mirror']);
  });
});

describe('host output from a fleet that cannot say when a host ended', () => {
  it('ends a step once it settled and a read finds nothing more', async () => {
    let printed: string[] = ['one', 'two'];
    const reads: (string | undefined)[] = [];
    const fleet = {
      async readOutput(_commandId: string, _host: string, from: string | undefined): Promise<HostOutputRead> {
        reads.push(from);
        const start = Number(from ?? 0);
        return {
          lines: printed.slice(start).map((text, i) => ({ stream: 'stdout' as const, text, position: String(start + i + 1) })),
          next: String(printed.length),
          ended: false,
        };
      },
    };
    const store = await storeWith('switching', [step('switch', 'running', '2026-01-01T00:00:02Z')]);
    const service = createHostOutput({ store, fleet });
    const running = await service.read(RELEASE, 'web-1');
    expect(running).toMatchObject({ next: '0.2', ended: false });
    printed = [...printed, 'three'];
    await store.completeStep(RELEASE, 'switch#production', { status: 'succeeded' }, 't');
    await store.updateReleaseStatus(RELEASE, 'switching', 'succeeded', 't');
    // Settled, but a line is still to come in: read first, not ended yet.
    const late = await service.read(RELEASE, 'web-1', { after: running.next });
    expect(late.lines.map((l) => l.text)).toEqual(['three']);
    expect(late.ended).toBe(false);
    const done = await service.read(RELEASE, 'web-1', { after: late.next });
    expect(done).toMatchObject({ lines: [], ended: true, next: '1.' });
  });

  it('refuses a position it never gave out', async () => {
    const service = createHostOutput({ store: await storeWith('pending', []) });
    await expect(service.read(RELEASE, 'web-1', { after: 'elsewhere' })).rejects.toThrow('after is not a position this endpoint gave out');
    await expect(service.read('01bbbbbbbbbbbbbbbbbbbbbbbb', 'web-1')).rejects.toThrow('no release');
  });
});

describe('the release feed', () => {
  it('reads two items a look, the whole release only when it moved, and ends with the release', async () => {
    const store = await storeWith('distributing', []);
    let reads = 0;
    const counted = {
      getRelease: (id: string) => {
        reads += 1;
        return store.getRelease(id);
      },
      listEvents: (id: string) => {
        reads += 1;
        return store.listEvents(id);
      },
    };
    let views = 0;
    let looks = 0;
    const feed = createReleaseFeed({
      store: counted,
      view: async (id) => {
        views += 1;
        return { ...(await store.getRelease(id))!, environments: [], approvals: [], events: [] } as unknown as ReleaseView;
      },
      // Each pause is one look; the release moves on the third and ends on the sixth.
      sleep: async () => {
        looks += 1;
        if (looks === 3) await store.updateReleaseStatus(RELEASE, 'distributing', 'switching', 't3');
        if (looks === 6) await store.updateReleaseStatus(RELEASE, 'switching', 'succeeded', 't6');
      },
    });
    const events = [];
    for await (const event of feed.events(RELEASE)) events.push(event);
    expect(events.map((e) => [e.event, e.event === 'release' ? e.data.status : e.data.status])).toEqual([
      ['release', 'distributing'],
      ['release', 'switching'],
      ['release', 'succeeded'],
      ['end', 'succeeded'],
    ]);
    expect(looks).toBe(6);
    expect(reads).toBe(2 * 7);
    expect(views).toBe(3);
  });
});
