import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { createDynamoApprovalStore, createDynamoReleaseStore } from '@slipway/aws';
import {
  type ApprovalDecision,
  type ApprovalRequest,
  type ApprovalStore,
  ConflictError,
  type EnvironmentState,
  hostSummaryOf,
  type Release,
  type ReleaseEvent,
  type ReleaseStore,
} from '@slipway/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMemoryApprovalStore } from '../../packages/core/src/testing/memory-approval-store.ts';
import { createMemoryReleaseStore } from '../../packages/core/src/testing/memory-release-store.ts';
import { localDynamo } from '../support/stand-ins.ts';
import { aRelease, at, environmentsOf, implementations } from './implementations.ts';

/** A release written and read whole reaches into several ports, so this suite runs on the composed store. */
const stores = implementations<ReleaseStore>('whole', createMemoryReleaseStore, createDynamoReleaseStore);

/** The release store beside the approval store, on the one table (DynamoDB) or sharing its records (the fakes). */
const withApprovals = implementations<{ releases: ReleaseStore; approvals: ApprovalStore }>(
  'whole-gates',
  () => {
    const approvals = createMemoryApprovalStore();
    return { releases: createMemoryReleaseStore(approvals), approvals };
  },
  (client, table) => ({ releases: createDynamoReleaseStore(client, table), approvals: createDynamoApprovalStore(client, table) }),
);

const opened = (release: Release, id = 'e1'): ReleaseEvent => ({ releaseId: release.id, id, at: at(0), type: 'release.opened', actor: 'alice' });

describe.each(stores)('whole release contract: %s', (_name, make) => {
  it('opens a release with its environments and first events, and reads it back as the single-purpose reads do', async () => {
    const store = await make();
    const release = aRelease();
    await store.openRelease(release, environmentsOf(release), [opened(release)]);
    await store.appendEvent({ ...opened(release, 'e2'), type: 'workflow.started', actor: 'slipway' });
    await store.savePlan({ releaseId: release.id, app: 'shop', environments: [{ name: 'staging', approval: false, bakeSeconds: 0, batches: [['h1', 'h2']] }] });
    await store.ensureHostStates(release.id, 'staging', ['h2', 'h1'], at(0));
    await store.recordHostOutcomes(
      release.id,
      'staging',
      'distribute',
      [{ host: 'h1', status: 'distributed', output: { exitCode: 0, stdout: 'ok', stderr: '', startedAt: at(0), endedAt: at(1) } }],
      at(1),
    );
    await store.startStep({ releaseId: release.id, key: 'pause#staging#0', kind: 'pause', environment: 'staging', hosts: [], state: 'running', createdAt: at(2), updatedAt: at(2) });
    await store.startStep({ releaseId: release.id, key: 'distribute#staging', kind: 'distribute', environment: 'staging', hosts: ['h1'], commandId: `c-${release.id}`, taskToken: 't', state: 'running', createdAt: at(0), updatedAt: at(0) });
    // Another release's items are not this one's.
    const other = aRelease();
    await store.openRelease(other, environmentsOf(other), [opened(other)]);

    const whole = await store.readWholeRelease(release.id);
    expect(whole).toEqual({
      release: await store.getRelease(release.id),
      plan: await store.getPlan(release.id),
      environments: await store.getEnvironmentStates(release.id),
      // Without what the steps printed: the host-output route reads that.
      hosts: (await store.getHostStates(release.id)).map(hostSummaryOf),
      events: await store.listEvents(release.id),
      steps: await store.listSteps(release.id),
      approvals: { requests: [], decisions: [] },
    });
    expect(whole?.release).toEqual(release);
    expect(whole?.plan?.environments.map((e) => e.batches)).toEqual([[['h1', 'h2']]]);
    expect(whole?.environments.map((e) => e.environment)).toEqual(['production', 'staging']);
    expect(whole?.hosts.map((h) => [h.host, h.status, Object.keys(h.steps)])).toEqual([['h1', 'distributed', ['distribute']], ['h2', 'pending', []]]);
    expect(whole?.hosts[0]?.steps.distribute).toEqual({ exitCode: 0, startedAt: at(0), endedAt: at(1) });
    expect(JSON.stringify(whole)).not.toContain('stdout');
    expect(whole?.events.map((e) => e.type)).toEqual(['release.opened', 'workflow.started']);
    expect(whole?.steps.map((s) => s.key)).toEqual(['distribute#staging', 'pause#staging#0']);
    expect((await store.listReleases({ app: 'shop', limit: 10 })).items.map((r) => r.id)).toEqual([other.id, release.id]);
    expect((await store.listReleases({ app: 'shop', environment: 'staging', limit: 10 })).items.map((r) => r.id)).toEqual([other.id, release.id]);
  });

  it('writes more environments and events than one batch holds', async () => {
    const store = await make();
    const release = aRelease();
    const environments: EnvironmentState[] = Array.from({ length: 20 }, (_, i) => ({ releaseId: release.id, app: 'shop', environment: `env-${String(i).padStart(2, '0')}`, order: i, status: 'pending' }));
    const events = Array.from({ length: 20 }, (_, i) => opened(release, `e${String(i).padStart(2, '0')}`));
    await store.openRelease(release, environments, events);
    const whole = await store.readWholeRelease(release.id);
    expect(whole?.plan, 'no plan before Prepare stores one').toBeUndefined();
    expect(whole?.environments).toHaveLength(20);
    expect(whole?.events.map((e) => e.id)).toEqual(events.map((e) => e.id));
  });

  it('opens an id once: a second open is a ConflictError and the first release stays', async () => {
    const store = await make();
    const release = aRelease();
    await store.openRelease(release, environmentsOf(release), [opened(release)]);
    await expect(store.openRelease({ ...release, version: '9.9.9' }, environmentsOf(release), [])).rejects.toThrow(ConflictError);
    expect((await store.readWholeRelease(release.id))?.release).toEqual(release);
    const racing = aRelease();
    const opens = await Promise.allSettled([
      store.openRelease(racing, environmentsOf(racing), [opened(racing)]),
      store.openRelease({ ...racing, version: '9.9.9' }, environmentsOf(racing), [opened(racing)]),
    ]);
    expect(opens.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
  });

  it('reads nothing of a release whose release item is missing (an open that stopped before it)', async () => {
    const store = await make();
    const release = aRelease();
    await store.putEnvironmentState(environmentsOf(release)[0]!);
    await store.appendEvent(opened(release));
    expect(await store.readWholeRelease(release.id)).toBeUndefined();
    expect(await store.readWholeRelease('01nosuchrelease0000000000')).toBeUndefined();
    expect((await store.listReleases({ limit: 10 })).items).toEqual([]);
    expect((await store.listReleases({ app: 'shop', environment: environmentsOf(release)[0]!.environment, limit: 10 })).items).toEqual([]);
  });
});

describe.each(withApprovals)('whole release with its approval gates: %s', (_name, make) => {
  const gate = (release: Release, environment: string, overrides: Partial<ApprovalRequest> = {}): ApprovalRequest => ({
    releaseId: release.id,
    environment,
    approvers: ['lead@example.com', 'cto@example.com'],
    required: 2,
    allowSelfApproval: false,
    status: 'pending',
    requestedAt: at(0),
    expiresAt: at(3600),
    ...overrides,
  });
  const decision = (release: Release, environment: string, approver: string, choice: ApprovalDecision['decision']): ApprovalDecision => ({
    releaseId: release.id,
    environment,
    approver,
    decision: choice,
    reason: `${approver} says ${choice}`,
    at: at(10),
    via: 'link',
  });

  it('reads the gates and their decisions in the same read, as the approval store lists them, and no other release\'s', async () => {
    const { releases, approvals } = await make();
    const release = aRelease();
    const other = aRelease();
    for (const each of [release, other]) await releases.openRelease(each, environmentsOf(each), [opened(each)]);
    expect((await releases.readWholeRelease(release.id))?.approvals).toEqual({ requests: [], decisions: [] });

    await approvals.createRequest(gate(release, 'staging'));
    await approvals.createRequest(gate(release, 'production', { required: 1 }));
    await approvals.createRequest(gate(other, 'production'));
    await approvals.recordDecision(decision(release, 'staging', 'lead@example.com', 'approve'));
    await approvals.recordDecision(decision(release, 'production', 'cto@example.com', 'reject'));
    await approvals.recordDecision(decision(release, 'staging', 'cto@example.com', 'approve'));
    await approvals.recordDecision(decision(other, 'production', 'lead@example.com', 'approve'));
    await approvals.settleRequest(release.id, 'production', 'rejected', at(11));

    const read = (await releases.readWholeRelease(release.id))?.approvals;
    const listed = await approvals.listRequests(release.id);
    expect(read?.requests).toEqual(listed);
    expect(read?.requests.map((r) => [r.environment, r.status])).toEqual([['production', 'rejected'], ['staging', 'pending']]);
    const decisions = [
      ...(await approvals.listDecisions(release.id, 'production')),
      ...(await approvals.listDecisions(release.id, 'staging')),
    ];
    expect(read?.decisions).toEqual(decisions);
    expect(read?.decisions.map((d) => `${d.environment} ${d.approver} ${d.decision}`)).toEqual([
      'production cto@example.com reject',
      'staging cto@example.com approve',
      'staging lead@example.com approve',
    ]);
    // Nothing else of the approval store's (a link is its own credential) comes with them.
    expect(JSON.stringify(read)).not.toContain(other.id);
  });
});

describe('whole release on DynamoDB, the call to DynamoDB failing', () => {
  let dynamo: Awaited<ReturnType<typeof localDynamo>>;
  beforeAll(async () => {
    dynamo = await localDynamo();
  });
  afterAll(async () => dynamo.close());

  /** The client as the store sees it: the `failAt`th call it sends fails as a lost connection would. */
  function failing(client: DynamoDBDocumentClient, failAt: number) {
    let sent = 0;
    return new Proxy(client, {
      get(target, name, receiver) {
        if (name !== 'send') return Reflect.get(target, name, receiver) as unknown;
        return (command: Parameters<DynamoDBDocumentClient['send']>[0]) => {
          sent += 1;
          if (sent === failAt) return Promise.reject(Object.assign(new Error('socket hang up'), { name: 'TimeoutError' }));
          return target.send(command);
        };
      },
    });
  }

  it('leaves nothing that reads or lists as a release when any call of the open fails', async () => {
    const release = aRelease();
    for (const failAt of [1, 2]) {
      const table = await dynamo.freshTable('whole-failing');
      const store = createDynamoReleaseStore(failing(dynamo.client, failAt), table);
      await expect(store.openRelease(release, environmentsOf(release), [opened(release)])).rejects.toThrow();
      const reader = createDynamoReleaseStore(dynamo.client, table);
      expect(await reader.readWholeRelease(release.id), `call ${failAt} failing`).toBeUndefined();
      expect((await reader.listReleases({ limit: 10 })).items, `call ${failAt} failing`).toEqual([]);
      expect((await reader.listReleases({ app: 'shop', environment: 'staging', limit: 10 })).items).toEqual([]);
    }
  });
});
