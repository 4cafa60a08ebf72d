import { PutCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { createDynamoReleaseStore } from '@slipway/aws';
import type { ReleaseStore } from '@slipway/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { aRelease, at, environmentsOf } from '../contract/implementations.ts';
import { sha256 } from '../support/fixtures.ts';
import { localDynamo } from '../support/stand-ins.ts';

/**
 * What the contract suites (test/contract) cannot see: where each port puts its items. Data written
 * before the store was split must still be read, and the TTL and retention code relies on the keys.
 */
let dynamo: Awaited<ReturnType<typeof localDynamo>>;
beforeAll(async () => {
  dynamo = await localDynamo();
});
afterAll(async () => dynamo.close());

async function freshStore(): Promise<{ store: ReleaseStore; tableName: string }> {
  const tableName = await dynamo.freshTable('layout');
  return { store: createDynamoReleaseStore(dynamo.client, tableName), tableName };
}

async function keysIn(tableName: string): Promise<string[]> {
  const { Items = [] } = await dynamo.client.send(new ScanCommand({ TableName: tableName }));
  return Items.map((item) =>
    ['pk', 'sk', 'gsi1pk', 'gsi1sk', 'gsi2pk', 'gsi2sk'].map((name) => (item[name] === undefined ? '-' : String(item[name]))).join(' '),
  ).sort();
}

describe('the release table layout', () => {
  it('keeps every item under the keys table.ts lists', async () => {
    const { store, tableName } = await freshStore();
    const release = aRelease('shop', { id: '01layout00000000000000000a' });
    const id = release.id;
    await store.putApp(release.config, 'admin', at(0));
    await store.createRelease(release, environmentsOf(release));
    await store.appendEvent({ releaseId: id, id: 'e1', at: at(0), type: 'release.opened', actor: 'alice' });
    await store.acquireLock({ app: 'shop', environment: 'staging', holder: id, acquiredAt: at(0), leaseUntil: at(60) }, at(0));
    await store.joinQueue({ app: 'shop', environment: 'production', releaseId: id, taskToken: 't', since: at(0) });
    await store.savePlan({ releaseId: id, app: 'shop', environments: [{ name: 'staging', approval: false, bakeSeconds: 0, batches: [['h1']] }] });
    await store.ensureHostStates(id, 'staging', ['h1'], at(0));
    await store.recordHostOutcomes(id, 'staging', 'distribute', [{ host: 'h1', output: { exitCode: 0, stdout: '', stderr: '', startedAt: at(0), endedAt: at(1) } }], at(1));
    await store.startStep({ releaseId: id, key: 'distribute#staging', kind: 'distribute', environment: 'staging', hosts: ['h1'], commandId: 'c1', taskToken: 't', state: 'running', createdAt: at(0), updatedAt: at(0) });
    await store.putEnvironmentLive({ app: 'shop', environment: 'staging', retained: [] });
    await store.putArtifactRecord({ app: 'shop', sha256: 'b'.repeat(64), key: 'k', size: 1, requestedBy: 'alice', requestedAt: at(0) });

    expect(await keysIn(tableName)).toEqual(
      [
        'APP#shop CONFIG - - APPS shop',
        'APP#shop LIVE#staging - - - -',
        `ART#shop#${'b'.repeat(64)} ARTIFACT ARTS#shop ${'b'.repeat(64)} - -`,
        `CMD#c1 CMD - - - -`,
        'LOCK#shop#staging LOCK - - - -',
        `QUEUE#shop#production WAIT#${id} - - QUEUED shop#production#${id}`,
        `REL#${id} ENV#production ENVREL#shop#production ${id} - -`,
        `REL#${id} ENV#staging ENVREL#shop#staging ${id} - -`,
        `REL#${id} EVENT#e1 - - - -`,
        `REL#${id} HOSTS#staging#${sha256('h1').slice(0, 32)} - - - -`,
        `REL#${id} HOSTSUM#staging#distribute#${sha256('h1').slice(0, 32)} - - - -`,
        `REL#${id} ~OUTPUT#staging#h1#distribute - - - -`,
        `REL#${id} PLAN - - - -`,
        `REL#${id} PLAN#staging - - - -`,
        `REL#${id} RELEASE APPREL#shop ${id} RELEASES ${id}`,
        `REL#${id} STEP#distribute#staging - - STEPS#RUNNING ${at(0)}#${id}#distribute#staging`,
      ].sort(),
    );
    // A settled step leaves the sweep's index.
    await store.completeStep(id, 'distribute#staging', { status: 'succeeded' }, at(5));
    expect(await keysIn(tableName)).toContain(`REL#${id} STEP#distribute#staging - - - -`);
  });

  it('reads a plan stored whole in one item, as plans were before they were split', async () => {
    const { store, tableName } = await freshStore();
    const plan = { releaseId: '01oldplan0000000000000000a', app: 'shop', environments: [{ name: 'production', approval: true, bakeSeconds: 60, batches: [['h1'], ['h2']] }] };
    await dynamo.client.send(new PutCommand({ TableName: tableName, Item: { pk: `REL#${plan.releaseId}`, sk: 'PLAN', ...plan } }));
    expect(await store.getPlan(plan.releaseId)).toEqual(plan);
    expect(await store.savePlan({ ...plan, environments: [] })).toEqual(plan);
  });
});
