import { createDynamoLockStore, createTableAccess } from '@slipway/aws';
import { EnvironmentLockedError, type LockStore, type QueueWaiter } from '@slipway/core';
import { describe, expect, it } from 'vitest';
import { createMemoryLockStore } from '../../packages/core/src/testing/memory-release-store.ts';
import { at, implementations, releaseId } from './implementations.ts';

const stores = implementations<LockStore>('locks', createMemoryLockStore, (client, table) => createDynamoLockStore(createTableAccess(client, table)));

const lock = (holder: string, leaseUntil: string, environment = 'production') => ({
  app: 'shop',
  environment,
  holder,
  acquiredAt: at(0),
  leaseUntil,
});

const waiter = (id: string, overrides: Partial<QueueWaiter> = {}): QueueWaiter => ({
  app: 'shop',
  environment: 'production',
  releaseId: id,
  taskToken: `token-${id}`,
  since: at(0),
  ...overrides,
});

describe.each(stores)('lock store contract: %s', (_name, make) => {
  it('lets one holder in, renews for the same holder, refuses others naming the holder', async () => {
    const store = await make();
    await store.acquireLock(lock('rel-a', at(3600)), at(0));
    await store.acquireLock(lock('rel-a', at(7200)), at(1800));
    expect(await store.getLock('shop', 'production')).toEqual(lock('rel-a', at(7200)));
    const refused = store.acquireLock(lock('rel-b', at(9000)), at(3600));
    await expect(refused).rejects.toThrow(EnvironmentLockedError);
    await expect(refused).rejects.toMatchObject({ holder: 'rel-a', leaseUntil: at(7200) });
  });

  it('refuses a taker at the very end of the lease and lets one in just after it', async () => {
    const store = await make();
    await store.acquireLock(lock('rel-a', at(60)), at(0));
    await expect(store.acquireLock(lock('rel-b', at(120)), at(60))).rejects.toThrow(EnvironmentLockedError);
    // The lease ran out: a crashed holder cannot block the environment forever.
    await store.acquireLock(lock('rel-b', at(120)), new Date(Date.parse(at(60)) + 1).toISOString());
    expect((await store.getLock('shop', 'production'))?.holder).toBe('rel-b');
  });

  it('frees a lock only for its holder; freeing one not held changes nothing', async () => {
    const store = await make();
    await store.acquireLock(lock('rel-b', at(3600)), at(0));
    await store.releaseLock('shop', 'production', 'rel-a');
    expect((await store.getLock('shop', 'production'))?.holder).toBe('rel-b');
    await store.releaseLock('shop', 'production', 'rel-b');
    expect(await store.getLock('shop', 'production')).toBeUndefined();
    await store.releaseLock('shop', 'production', 'rel-b');
    await store.releaseLock('shop', 'nowhere', 'rel-b');
    await store.acquireLock(lock('rel-c', at(3600)), at(0));
    expect((await store.getLock('shop', 'production'))?.holder).toBe('rel-c');
  });

  it('reads the locks of several environments at once, in the order asked, leaving free ones out', async () => {
    const store = await make();
    await store.acquireLock(lock('rel-a', at(60), 'staging'), at(0));
    await store.acquireLock(lock('rel-b', at(60), 'production'), at(0));
    expect(await store.getLocks('shop', ['production', 'qa', 'staging'])).toEqual([lock('rel-b', at(60), 'production'), lock('rel-a', at(60), 'staging')]);
    expect(await store.getLocks('shop', ['qa'])).toEqual([]);
    expect(await store.getLocks('shop', [])).toEqual([]);
    expect(await store.getLocks('other', ['production'])).toEqual([]);
  });

  it('keeps each environment its own lock', async () => {
    const store = await make();
    await store.acquireLock(lock('rel-a', at(3600), 'staging'), at(0));
    await store.acquireLock(lock('rel-b', at(3600), 'production'), at(0));
    expect((await store.getLock('shop', 'staging'))?.holder).toBe('rel-a');
    expect((await store.getLock('shop', 'production'))?.holder).toBe('rel-b');
  });

  it('admits exactly one of two acquirers at the same moment', async () => {
    const store = await make();
    const attempts = await Promise.allSettled([store.acquireLock(lock('rel-1', at(60)), at(0)), store.acquireLock(lock('rel-2', at(60)), at(0))]);
    expect(attempts.filter((a) => a.status === 'fulfilled')).toHaveLength(1);
    const winner = (await store.getLock('shop', 'production'))!.holder;
    const loser = attempts.find((a) => a.status === 'rejected') as PromiseRejectedResult;
    expect(loser.reason).toBeInstanceOf(EnvironmentLockedError);
    expect(loser.reason).toMatchObject({ holder: winner });
  });

  it('admits exactly one of many takers of an expired lease', async () => {
    const store = await make();
    await store.acquireLock(lock('crashed', at(60)), at(0));
    const attempts = await Promise.allSettled(
      Array.from({ length: 6 }, (_, i) => store.acquireLock(lock(`rel-${i}`, at(3600)), at(120))),
    );
    expect(attempts.filter((a) => a.status === 'fulfilled')).toHaveLength(1);
    expect((await store.getLock('shop', 'production'))?.holder).not.toBe('crashed');
  });

  it('lines releases up in release-id order, whatever order they joined in', async () => {
    const store = await make();
    const [first, second, third] = [releaseId(), releaseId(), releaseId()];
    expect(await store.joinQueue(waiter(third))).toEqual({ created: true });
    expect(await store.joinQueue(waiter(first))).toEqual({ created: true });
    expect(await store.joinQueue(waiter(second))).toEqual({ created: true });
    expect((await store.listQueue('shop', 'production')).map((w) => w.releaseId)).toEqual([first, second, third]);
    expect((await store.listQueue('shop', 'production', 1)).map((w) => w.releaseId)).toEqual([first]);
    expect(await store.listQueue('shop', 'staging')).toEqual([]);
  });

  it('joining twice keeps the place and its since, and takes the new token', async () => {
    const store = await make();
    const [first, second] = [releaseId(), releaseId()];
    await store.joinQueue(waiter(first));
    await store.joinQueue(waiter(second));
    expect(await store.joinQueue(waiter(first, { taskToken: 'newer', since: at(500) }))).toEqual({ created: false });
    expect(await store.listQueue('shop', 'production')).toEqual([waiter(first, { taskToken: 'newer' }), waiter(second)]);
  });

  it('joining twice at once makes one place, and says created once', async () => {
    const store = await make();
    const id = releaseId();
    const joins = await Promise.all([store.joinQueue(waiter(id, { taskToken: 'a' })), store.joinQueue(waiter(id, { taskToken: 'b' }))]);
    expect(joins.filter((j) => j.created)).toHaveLength(1);
    const line = await store.listQueue('shop', 'production');
    expect(line).toHaveLength(1);
    expect(['a', 'b']).toContain(line[0]?.taskToken);
  });

  it('leaves the line; leaving a line one is not in changes nothing', async () => {
    const store = await make();
    const [first, second] = [releaseId(), releaseId()];
    await store.joinQueue(waiter(first));
    await store.joinQueue(waiter(second));
    await store.leaveQueue('shop', 'production', first);
    await store.leaveQueue('shop', 'production', first);
    await store.leaveQueue('shop', 'staging', second);
    expect((await store.listQueue('shop', 'production')).map((w) => w.releaseId)).toEqual([second]);
  });

  it('lists the environments someone waits for, each once, bounded by waiters looked at', async () => {
    const store = await make();
    const ids = [releaseId(), releaseId(), releaseId(), releaseId()];
    await store.joinQueue(waiter(ids[0]!, { app: 'web', environment: 'production' }));
    await store.joinQueue(waiter(ids[1]!, { app: 'shop', environment: 'staging' }));
    await store.joinQueue(waiter(ids[2]!, { app: 'shop', environment: 'production' }));
    await store.joinQueue(waiter(ids[3]!, { app: 'shop', environment: 'production' }));
    expect(await store.listQueuedEnvironments(100)).toEqual([
      { app: 'shop', environment: 'production' },
      { app: 'shop', environment: 'staging' },
      { app: 'web', environment: 'production' },
    ]);
    expect(await store.listQueuedEnvironments(2)).toEqual([{ app: 'shop', environment: 'production' }]);
    await store.leaveQueue('web', 'production', ids[0]!);
    expect(await store.listQueuedEnvironments(100)).toHaveLength(2);
  });
});
