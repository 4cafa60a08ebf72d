import {
  createLogger,
  createUlidGenerator,
  generateToken,
  hashToken,
  hasPermission,
  ID_PATTERN,
  isWellFormedToken,
  REDACTED,
} from '@slipway/core';
import { describe, expect, it } from 'vitest';
import { manualClock } from '../support/fixtures.ts';

describe('ids', () => {
  it('are valid ids that sort in creation order, even within one millisecond', () => {
    const clock = manualClock();
    const ids = createUlidGenerator(clock);
    const made: string[] = [];
    for (let i = 0; i < 50; i++) made.push(ids.next());
    clock.advance(1);
    made.push(ids.next());
    for (const id of made) expect(id).toMatch(ID_PATTERN);
    expect([...made].sort()).toEqual(made);
    expect(new Set(made).size).toBe(made.length);
  });

  it('put later times after earlier ones', () => {
    const clock = manualClock('2026-01-01T00:00:00Z');
    const ids = createUlidGenerator(clock);
    const early = ids.next();
    clock.set('2030-06-01T00:00:00Z');
    expect(ids.next() > early).toBe(true);
  });
});

describe('logger', () => {
  it('writes one JSON object a line and redacts secret-looking fields at any depth', () => {
    const lines: string[] = [];
    const logger = createLogger({ service: 'test', write: (line) => lines.push(line) }).child({
      requestId: 'r1',
    });
    logger.info('hello', {
      authorization: 'Bearer slw_secret',
      nested: { taskToken: 'AAAA', uploadUrl: 'https://x/?X-Amz-Signature=abc', keep: 'yes' },
      url: 'http://127.0.0.1:8787',
    });
    expect(lines).toHaveLength(1);
    const entry = JSON.parse(lines[0]!);
    expect(entry).toMatchObject({ level: 'info', service: 'test', message: 'hello', requestId: 'r1' });
    expect(entry.authorization).toBe(REDACTED);
    expect(entry.nested).toEqual({ taskToken: REDACTED, uploadUrl: REDACTED, keep: 'yes' });
    expect(entry.url).toBe('http://127.0.0.1:8787');
    expect(lines[0]).not.toContain('slw_secret');
    expect(lines[0]).not.toContain('AAAA');
  });

  it('scrubs secrets out of any text: approval link ids, API tokens, presigned signatures, in messages, fields and errors', () => {
    const lines: string[] = [];
    const logger = createLogger({ service: 'test', write: (line) => lines.push(line) });
    const linkId = 'Zx81_qW-3kLmNoPqRsTuVwXyZ0123456789abcdefgh';
    const apiToken = 'slw_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_-abcd';
    const presigned = 'http://127.0.0.1:9000/bucket/a.tar.gz?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F20261125&X-Amz-Signature=deadbeefcafe';
    logger.info(`viewed /approvals/${linkId}`, { path: `/approvals/${linkId}`, note: `used ${apiToken}`, fetched: presigned });
    logger.error('failed', { error: new Error(`GET ${presigned} with ${apiToken} failed at /approvals/${linkId}?x=1`) });
    const text = lines.join('\n');
    for (const secret of [linkId, apiToken, 'deadbeefcafe', 'AKIA%2F20261125']) expect(text).not.toContain(secret);
    const first = JSON.parse(lines[0]!);
    expect(first.message).toBe('viewed /approvals/…');
    expect(first.path).toBe('/approvals/…');
    expect(first.fetched).toContain('X-Amz-Algorithm=AWS4-HMAC-SHA256');
    expect(first.fetched).toContain('X-Amz-Signature=…');
  });

  it('drops lines below its level', () => {
    const lines: string[] = [];
    const logger = createLogger({ service: 'test', level: 'warn', write: (line) => lines.push(line) });
    logger.info('quiet');
    logger.error('loud', { error: new Error('boom') });
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!).error).toMatchObject({ name: 'Error', message: 'boom' });
  });
});

describe('auth primitives', () => {
  it('generates well-formed tokens and hashes them to hex', () => {
    const token = generateToken();
    expect(isWellFormedToken(token)).toBe(true);
    expect(hashToken(token)).toMatch(/^[0-9a-f]{64}$/);
    expect(hashToken(token)).not.toBe(hashToken(generateToken()));
  });

  it('grants each role only its own powers', () => {
    expect(hasPermission('viewer', 'read')).toBe(true);
    expect(hasPermission('viewer', 'releases:open')).toBe(false);
    expect(hasPermission('deployer', 'releases:open')).toBe(true);
    expect(hasPermission('deployer', 'releases:approve')).toBe(false);
    expect(hasPermission('approver', 'releases:approve')).toBe(true);
    expect(hasPermission('approver', 'artifacts:write')).toBe(false);
    expect(hasPermission('deployer', 'apps:write')).toBe(false);
    expect(hasPermission('admin', 'apps:write')).toBe(true);
    expect(hasPermission('admin', 'tokens:write')).toBe(true);
  });
});
