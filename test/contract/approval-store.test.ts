import { createDynamoApprovalStore } from '@slipway/aws';
import type { ApprovalDecision, ApprovalRequest, ApprovalStore } from '@slipway/core';
import { describe, expect, it } from 'vitest';
import { createMemoryApprovalStore } from '../../packages/core/src/testing/memory-approval-store.ts';
import { at, implementations, releaseId } from './implementations.ts';

const stores = implementations<ApprovalStore>('approvals', createMemoryApprovalStore, createDynamoApprovalStore);

const request = (id: string, overrides: Partial<ApprovalRequest> = {}): ApprovalRequest => ({
  releaseId: id,
  environment: 'production',
  approvers: ['lead@example.com', 'cto@example.com'],
  required: 1,
  allowSelfApproval: false,
  status: 'pending',
  requestedAt: at(0),
  expiresAt: at(3600),
  ...overrides,
});

const decision = (id: string, approver: string, overrides: Partial<ApprovalDecision> = {}): ApprovalDecision => ({
  releaseId: id,
  environment: 'production',
  approver,
  decision: 'approve',
  reason: '',
  at: at(10),
  via: 'link',
  ...overrides,
});

describe.each(stores)('approval store contract: %s', (_name, make) => {
  it('creates a gate once; a second creation returns the one stored first', async () => {
    const store = await make();
    const id = releaseId();
    expect(await store.createRequest(request(id))).toEqual({ created: true, request: request(id) });
    expect(await store.createRequest(request(id, { required: 2 }))).toEqual({ created: false, request: request(id) });
    expect(await store.getRequest(id, 'production')).toEqual(request(id));
    expect(await store.getRequest(id, 'staging')).toBeUndefined();
  });

  it('lists a release\'s gates by environment', async () => {
    const store = await make();
    const id = releaseId();
    await store.createRequest(request(id, { environment: 'staging' }));
    await store.createRequest(request(id, { environment: 'production' }));
    await store.createRequest(request(releaseId()));
    expect((await store.listRequests(id)).map((r) => r.environment)).toEqual(['production', 'staging']);
  });

  it('settles a pending gate once: the second settlement, even a racing one, is refused', async () => {
    const store = await make();
    const id = releaseId();
    await store.createRequest(request(id));
    const settled = await Promise.all([
      store.settleRequest(id, 'production', 'approved', at(20)),
      store.settleRequest(id, 'production', 'rejected', at(20)),
    ]);
    expect(settled.filter(Boolean)).toHaveLength(1);
    expect(await store.settleRequest(id, 'production', 'timed_out', at(30))).toBe(false);
    const stored = await store.getRequest(id, 'production');
    expect(stored?.status).toBe(settled[0] ? 'approved' : 'rejected');
    expect(stored?.decidedAt).toBe(at(20));
    expect(await store.settleRequest(id, 'staging', 'approved', at(30))).toBe(false);
  });

  it('lists pending gates due by a time, oldest expiry first, and forgets settled ones', async () => {
    const store = await make();
    const [a, b, c] = [releaseId(), releaseId(), releaseId()];
    await store.createRequest(request(a, { expiresAt: at(200) }));
    await store.createRequest(request(b, { expiresAt: at(100) }));
    await store.createRequest(request(c, { expiresAt: at(300) }));
    expect((await store.listDueRequests(at(99))).map((r) => r.releaseId)).toEqual([]);
    expect((await store.listDueRequests(at(100))).map((r) => r.releaseId)).toEqual([b]);
    expect((await store.listDueRequests(at(250))).map((r) => r.releaseId)).toEqual([b, a]);
    await store.settleRequest(b, 'production', 'approved', at(50));
    expect((await store.listDueRequests('9999-12-31T23:59:59.999Z')).map((r) => r.releaseId)).toEqual([a, c]);
  });

  it('stores a link once under its hash and lets it be used once, even by two clicks at once', async () => {
    const store = await make();
    const id = releaseId();
    const link = { releaseId: id, environment: 'production', approver: 'lead@example.com', expiresAt: at(3600) };
    await store.putLink('hash-1', link);
    await store.putLink('hash-1', { ...link, approver: 'mallory@example.com' });
    expect(await store.getLink('hash-1')).toEqual(link);
    expect(await store.getLink('hash-2')).toBeUndefined();
    const uses = await Promise.all([store.useLink('hash-1', at(10)), store.useLink('hash-1', at(11))]);
    expect(uses.filter(Boolean)).toHaveLength(1);
    expect(await store.useLink('hash-1', at(12))).toBe(false);
    expect((await store.getLink('hash-1'))?.usedAt).toBe(uses[0] ? at(10) : at(11));
    expect(await store.useLink('hash-2', at(12))).toBe(false);
  });

  it('records one decision per approver, whatever the case of the address, even two at once', async () => {
    const store = await make();
    const id = releaseId();
    const first = await Promise.all([
      store.recordDecision(decision(id, 'lead@example.com')),
      store.recordDecision(decision(id, 'Lead@Example.com', { decision: 'reject', via: 'api' })),
    ]);
    expect(first.filter(Boolean)).toHaveLength(1);
    expect(await store.recordDecision(decision(id, 'cto@example.com', { decision: 'reject' }))).toBe(true);
    await store.recordDecision(decision(id, 'ops@example.com', { environment: 'staging' }));
    const listed = await store.listDecisions(id, 'production');
    expect(listed.map((d) => d.approver.toLowerCase())).toEqual(['cto@example.com', 'lead@example.com']);
    expect(await store.listDecisions(id, 'staging')).toEqual([decision(id, 'ops@example.com', { environment: 'staging' })]);
  });

  it('claims a notification once; a claim given back is taken again from its retry time on', async () => {
    const store = await make();
    expect(await store.claimNotification('mail#1', at(0))).toBe(true);
    expect(await store.claimNotification('mail#1', at(1))).toBe(false);
    await store.deferNotification('mail#1', at(0), at(30));
    expect(await store.claimNotification('mail#1', at(29))).toBe(false);
    expect(await store.claimNotification('mail#1', at(30))).toBe(true);
    // The new claim has no retry time: it holds until given back in its turn.
    expect(await store.claimNotification('mail#1', at(9999))).toBe(false);
  });

  it('gives back only the claim it names: a stale deferral leaves a newer claim alone', async () => {
    const store = await make();
    await store.claimNotification('mail#2', at(0));
    await store.deferNotification('mail#2', at(0), at(10));
    expect(await store.claimNotification('mail#2', at(20))).toBe(true);
    await store.deferNotification('mail#2', at(0), at(21));
    expect(await store.claimNotification('mail#2', at(30))).toBe(false);
    await store.deferNotification('mail#never', at(0), at(1));
    expect(await store.claimNotification('mail#never', at(2))).toBe(true);
  });

  it('lets exactly one of two racing claims win', async () => {
    const store = await make();
    const claims = await Promise.all([store.claimNotification('mail#3', at(0)), store.claimNotification('mail#3', at(0))]);
    expect(claims.filter(Boolean)).toHaveLength(1);
  });
});
