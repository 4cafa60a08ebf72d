import { rm, writeFile } from 'node:fs/promises';
import { createDocumentClient, createDynamoReleaseStore, createS3ArtifactStore, createS3Client } from '@slipway/aws';
import { createLogger, createRetention, type Release } from '@slipway/core';
import { LOCAL_BUCKET, LOCAL_CREDENTIALS, LOCAL_REGION, LOCAL_TABLE } from '@slipway/local';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/dev-server.ts';
import { scenario } from '../support/scenario.ts';

/**
 * Retention on the embedded default's real stores (local DynamoDB and S3), aged by an injected clock:
 * old records and unused artifacts go; whatever an environment runs, ran just before or keeps for
 * rollback stays, and so does anything a running release uses.
 */
let server: TestServer;
const s = scenario(() => server);
const DAY = 86_400_000;

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => server.stop());

function retentionAt(daysFromNow: number) {
  const connection = { region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS, endpoints: server.endpoints };
  const clock = { now: () => new Date(Date.now() + daysFromNow * DAY) };
  return createRetention({
    store: createDynamoReleaseStore(createDocumentClient(connection), LOCAL_TABLE),
    objects: createS3ArtifactStore(createS3Client(connection), LOCAL_BUCKET, clock),
    workflow: server.executor,
    clock,
    logger: createLogger({ service: 'retention-test', level: 'error', write: () => {} }),
    policy: { releaseDays: 365, artifactDays: 30 },
  });
}

describe('retention', () => {
  it('keeps what environments run or keep and what a running release uses; deletes the rest once old enough', async () => {
    await s.app({
      name: 'aging',
      deployRoot: '/srv/aging',
      keepReleases: 2,
      hooks: { healthCheck: 'test ! -e "$DEPLOY_ROOT/FAIL"' },
      environments: [{ name: 'production', targets: { hosts: ['aging-1'] } }],
    });
    const ids: string[] = [];
    for (const version of ['1', '2', '3', '4']) {
      ids.push(await s.open('aging', version));
      expect((await s.waitForEnd(ids.at(-1)!)).status).toBe('succeeded');
    }
    const [v1, v2, v3, v4] = ids as [string, string, string, string];
    // Its health check fails: the release ends failed and production stays on v4.
    await writeFile(s.fleet('aging-1', 'FAIL'), '');
    const failed = await s.open('aging', '5-broken', { 'index.html': 'broken' });
    expect((await s.waitForEnd(failed)).status).toBe('failed');
    await rm(s.fleet('aging-1', 'FAIL'));
    const releaseOf = async (id: string) => (await s.release(id)) as Release;
    // A release waiting at a gate is running: its record and artifact stay however old.
    await s.app({
      name: 'waiting',
      deployRoot: '/srv/waiting',
      environments: [{ name: 'production', targets: { hosts: ['waiting-1'] }, approval: { approvers: ['lead@example.com'] } }],
    });
    const pending = await s.open('waiting', '1', { 'index.html': 'waiting' });
    await s.waitForGate(pending, 'production');
    const unused = await server.upload('aging', 'pushed, never released');

    // Too recent: nothing goes.
    expect(await retentionAt(10).sweepReleases()).toEqual([]);
    expect(await retentionAt(10).sweepArtifacts()).toEqual([]);

    const later = retentionAt(400);
    const deleted = await later.sweepReleases();
    expect(deleted.sort()).toEqual([v1, v2, failed].sort());
    for (const id of [v1, v2, failed]) {
      expect((await server.call('GET', `/v1/releases/${id}`)).status).toBe(404);
      expect(await server.executor.releaseHistory(id)).toBeUndefined();
    }
    for (const id of [v3, v4, pending]) expect((await server.call('GET', `/v1/releases/${id}`)).status).toBe(200);
    // What the environment runs and keeps is untouched, and rolling back still works.
    expect((await s.live('aging')).production!.live).toBe(v4);

    const artifactsGone = await later.sweepArtifacts();
    const keyOf = async (id: string) => (await releaseOf(id)).artifact.key;
    expect(artifactsGone).toContain(unused.key);
    for (const id of [v3, v4, pending]) expect(artifactsGone).not.toContain(await keyOf(id));
    const objects = createS3ArtifactStore(
      createS3Client({ region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS, endpoints: server.endpoints }),
      LOCAL_BUCKET,
      { now: () => new Date() },
    );
    expect(await objects.head(unused.key)).toBeUndefined();
    for (const id of [v3, v4, pending]) expect(await objects.head(await keyOf(id))).toBeDefined();

    const rollback = await s.rollback('aging', 'production');
    expect((await s.waitForEnd(rollback)).status).toBe('succeeded');
    expect(await s.current('aging-1')).toBe(`releases/${v3}`);
    // A second pass, as old: only the rollback's own record (its target stays kept, and so does v4).
    expect(await retentionAt(400).sweepReleases()).toEqual([rollback]);
    for (const id of [v3, v4]) expect((await server.call('GET', `/v1/releases/${id}`)).status).toBe(200);
  });
});
