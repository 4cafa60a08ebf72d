import { createDocumentClient, createDynamoReleaseStore } from '@slipway/aws';
import { LOCAL_CREDENTIALS, LOCAL_REGION, LOCAL_TABLE } from '@slipway/local';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/dev-server.ts';
import { sha256, shopConfigInput } from '../support/fixtures.ts';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => server.stop());

async function appRevision(app: string) {
  const response = await server.call('GET', `/v1/apps/${app}`);
  return response.status === 200 ? (response.body.revision as number) : undefined;
}

/** An app of its own for a test, queueing so that several opens never meet a lock. */
async function queuedApp(name: string) {
  const response = await server.call('PUT', `/v1/apps/${name}`, { body: { ...shopConfigInput, name, queue: true } });
  if (response.status !== 200) throw new Error(JSON.stringify(response.body));
}

async function releaseCount() {
  const response = await server.call('GET', '/v1/releases?limit=100');
  return (response.body.items as unknown[]).length;
}

describe('the demo app', () => {
  it('exists on first start with its environments and no lock', async () => {
    const response = await server.call('GET', '/v1/apps/demo');
    expect(response.status).toBe(200);
    expect(response.body.config.environments.map((e: { name: string }) => e.name)).toEqual([
      'staging',
      'production',
    ]);
    expect(response.body.environments).toEqual([
      { name: 'staging', live: null, retained: [], lock: null },
      { name: 'production', live: null, retained: [], lock: null },
    ]);
    expect((await server.call('GET', '/v1/apps')).body.items).toEqual(['demo']);
  });
});

describe('authentication and roles', () => {
  it('asks for a token, refuses unknown and malformed ones', async () => {
    const none = await server.call('GET', '/v1/releases', { token: null });
    expect(none.status).toBe(401);
    expect(none.body.error).toMatchObject({ code: 'unauthorized', message: expect.stringMatching(/Bearer/) });
    expect((await server.call('GET', '/v1/releases', { token: 'slw_not-a-real-token-at-all' })).status).toBe(
      401,
    );
    expect(
      (await server.call('GET', '/v1/releases', { headers: { authorization: 'Basic abc' }, token: null }))
        .status,
    ).toBe(401);
  });

  it('lets a viewer read but not write, and a deployer open but not configure', async () => {
    const viewer = await server.tokenFor('viewer');
    expect((await server.call('GET', '/v1/apps/demo', { token: viewer })).status).toBe(200);
    const refused = await server.call('PUT', '/v1/apps/shop', { token: viewer, body: shopConfigInput });
    expect(refused.status).toBe(403);
    expect(refused.body.error.message).toMatch(/viewer@example.com has role viewer; this needs role admin/);
    expect(await appRevision('shop')).toBeUndefined();

    const deployer = await server.tokenFor('deployer');
    expect(
      (await server.call('PUT', '/v1/apps/shop', { token: deployer, body: shopConfigInput })).status,
    ).toBe(403);
    expect(
      (await server.call('POST', '/v1/tokens', { token: deployer, body: { name: 'x', role: 'admin' } }))
        .status,
    ).toBe(403);
  });

  it('validates token requests', async () => {
    const bad = await server.call('POST', '/v1/tokens', { body: { name: 'x y', role: 'root' } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.details.map((d: { field: string }) => d.field).sort()).toEqual(['name', 'role']);
  });
});

describe('PUT /v1/apps/{app}', () => {
  it('stores a config and bumps its revision', async () => {
    const first = await server.call('PUT', '/v1/apps/web', { body: { ...shopConfigInput, name: 'web' } });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({
      revision: 1,
      updatedBy: 'admin',
      config: { name: 'web', queue: false },
    });
    const second = await server.call('PUT', '/v1/apps/web', {
      body: { ...shopConfigInput, name: 'web', keepReleases: 3 },
    });
    expect(second.body.revision).toBe(2);
  });

  it.each([
    [
      'malformed JSON',
      { rawBody: '{"name": "web",', headers: { 'content-type': 'application/json' } },
      400,
      '(body)',
    ],
    ['an unknown field', { body: { ...shopConfigInput, name: 'web', colour: 'red' } }, 400, 'colour'],
    [
      'a wrong type',
      { body: { ...shopConfigInput, name: 'web', keepReleases: 'five' } },
      400,
      'keepReleases',
    ],
    [
      'a path with ..',
      { body: { ...shopConfigInput, name: 'web', deployRoot: '/srv/../root' } },
      400,
      'deployRoot',
    ],
    [
      'a hook with a newline',
      { body: { ...shopConfigInput, name: 'web', hooks: { postDeploy: 'make\nrm -rf /' } } },
      400,
      'hooks.postDeploy',
    ],
    ['a name that differs from the URL', { body: { ...shopConfigInput, name: 'other' } }, 400, 'name'],
    ['an empty body', { rawBody: '' }, 400, '(body)'],
  ])('refuses %s, names the field and changes nothing', async (_what, options, status, field) => {
    const before = await appRevision('web');
    const response = await server.call('PUT', '/v1/apps/web', options);
    expect(response.status).toBe(status);
    expect(response.body.error.code).toBe('invalid_request');
    expect(response.body.error.details.map((d: { field: string }) => d.field)).toContain(field);
    expect(await appRevision('web')).toBe(before);
  });

  it('refuses a bad app name in the URL and a form body', async () => {
    const badName = await server.call('PUT', '/v1/apps/Bad_Name', {
      body: { ...shopConfigInput, name: 'bad' },
    });
    expect(badName.status).toBe(400);
    const form = await server.call('PUT', '/v1/apps/web', {
      rawBody: 'name=web',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(form.status).toBe(415);
  });

  it('answers 413 for a body over 1 MiB and writes nothing', async () => {
    const before = await appRevision('web');
    const huge = JSON.stringify({ ...shopConfigInput, name: 'web', padding: 'x'.repeat(1024 * 1024) });
    const response = await server.call('PUT', '/v1/apps/web', {
      rawBody: huge,
      headers: { 'content-type': 'application/json' },
    });
    expect(response.status).toBe(413);
    expect(response.body.error.code).toBe('payload_too_large');
    expect(await appRevision('web')).toBe(before);
  });
});

describe('artifacts', () => {
  it('hands out a presigned upload for a content-addressed key', async () => {
    const digest = sha256('bytes');
    const response = await server.call('POST', '/v1/artifacts', {
      body: { app: 'demo', sha256: digest, size: 5 },
    });
    expect(response.status).toBe(201);
    expect(response.body).toMatchObject({
      key: `artifacts/demo/${digest}.tar.gz`,
      alreadyUploaded: false,
      uploadUrl: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+\/slipway-artifacts\/artifacts\/demo\//),
      uploadHeaders: { 'x-amz-checksum-sha256': expect.any(String) },
    });
    expect(Date.parse(response.body.expiresAt)).toBeGreaterThan(Date.now());
  });

  it.each([
    [{ app: 'demo', sha256: 'xyz', size: 5 }, 400, 'sha256'],
    [{ app: 'demo', sha256: sha256('a'), size: 0 }, 400, 'size'],
    [{ app: 'demo', sha256: sha256('a'), size: 6 * 1024 ** 3 }, 413, undefined],
    [{ app: 'nope', sha256: sha256('a'), size: 5 }, 404, undefined],
  ])('refuses %j with %i', async (body, status, field) => {
    const response = await server.call('POST', '/v1/artifacts', { body });
    expect(response.status).toBe(status);
    if (field) expect(response.body.error.details.map((d: { field: string }) => d.field)).toContain(field);
  });

  it('says a verified artifact is already uploaded', async () => {
    await queuedApp('verified');
    const artifact = await server.upload('verified', 'verified content');
    const opened = await server.call('POST', '/v1/releases', {
      body: { app: 'verified', version: 'v-verified', artifact },
    });
    expect(opened.status).toBe(202);
    const again = await server.call('POST', '/v1/artifacts', {
      body: { app: 'verified', sha256: artifact.sha256, size: 16 },
    });
    expect(again.body).toEqual({ key: artifact.key, sha256: artifact.sha256, alreadyUploaded: true });
  });
});

describe('releases', () => {
  it('opens a release as pending, records who and when, and hands it to the workflow', async () => {
    await queuedApp('opener');
    const deployer = await server.tokenFor('deployer', 'dana@example.com');
    const artifact = await server.upload('opener', 'release one');
    const opened = await server.call('POST', '/v1/releases', {
      token: deployer,
      body: { app: 'opener', version: '1.0.0', artifact, description: 'first cut\nwith notes' },
    });
    expect(opened.status).toBe(202);
    expect(opened.body).toEqual({ id: expect.stringMatching(/^[0-9a-z]{26}$/), status: 'pending' });

    const read = await server.call('GET', `/v1/releases/${opened.body.id}`);
    expect(read.status).toBe(200);
    expect(read.body).toMatchObject({
      id: opened.body.id,
      app: 'opener',
      version: '1.0.0',
      openedBy: 'dana@example.com',
      description: 'first cut\nwith notes',
      artifact: { key: artifact.key, sha256: artifact.sha256, size: 11 },
      config: { name: 'opener' },
    });
    expect(read.body.environments.map((e: { environment: string }) => e.environment)).toEqual(['staging', 'production']);
    expect(read.body.events.slice(0, 2).map((e: { type: string }) => e.type)).toEqual(['release.opened', 'workflow.started']);
    expect(read.body.events[0]).toMatchObject({ actor: 'dana@example.com', data: { sha256: artifact.sha256 } });
    expect(await server.executor.describe(`release:${opened.body.id}`)).toMatchObject({
      machine: 'release',
      input: { releaseId: opened.body.id, app: 'opener' },
    });
  });

  it('refuses a release whose artifact was never uploaded, and records nothing', async () => {
    const before = await releaseCount();
    const digest = sha256('never uploaded');
    const response = await server.call('POST', '/v1/releases', {
      body: {
        app: 'demo',
        version: '2.0.0',
        artifact: { key: `artifacts/demo/${digest}.tar.gz`, sha256: digest },
      },
    });
    expect(response.status).toBe(422);
    expect(response.body.error).toMatchObject({
      code: 'artifact_missing',
      message: expect.stringMatching(/upload it first/),
    });
    expect(await releaseCount()).toBe(before);
  });

  it('refuses a release whose stored bytes do not match the sha256', async () => {
    const before = await releaseCount();
    const claimed = sha256('the real build');
    const ticket = await server.call('POST', '/v1/artifacts', {
      body: { app: 'demo', sha256: claimed, size: 14 },
    });
    await fetch(ticket.body.uploadUrl, {
      method: 'PUT',
      headers: ticket.body.uploadHeaders,
      body: 'a swapped file',
    });
    const response = await server.call('POST', '/v1/releases', {
      body: { app: 'demo', version: '2.0.1', artifact: { key: ticket.body.key, sha256: claimed } },
    });
    expect(response.status).toBe(422);
    expect(response.body.error).toMatchObject({
      code: 'artifact_mismatch',
      details: { expected: claimed, actual: sha256('a swapped file') },
    });
    expect(await releaseCount()).toBe(before);
  });

  it('refuses bad release requests naming the field', async () => {
    const artifact = await server.upload('demo', 'bad requests');
    const cases: [unknown, number, string][] = [
      [{ app: 'demo', version: '1.0 && reboot', artifact }, 400, 'version'],
      [
        { app: 'demo', version: '1', artifact: { ...artifact, key: 'artifacts/demo/../../x' } },
        400,
        'artifact.key',
      ],
      [{ app: 'demo', version: '1', artifact, openedBy: 'someone-else' }, 400, 'openedBy'],
      [{ app: 'DEMO', version: '1', artifact }, 400, 'app'],
    ];
    const before = await releaseCount();
    for (const [body, status, field] of cases) {
      const response = await server.call('POST', '/v1/releases', { body });
      expect(response.status, JSON.stringify(body)).toBe(status);
      expect(response.body.error.details.map((d: { field: string }) => d.field)).toContain(field);
    }
    const unknownApp = await server.call('POST', '/v1/releases', {
      body: {
        app: 'ghost',
        version: '1',
        artifact: { key: artifact.key.replace('/demo/', '/ghost/'), sha256: artifact.sha256 },
      },
    });
    expect(unknownApp.status).toBe(404);
    expect(await releaseCount()).toBe(before);
  });

  it('answers 409 naming the holder when an environment is locked', async () => {
    const artifact = await server.upload('demo', 'locked out');
    const documents = createDocumentClient({
      region: LOCAL_REGION,
      credentials: LOCAL_CREDENTIALS,
      endpoints: { dynamodb: server.endpoints.dynamodb },
    });
    const store = createDynamoReleaseStore(documents, LOCAL_TABLE);
    const leaseUntil = new Date(Date.now() + 60_000).toISOString();
    await store.acquireLock(
      {
        app: 'demo',
        environment: 'production',
        holder: 'holder-release',
        acquiredAt: new Date().toISOString(),
        leaseUntil,
      },
      new Date().toISOString(),
    );
    const locked = await server.call('GET', '/v1/apps/demo');
    expect(locked.body.environments[1].lock).toMatchObject({ holder: 'holder-release' });

    const before = await releaseCount();
    const response = await server.call('POST', '/v1/releases', {
      body: { app: 'demo', version: '3.0.0', artifact },
    });
    expect(response.status).toBe(409);
    expect(response.body.error).toMatchObject({
      code: 'environment_locked',
      details: { environment: 'production', holder: 'holder-release' },
    });
    expect(await releaseCount()).toBe(before);
    await store.releaseLock('demo', 'production', 'holder-release');
    documents.destroy();
  });

  it('lists newest first with a cursor and filters by app and environment', async () => {
    await queuedApp('lister');
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const artifact = await server.upload('lister', `lister ${i}`);
      const opened = await server.call('POST', '/v1/releases', {
        body: { app: 'lister', version: `0.${i}`, artifact },
      });
      ids.push(opened.body.id);
    }
    const first = await server.call('GET', '/v1/releases?app=lister&limit=2');
    expect(first.status).toBe(200);
    expect(first.body.items.map((r: { id: string }) => r.id)).toEqual([ids[2], ids[1]]);
    expect(first.body.items[0].config).toBeUndefined();
    const second = await server.call(
      'GET',
      `/v1/releases?app=lister&limit=2&cursor=${first.body.nextCursor}`,
    );
    expect(second.body.items.map((r: { id: string }) => r.id)).toEqual([ids[0]]);
    expect(second.body.nextCursor).toBeUndefined();

    const byEnv = await server.call('GET', '/v1/releases?app=lister&environment=production');
    expect(byEnv.body.items.map((r: { id: string }) => r.id)).toEqual([ids[2], ids[1], ids[0]]);

    const all = await server.call('GET', '/v1/releases?limit=1');
    expect(all.body.items[0].id).toBe(ids[2]);
  });

  it.each([
    ['/v1/releases?limit=0', 400],
    ['/v1/releases?limit=abc', 400],
    ['/v1/releases?environment=production', 400],
    ['/v1/releases?app=ghost', 404],
    ['/v1/releases?app=demo&cursor=garbage', 400],
    ['/v1/releases?colour=red', 400],
    ['/v1/releases/NOT-AN-ID', 400],
    ['/v1/releases/01zzzzzzzzzzzzzzzzzzzzzzzz', 404],
  ])('GET %s answers %i', async (path, status) => {
    const response = await server.call('GET', path);
    expect(response.status).toBe(status);
    expect(response.body.error.message).toEqual(expect.any(String));
  });
});

describe('routing and hygiene', () => {
  it('answers 404 for unknown routes and 405 for the wrong method', async () => {
    expect((await server.call('GET', '/v2/nothing')).status).toBe(404);
    const wrong = await server.call('DELETE', '/v1/releases');
    expect(wrong.status).toBe(405);
    expect(wrong.body.error.message).toMatch(/takes POST, GET/);
  });

  it('sends no-store JSON with a request id', async () => {
    const response = await server.call('GET', '/v1/apps');
    expect(response.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(response.headers.get('cache-control')).toBe('no-store');
    expect(response.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('writes structured logs that never contain a token or a signed URL', async () => {
    const secret = await server.tokenFor('deployer', 'logcheck@example.com');
    await server.call('GET', '/v1/apps', { token: secret });
    const ticket = await server.call('POST', '/v1/artifacts', {
      body: { app: 'demo', sha256: sha256('log'), size: 3 },
    });
    const signature = new URL(ticket.body.uploadUrl).searchParams.get('X-Amz-Signature')!;
    expect(server.logs.length).toBeGreaterThan(10);
    for (const line of server.logs) {
      const entry = JSON.parse(line);
      expect(entry).toHaveProperty('level');
      expect(line).not.toContain(server.adminToken);
      expect(line).not.toContain(secret);
      expect(line).not.toContain(signature);
    }
    expect(
      server.logs
        .map((l) => JSON.parse(l))
        .filter((e) => e.message === 'request' && e.principal === 'logcheck@example.com'),
    ).toHaveLength(1);
  });
});

describe('durability', () => {
  it('starts, on the next start, a release recorded just before a crash that never got its execution', async () => {
    const first = await startTestServer();
    await first.call('PUT', '/v1/apps/orphan', { body: { ...shopConfigInput, name: 'orphan', queue: true } });
    const artifact = await first.upload('orphan', 'orphaned');
    // The crash: the release is recorded, its workflow never starts.
    first.executor.startRelease = async () => {
      throw new Error('crashed before starting the workflow');
    };
    // The release exists, so the open answers 202: a 500 would make a client that retries open a second release.
    const open = () => first.call('POST', '/v1/releases', { body: { app: 'orphan', version: '1', artifact }, headers: { 'idempotency-key': 'orphan-1' } });
    const opened = await open();
    expect(opened.status).toBe(202);
    const retried = await open();
    expect(retried.status).toBe(202);
    expect(retried.body.id).toBe(opened.body.id);
    const listed = (await first.call('GET', '/v1/releases?app=orphan')).body.items;
    expect(listed).toHaveLength(1);
    const [orphan] = listed;
    expect(orphan).toMatchObject({ id: opened.body.id, status: 'pending' });
    const deferred = (await first.call('GET', `/v1/releases/${orphan.id}`)).body.events.find((e: any) => e.type === 'workflow.start_deferred');
    expect(deferred).toMatchObject({ data: { reason: 'crashed before starting the workflow' } });
    expect(await first.executor.describe(`release:${orphan.id}`)).toBeUndefined();
    await first.stop({ keepData: true });

    const second = await startTestServer(first.dataDir);
    try {
      expect(await second.executor.describe(`release:${orphan.id}`)).toMatchObject({ machine: 'release' });
      const events = (await second.call('GET', `/v1/releases/${orphan.id}`)).body.events;
      expect(events.find((e: any) => e.type === 'workflow.started')).toMatchObject({ data: { recovered: true } });
    } finally {
      await second.stop();
    }
  });

  it('keeps every record, token and the admin token across a restart', async () => {
    const first = await startTestServer();
    const artifact = await first.upload('demo', 'survives restart');
    const deployer = await first.tokenFor('deployer');
    const opened = await first.call('POST', '/v1/releases', {
      body: { app: 'demo', version: '9.9.9', artifact },
    });
    const adminToken = first.adminToken;
    await first.stop({ keepData: true });

    const second = await startTestServer(first.dataDir);
    try {
      expect(second.adminToken).toBe(adminToken);
      expect(second.adminTokenGenerated).toBe(false);
      const read = await second.call('GET', `/v1/releases/${opened.body.id}`, { token: deployer });
      expect(read.status).toBe(200);
      expect(read.body).toMatchObject({
        version: '9.9.9',
        artifact: { sha256: artifact.sha256 },
      });
      const again = await second.call('POST', '/v1/artifacts', {
        body: { app: 'demo', sha256: artifact.sha256, size: 16 },
      });
      expect(again.body.alreadyUploaded).toBe(true);
      expect((await second.call('GET', '/v1/apps/demo')).body.revision).toBe(1);
    } finally {
      await second.stop();
    }
  });
});
