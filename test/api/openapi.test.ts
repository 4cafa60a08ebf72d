import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Validator } from '@seriousme/openapi-schema-validator';
import { type ApiRoute, type ApiServices, apiRoutes, AppConfig, ID_PATTERN } from '@slipway/core';
import { create } from 'tar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { startTestServer, type TestServer } from '../support/dev-server.ts';
import { sha256 } from '../support/fixtures.ts';

let server: TestServer;
let document: any;

beforeAll(async () => {
  server = await startTestServer();
  const response = await server.call('GET', '/openapi.json', { token: null });
  if (response.status !== 200) throw new Error(`GET /openapi.json answered ${response.status}`);
  document = response.body;
});
afterAll(async () => server.stop());

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'];

/** The route table behind the router and the document; only its schemas are used here. */
const table = (): ApiRoute[] => apiRoutes({ ...server.slipway, outbox: { list: async () => [] } } as unknown as ApiServices);

/** The answer has the documented success status, and its body the documented schema. */
function expectDocumented(method: string, path: string, response: { status: number; body: unknown }) {
  const route = table().find((r) => r.method === method && r.path === path);
  expect(route, `${method} ${path} is not in the route table`).toBeDefined();
  expect(response.status, `${method} ${path}: ${JSON.stringify(response.body)}`).toBe(route!.success.status);
  if (route!.success.schema) expect(route!.success.schema.safeParse(response.body).error?.issues ?? [], `${method} ${path}`).toEqual([]);
}

describe('GET /openapi.json', () => {
  it('is a valid OpenAPI 3.1 document, served without a token', async () => {
    const response = await server.call('GET', '/openapi.json', { token: null });
    expect(response.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(document.openapi).toBe('3.1.0');
    const result = await new Validator().validate(structuredClone(document));
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
  });

  it('describes every route the router serves, and nothing else', () => {
    const served = server.slipway.api.routes().map(({ method, path }) => `${method} ${path}`);
    const described = Object.entries(document.paths as Record<string, Record<string, unknown>>).flatMap(([path, item]) =>
      Object.keys(item)
        .filter((key) => METHODS.includes(key))
        .map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(served.length).toBeGreaterThan(15);
    expect([...described].sort()).toEqual([...served].sort());
  });

  it('matches the route table in README.md', async () => {
    const readme = await readFile(join(import.meta.dirname, '../../README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## API reference'), readme.indexOf('## Security model'));
    const listed = [...section.matchAll(/^\| `(GET|PUT|POST|DELETE) ([^`?]+)(?:\?[^`]*)?`/gm)].map(([, method, path]) => `${method} ${path}`);
    const served = server.slipway.api.routes().map(({ method, path }) => `${method} ${path}`);
    expect(section).toContain('/openapi.json');
    expect([...listed].sort()).toEqual([...served].sort());
  });

  it('takes request bodies and parameters from the zod schemas the router validates with', () => {
    const putApp = document.paths['/v1/apps/{app}'].put;
    const { $schema: _dialect, ...appConfig } = z.toJSONSchema(AppConfig, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
    expect(putApp.requestBody.content['application/json'].schema).toEqual(appConfig);
    expect(putApp.parameters).toEqual([
      { name: 'app', in: 'path', required: true, schema: { type: 'string', pattern: ID_PATTERN.source } },
    ]);
    const list = document.paths['/v1/releases'].get;
    expect(list.parameters.map((p: any) => [p.name, p.in, p.required])).toEqual([
      ['app', 'query', false],
      ['environment', 'query', false],
      ['limit', 'query', false],
      ['cursor', 'query', false],
    ]);
    expect(list.parameters[2].schema).toMatchObject({ type: 'integer', minimum: 1, maximum: 100, default: 20 });
  });

  it('gives every token-protected route its errors in the Error shape, and every 201/202 a Location', () => {
    const error = document.components.schemas.Error;
    expect(error.properties.error.required).toEqual(['code', 'message', 'details']);
    let operations = 0;
    for (const [path, item] of Object.entries(document.paths as Record<string, Record<string, any>>)) {
      if (!path.startsWith('/v1/')) continue;
      for (const [method, operation] of Object.entries(item)) {
        operations++;
        expect(operation.security, `${method} ${path}`).toEqual([{ bearerAuth: [] }]);
        for (const status of ['401', '403', '500']) {
          expect(operation.responses[status]?.content['application/json'].schema, `${method} ${path} ${status}`).toEqual({
            $ref: '#/components/schemas/Error',
          });
        }
        if (operation.parameters.length > 0 || operation.requestBody) expect(operation.responses['400'], `${method} ${path}`).toBeDefined();
        for (const status of ['201', '202']) {
          if (operation.responses[status]) expect(operation.responses[status].headers?.location, `${method} ${path}`).toBeDefined();
        }
      }
    }
    expect(operations).toBeGreaterThan(15);
  });
});

describe('documented answers', () => {
  it('are what the routes answer', async () => {
    const bytes = Buffer.from('documented answers');
    const config = { name: 'documented', deployRoot: '/srv/documented', queue: true, environments: [{ name: 'production', targets: { hosts: ['doc-1'] } }] };
    expectDocumented('PUT', '/v1/apps/{app}', await server.call('PUT', '/v1/apps/documented', { body: config }));
    expectDocumented('GET', '/v1/apps/{app}', await server.call('GET', '/v1/apps/documented'));
    expectDocumented('GET', '/v1/apps', await server.call('GET', '/v1/apps'));
    expectDocumented('GET', '/v1/me', await server.call('GET', '/v1/me'));
    const ticket = await server.call('POST', '/v1/artifacts', { body: { app: 'documented', sha256: sha256(bytes), size: bytes.length } });
    expectDocumented('POST', '/v1/artifacts', ticket);
    await fetch(ticket.body.uploadUrl, { method: 'PUT', headers: ticket.body.uploadHeaders, body: bytes });
    expectDocumented('GET', '/v1/artifacts/{app}/{sha256}', await server.call('GET', `/v1/artifacts/documented/${sha256(bytes)}`));
    const opened = await server.call('POST', '/v1/releases', { body: { app: 'documented', version: '1', artifact: { key: ticket.body.key, sha256: sha256(bytes) } } });
    expectDocumented('POST', '/v1/releases', opened);
    await server.waitForEnd(opened.body.id);
    expectDocumented('GET', '/v1/releases', await server.call('GET', '/v1/releases?app=documented'));
    expectDocumented('GET', '/v1/releases/{id}', await server.call('GET', `/v1/releases/${opened.body.id}`));
    expectDocumented('GET', '/v1/releases/{id}/history', await server.call('GET', `/v1/releases/${opened.body.id}/history`));
    expectDocumented('POST', '/v1/tokens', await server.call('POST', '/v1/tokens', { body: { name: 'documented', role: 'viewer', expiresInSeconds: 600 } }));
    expectDocumented('GET', '/v1/tokens', await server.call('GET', '/v1/tokens'));
    expectDocumented('DELETE', '/v1/tokens/{name}', await server.call('DELETE', '/v1/tokens/documented'));
    expectDocumented('GET', '/v1/audit', await server.call('GET', '/v1/audit'));
    expectDocumented('GET', '/v1/outbox', await server.call('GET', '/v1/outbox'));
  });
});

describe('Location on 201 and 202', () => {
  async function tarball(folder: string, content: string) {
    await mkdir(folder, { recursive: true });
    await writeFile(join(folder, 'index.html'), content);
    await create({ gzip: true, file: `${folder}.tar.gz`, cwd: folder, portable: true }, ['index.html']);
    return readFile(`${folder}.tar.gz`);
  }

  it('points an artifact request at the artifact, readable once uploaded', async () => {
    const bytes = Buffer.from('located artifact');
    const ticket = await server.call('POST', '/v1/artifacts', { body: { app: 'demo', sha256: sha256(bytes), size: bytes.length } });
    expect(ticket.status).toBe(201);
    const location = ticket.headers.get('location')!;
    expect(location).toBe(`/v1/artifacts/demo/${sha256(bytes)}`);
    const before = await server.call('GET', location);
    expect(before.status).toBe(422);
    expect(before.body.error.code).toBe('artifact_missing');
    await fetch(ticket.body.uploadUrl, { method: 'PUT', headers: ticket.body.uploadHeaders, body: bytes });
    const after = await server.call('GET', location);
    expect(after.status).toBe(200);
    expect(after.body).toEqual({ key: ticket.body.key, sha256: sha256(bytes), size: bytes.length });
  });

  it('points an opened, a cancelled and a rolled-back release at the release', async () => {
    const hosts = ['loc-1', 'loc-2'];
    for (const host of hosts) await mkdir(join(server.dataDir, 'fleet', host), { recursive: true });
    const stored = await server.call('PUT', '/v1/apps/located', {
      body: {
        name: 'located',
        deployRoot: '/srv/located',
        queue: true,
        environments: [{ name: 'production', targets: { hosts }, strategy: { type: 'all-at-once' } }],
      },
    });
    expect(stored.status).toBe(200);
    const ids: string[] = [];
    for (const version of ['1', '2']) {
      const artifact = await server.upload('located', await tarball(join(server.dataDir, `located-${version}`), `v${version}`));
      const opened = await server.call('POST', '/v1/releases', { body: { app: 'located', version, artifact } });
      expect(opened.status).toBe(202);
      expect(opened.headers.get('location')).toBe(`/v1/releases/${opened.body.id}`);
      expect((await server.waitForEnd(opened.body.id)).status).toBe('succeeded');
      ids.push(opened.body.id);
    }

    const rolledBack = await server.call('POST', '/v1/apps/located/environments/production/rollback', { body: {} });
    expectDocumented('POST', '/v1/apps/{app}/environments/{env}/rollback', rolledBack);
    expect(rolledBack.headers.get('location')).toBe(`/v1/releases/${rolledBack.body.id}`);
    expect((await server.call('GET', rolledBack.headers.get('location')!)).body.rollback).toMatchObject({ target: ids[0] });
    await server.waitForEnd(rolledBack.body.id);

    const artifact = await server.upload('located', await tarball(join(server.dataDir, 'located-3'), 'v3'));
    const third = await server.call('POST', '/v1/releases', { body: { app: 'located', version: '3', artifact } });
    const cancelled = await server.call('POST', `/v1/releases/${third.body.id}/cancel`);
    expectDocumented('POST', '/v1/releases/{id}/cancel', cancelled);
    expect(cancelled.headers.get('location')).toBe(`/v1/releases/${third.body.id}`);
    await server.waitForEnd(third.body.id);
  });
});

describe('error messages name the field and the fix', () => {
  it.each([
    ['GET', '/v1/releases/NOT-AN-ID', 'id'],
    ['GET', '/v1/releases/Upper/history', 'id'],
    ['POST', '/v1/releases/Upper/cancel', 'id'],
    ['PUT', '/v1/apps/Bad_Name', 'app'],
    ['GET', '/v1/apps/Bad_Name', 'app'],
    ['POST', '/v1/apps/demo/environments/Prod!/rollback', 'env'],
    ['DELETE', '/v1/tokens/not%20a%20name', 'name'],
  ])('%s %s names the path parameter %s', async (method, path, parameter) => {
    const response = await server.call(method, path, method === 'PUT' ? { body: {} } : {});
    expect(response.status).toBe(400);
    expect(response.body.error.code).toBe('invalid_request');
    expect(response.body.error.message).toMatch(new RegExp(`^invalid path parameter: ${parameter} must `));
    expect(response.body.error.details).toEqual([{ field: parameter, message: expect.any(String) }]);
  });

  it('tells people the CLI command that fixes an unknown app or token', async () => {
    const app = await server.call('GET', '/v1/apps/ghost');
    expect(app.status).toBe(404);
    expect(app.body.error.message).toMatch(/app ghost does not exist; create it with slipway apply <file>/);
    const token = await server.call('DELETE', '/v1/tokens/nobody');
    expect(token.status).toBe(404);
    expect(token.body.error.message).toMatch(/no token is named nobody; slipway token list shows them/);
  });

  it('answers an unknown route with the API reference, and HEAD on the JSON API as a wrong method', async () => {
    const unknown = await server.call('GET', '/v1/nothing', { token: null });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.message).toBe('no route GET /v1/nothing; see the API reference at /openapi.json');
    expect(unknown.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    const head = await fetch(`${server.url}/v1/apps`, { method: 'HEAD', headers: { authorization: `Bearer ${server.adminToken}` } });
    expect(head.status).toBe(405);
  });
});

describe('approval link pages', () => {
  it('answers HTML without a token, and refuses a form over 16 KiB unread', async () => {
    const unknown = await server.call('GET', '/approvals/no-such-link', { token: null });
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(unknown.headers.get('x-frame-options')).toBe('DENY');
    for (const size of [16 * 1024 + 1, 2 * 1024 * 1024]) {
      const big = await server.call('POST', '/approvals/no-such-link', {
        token: null,
        rawBody: `decision=approve&reason=${'x'.repeat(size)}`,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });
      expect(big.status).toBe(413);
      expect(big.body).toMatch(/too large; nothing was decided/);
    }
  });
});
