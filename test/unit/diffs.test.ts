import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppConfig, artifactKey, NotFoundError } from '@slipway/core';
import { create } from 'tar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestSlipway, type TestSlipway } from '../../packages/core/src/testing/harness.ts';
import { shopConfigInput } from '../support/fixtures.ts';

/**
 * What a release changes, on fakes: Prepare lists the artifact's files once, and the diff compares
 * them with the release the environment runs.
 */
const [staging] = shopConfigInput.environments;
const shop = AppConfig.parse({ ...shopConfigInput, environments: [staging] });

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'slipway-diffs-'));
});
afterAll(async () => rm(work, { recursive: true, force: true }));

/** Stores a real .tar.gz of `files` as an uploaded artifact of shop; answers its sha256. */
async function upload(t: TestSlipway, files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(work, 'src-'));
  for (const [path, content] of Object.entries(files)) {
    await mkdir(join(dir, path, '..'), { recursive: true });
    await writeFile(join(dir, path), content);
  }
  const chunks: Buffer[] = [];
  for await (const chunk of create({ gzip: true, cwd: dir, portable: true }, ['.'])) chunks.push(Buffer.from(chunk));
  const bytes = Buffer.concat(chunks);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  t.objects.store(artifactKey('shop', sha256), sha256, bytes.length, bytes);
  return sha256;
}

/** Opens, prepares and (unless told not to) takes the release live in staging, as the ASL would. */
async function release(t: TestSlipway, version: string, sha256: string, { live = true } = {}) {
  const { id } = await t.open('shop', version, sha256);
  await t.stages.prepare({ releaseId: id, app: 'shop' });
  if (!live) return id;
  await t.stages.enterEnvironment({ taskToken: `enter-${id}`, releaseId: id, environment: 'staging' });
  await t.stages.distribute({ taskToken: `distribute-${id}`, releaseId: id, environment: 'staging' });
  await t.finish('distribute');
  await t.stages.switchBatch({ taskToken: `switch-${id}`, releaseId: id, environment: 'staging', batchIndex: 0 });
  await t.finish('switch');
  await t.stages.completeEnvironment({ releaseId: id, environment: 'staging' });
  return id;
}

describe('the diff of a release', () => {
  it('lists every file as added for a first release, and records the artifact\'s files once', async () => {
    const t = createTestSlipway();
    await t.store.putApp(shop, 'admin', t.clock.now().toISOString());
    const sha = await upload(t, { 'index.html': 'v1', 'assets/app.js': 'one' });
    const id = await release(t, '1.0.0', sha, { live: false });
    expect(await t.slipway.diffs.diff(id, 'staging')).toEqual({
      from: null,
      to: { releaseId: id, version: '1.0.0' },
      environment: 'staging',
      files: { added: ['assets/app.js', 'index.html'], removed: [], changed: [] },
      bytes: 5,
      complete: true,
    });
    expect([...t.objects.manifests.keys()]).toEqual([artifactKey('shop', sha)]);
  });

  it('compares with what the environment runs before the switch, and with what it replaced after', async () => {
    const t = createTestSlipway();
    await t.store.putApp(shop, 'admin', t.clock.now().toISOString());
    const v1 = await release(t, '1.0.0', await upload(t, { 'index.html': 'v1', 'old.css': 'x', 'same.js': 'same' }));
    const v2 = await release(t, '2.0.0', await upload(t, { 'index.html': 'v2!', 'new.css': 'yy', 'same.js': 'same' }), { live: false });
    const expected = {
      from: { releaseId: v1, version: '1.0.0' },
      to: { releaseId: v2, version: '2.0.0' },
      environment: 'staging',
      files: { added: ['new.css'], removed: ['old.css'], changed: ['index.html'] },
      bytes: 5,
      complete: true,
    };
    expect(await t.slipway.diffs.diff(v2, 'staging')).toEqual(expected);
    // Once 2.0.0 is live, its diff still says what it changed, not "nothing".
    await t.stages.enterEnvironment({ taskToken: `enter-${v2}`, releaseId: v2, environment: 'staging' });
    await t.stages.distribute({ taskToken: `distribute-${v2}`, releaseId: v2, environment: 'staging' });
    await t.finish('distribute');
    await t.stages.switchBatch({ taskToken: `switch-${v2}`, releaseId: v2, environment: 'staging', batchIndex: 0 });
    await t.finish('switch');
    await t.stages.completeEnvironment({ releaseId: v2, environment: 'staging' });
    expect(await t.slipway.diffs.diff(v2, 'staging')).toEqual(expected);
  });

  it('goes on without a list when the store cannot be read, and the diff says so', async () => {
    const t = createTestSlipway();
    await t.store.putApp(shop, 'admin', t.clock.now().toISOString());
    const sha = await upload(t, { 'index.html': 'v1' });
    // Kept as S3 keeps an upload's checksum, so the open reads nothing; Prepare then cannot read it.
    t.objects.store(artifactKey('shop', sha), sha, 1);
    t.objects.read = async () => {
      throw new Error('S3 is away');
    };
    const id = await release(t, '1.0.0', sha, { live: false });
    expect(await t.store.getPlan(id)).toBeDefined();
    const diff = await t.slipway.diffs.diff(id, 'staging');
    expect(diff).toMatchObject({ complete: false, files: { added: [], removed: [], changed: [] } });
    expect(diff.reason).toMatch(/no file list was recorded/);
  });

  it('says when the live release has no list, and shows every file as added', async () => {
    const t = createTestSlipway();
    await t.store.putApp(shop, 'admin', t.clock.now().toISOString());
    const v1Sha = await upload(t, { 'index.html': 'v1' });
    await release(t, '1.0.0', v1Sha);
    t.objects.manifests.delete(artifactKey('shop', v1Sha));
    const v2 = await release(t, '2.0.0', await upload(t, { 'index.html': 'v2' }), { live: false });
    const diff = await t.slipway.diffs.diff(v2, 'staging');
    expect(diff.files.added).toEqual(['index.html']);
    expect(diff.complete).toBe(false);
    expect(diff.reason).toBe('no file list for 1.0.0 (recorded before file lists existed, or its artifact was deleted): every file shows as added');
  });

  it('refuses an environment the release does not go to, naming the ones it does', async () => {
    const t = createTestSlipway();
    await t.store.putApp(shop, 'admin', t.clock.now().toISOString());
    const id = await release(t, '1.0.0', await upload(t, { 'index.html': 'v1' }), { live: false });
    const refused = t.slipway.diffs.diff(id, 'production');
    await expect(refused).rejects.toBeInstanceOf(NotFoundError);
    await expect(refused).rejects.toThrow(`release ${id} does not go to environment production; it goes to staging`);
  });
});

describe('the approval mail', () => {
  it('shows the commit built from, the counts, the first 50 paths of each list and a link to every file, every path escaped', async () => {
    const t = createTestSlipway();
    const gated = AppConfig.parse({ ...shopConfigInput, environments: [{ ...staging, approval: { approvers: ['lead@example.com'] } }] });
    await t.store.putApp(gated, 'admin', t.clock.now().toISOString());
    const files = Object.fromEntries(Array.from({ length: 59 }, (_, i) => [`f${String(i).padStart(2, '0')}.txt`, 'x']));
    const sha = await upload(t, { ...files, '<b>bold</b>.html': 'y' });
    const { id } = await t.open('shop', '1.0.0', sha);
    await t.stages.prepare({ releaseId: id, app: 'shop' });
    await t.stages.enterEnvironment({ taskToken: 'enter', releaseId: id, environment: 'staging' });
    await t.stages.distribute({ taskToken: 'distribute', releaseId: id, environment: 'staging' });
    await t.finish('distribute');
    const record = (await t.store.getArtifactRecord('shop', sha))!;
    await t.store.putArtifactRecord({ ...record, source: { repository: 'git@github.com:acme/shop.git', commit: '0123456789ab'.padEnd(40, 'f'), ref: 'main', dirty: true } });
    await t.stages.awaitApproval({ taskToken: 'gate', releaseId: id, environment: 'staging' });
    const mail = t.mailer.sent.find((m) => m.to.includes('lead@example.com'))!;
    expect(mail.text).toContain('Built from: git@github.com:acme/shop.git at 0123456789ab (main), with changes not committed');
    expect(mail.text).toContain('Files: 60 added, 0 removed, 0 changed (60 bytes new)');
    const listed = mail.text.split('\n').filter((line) => line.startsWith('  '));
    expect(listed).toHaveLength(51);
    expect(listed[0]).toBe('  <b>bold</b>.html');
    expect(listed.at(-1)).toBe('  … and 10 more');
    expect(mail.text).toContain(`Every file: https://deploy.example.com/#/releases/${id}/diff/staging`);
    expect(mail.html).toContain('<h3>Added (60)</h3>');
    expect(mail.html).toContain('<code>&lt;b&gt;bold&lt;/b&gt;.html</code>');
    expect(mail.html).not.toContain('<b>bold');
  });
});
