import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { createDocumentClient } from '@slipway/aws';
import { LOCAL_CREDENTIALS, LOCAL_REGION, LOCAL_TABLE } from '@slipway/local';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/dev-server.ts';
import { scenario } from '../support/scenario.ts';

/**
 * No secret in any log line: a whole approval flow, a release and an API token's life run at debug
 * level, then the whole log is searched for every secret the run handed out or kept.
 */
let server: TestServer;
const s = scenario(() => server);

beforeAll(async () => {
  server = await startTestServer(undefined, { logLevel: 'debug' });
});
afterAll(async () => server.stop());

/** Every string value under a key that names a token, anywhere in the local table. */
async function storedTaskTokens(): Promise<string[]> {
  const endpoints = { dynamodb: server.endpoints.dynamodb };
  const documents = createDocumentClient({ region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS, endpoints });
  const found = new Set<string>();
  const visit = (value: unknown, key = '') => {
    if (typeof value === 'string' && /token/i.test(key) && value.length >= 20) found.add(value);
    else if (value && typeof value === 'object') for (const [inner, child] of Object.entries(value)) visit(child, inner);
  };
  let start: Record<string, unknown> | undefined;
  do {
    const page = await documents.send(new ScanCommand({ TableName: LOCAL_TABLE, ExclusiveStartKey: start }));
    for (const item of page.Items ?? []) visit(item);
    start = page.LastEvaluatedKey;
  } while (start);
  documents.destroy();
  return [...found];
}

describe('secrets and the log', () => {
  it('no API token, approval link, task token, presigned URL or key reaches a log line', async () => {
    const secrets: Record<string, string> = { 'admin token': server.adminToken };
    // A webhook receiver: each delivery's signature is a secret too.
    const signatures: string[] = [];
    const receiver = createServer((request, response) => {
      signatures.push(String(request.headers['x-slipway-signature'] ?? ''));
      request.resume().on('end', () => response.writeHead(204).end());
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    await s.app({
      name: 'quiet',
      deployRoot: '/srv/quiet',
      webhookUrl: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`,
      environments: [{ name: 'production', targets: { hosts: ['quiet-1'] }, approval: { approvers: ['lead@example.com'] } }],
    });

    // A deployer's token: made, used to upload and open.
    const deployer = await server.tokenFor('deployer', 'dev@example.com');
    secrets['deployer token'] = deployer;
    const bytes = Buffer.from('quiet release');
    const { sha256 } = await server.upload('quiet', bytes);
    const ticket = await server.call('POST', '/v1/artifacts', { token: deployer, body: { app: 'quiet', sha256: '0'.repeat(64), size: 10 } });
    expect(ticket.status).toBe(201);
    secrets['presigned upload url'] = ticket.body.uploadUrl;
    secrets['presigned signature'] = new URL(ticket.body.uploadUrl).searchParams.get('X-Amz-Signature')!;
    await fetch(ticket.body.uploadUrl, { method: 'PUT', headers: ticket.body.uploadHeaders, body: 'not the right bytes' });
    const artifact = await s.tarball('quiet', { 'index.html': 'quiet' });
    const opened = await server.call('POST', '/v1/releases', { token: deployer, body: { app: 'quiet', version: '1.0.0', artifact } });
    expect(opened.status, JSON.stringify(opened.body)).toBe(202);
    const id = opened.body.id as string;
    expect(sha256).toMatch(/^[0-9a-f]{64}$/);

    // The approval flow: the link viewed, a tampered link tried, then the decision.
    await s.waitForGate(id, 'production');
    const link = Object.values(await s.links(id))[0]!;
    secrets['approval link id'] = new URL(link).pathname.split('/').pop()!;
    await fetch(link);
    await fetch(`${link.slice(0, -2)}xx`);
    expect((await s.decide(link, 'approve')).status).toBe(200);
    await fetch(link, { method: 'POST', body: 'decision=approve' });
    expect((await s.waitForEnd(id)).status).toBe('succeeded');
    await s.waitFor(id, (r) => r.events.some((e: any) => e.type === 'notification.webhook'), 'delivered its webhook');
    receiver.close();
    expect(signatures).toHaveLength(1);
    secrets['webhook signature'] = signatures[0]!;

    // A bad token and a well-formed unknown one, both refused.
    await server.call('GET', '/v1/apps', { token: `${deployer}x` });
    await server.call('GET', '/v1/apps', { token: 'slw_unknownunknownunknownunknown' });

    // A token's life: made with an expiry, listed, used, revoked, refused.
    const created = await server.call('POST', '/v1/tokens', { body: { name: 'ci@example.com', role: 'viewer', expiresInSeconds: 3600 } });
    expect(created.status).toBe(201);
    secrets['short-lived token'] = created.body.token;
    expect((await server.call('GET', '/v1/apps', { token: created.body.token })).status).toBe(200);
    expect(JSON.stringify((await server.call('GET', '/v1/tokens')).body)).not.toContain(created.body.token);
    expect((await server.call('DELETE', '/v1/tokens/ci@example.com')).status).toBe(204);
    const refused = await server.call('GET', '/v1/apps', { token: created.body.token });
    expect(refused.status).toBe(401);
    expect(refused.body.error.message).toContain('unknown or expired token');

    for (const [index, token] of (await storedTaskTokens()).entries()) secrets[`stored token ${index}`] = token;
    expect(Object.keys(secrets).filter((name) => name.startsWith('stored token')).length).toBeGreaterThanOrEqual(3);
    secrets['signing key'] = (await readFile(join(server.dataDir, 'signing-key'), 'utf8')).trim();
    secrets['webhook secret'] = (await readFile(join(server.dataDir, 'webhook-secret'), 'utf8')).trim();

    const log = server.logs.join('\n');
    expect(log).toContain('"path":"/approvals/…"');
    for (const [name, secret] of Object.entries(secrets)) {
      expect(secret.length, name).toBeGreaterThanOrEqual(16);
      expect(log.includes(secret), `${name} appears in the log`).toBe(false);
    }
  });
});
