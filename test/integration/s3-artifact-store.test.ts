import { createHash, createHmac } from 'node:crypto';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { createS3ArtifactStore } from '@slipway/aws';
import { type ArtifactStore, systemClock } from '@slipway/core';
import { LOCAL_CREDENTIALS } from '@slipway/local';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manualClock, sha256 } from '../support/fixtures.ts';
import { localS3 } from '../support/stand-ins.ts';

let s3: Awaited<ReturnType<typeof localS3>>;
let store: ArtifactStore;

beforeAll(async () => {
  s3 = await localS3();
  store = createS3ArtifactStore(s3.client, s3.bucket, systemClock);
});
afterAll(async () => s3.close());

/** The sha256 of what the store streams back. */
async function hashOf(bytes: Promise<AsyncIterable<Uint8Array>>): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of await bytes) hash.update(chunk);
  return hash.digest('hex');
}

describe('S3 artifact store', () => {
  it('hands out a presigned PUT that uploads, then heads and hashes the stored bytes', async () => {
    const body = Buffer.from('a tarball, honestly');
    const digest = sha256(body);
    const key = `artifacts/shop/${digest}.tar.gz`;
    expect(await store.head(key)).toBeUndefined();

    const upload = await store.presignUpload(key, digest, body.length, 60);
    expect(upload.url).toContain('X-Amz-Signature=');
    expect(upload.headers['x-amz-checksum-sha256']).toBe(Buffer.from(digest, 'hex').toString('base64'));
    expect(new Date(upload.expiresAt).getTime()).toBeGreaterThan(Date.now() + 50_000);

    const response = await fetch(upload.url, { method: 'PUT', headers: upload.headers, body });
    expect(response.status).toBe(200);

    const head = await store.head(key);
    expect(head?.size).toBe(body.length);
    expect(head?.etag).toMatch(/\S/);
    // The local server keeps no checksum (S3 keeps the one the upload carried): the bytes are read.
    expect(await store.storedSha256(key)).toBeUndefined();
    expect(await hashOf(store.read(key))).toBe(digest);
  });

  it('reports the hash of what was really stored, not what was claimed', async () => {
    const claimed = sha256('what I said');
    const key = `artifacts/shop/${claimed}.tar.gz`;
    const upload = await store.presignUpload(key, claimed, 10, 60);
    // The local server does not verify checksums (S3 does); the hash on open is what catches this.
    await fetch(upload.url, { method: 'PUT', headers: upload.headers, body: 'something else' });
    expect(await hashOf(store.read(key))).toBe(sha256('something else'));
  });

  it('hands hosts a download URL that says its own lifetime, and one that has run out is refused', async () => {
    const body = 'fetch me';
    const key = `artifacts/shop/${sha256(body)}.tar.gz`;
    const upload = await store.presignUpload(key, sha256(body), body.length, 60);
    await fetch(upload.url, { method: 'PUT', headers: upload.headers, body });
    const url = new URL(await store.presignDownload(key, 300));
    expect(Number(url.searchParams.get('X-Amz-Expires'))).toBe(300);
    expect(await (await fetch(url)).text()).toBe(body);
    const sixMinutesAgo = manualClock(new Date(Date.now() - 360_000).toISOString());
    const late = await createS3ArtifactStore(s3.client, s3.bucket, sixMinutesAgo).presignDownload(key, 300);
    expect((await fetch(late)).status).toBe(403);
  });

  it('tells hosts to read real S3 with their own role, and a custom endpoint (a stand-in) not at all', async () => {
    // The local stand-in is a custom endpoint a host's aws CLI would never reach: the URL alone.
    expect(await store.locationOf!('artifacts/shop/x.tar.gz')).toEqual({});
    const real = createS3ArtifactStore(new S3Client({ region: 'eu-west-1', credentials: LOCAL_CREDENTIALS }), 'slipway-artifacts', systemClock);
    expect(await real.locationOf!('artifacts/shop/x.tar.gz')).toEqual({ s3Uri: 's3://slipway-artifacts/artifacts/shop/x.tar.gz', region: 'eu-west-1' });
    const told = createS3ArtifactStore(s3.client, s3.bucket, systemClock, { hostsReadBucket: true });
    expect((await told.locationOf!('artifacts/shop/x.tar.gz')).s3Uri).toBe(`s3://${s3.bucket}/artifacts/shop/x.tar.gz`);
  });

  it('refuses an expired upload URL', async () => {
    const digest = sha256('late');
    const anHourAgo = manualClock(new Date(Date.now() - 3_600_000).toISOString());
    const pastStore = createS3ArtifactStore(s3.client, s3.bucket, anHourAgo);
    const upload = await pastStore.presignUpload(`artifacts/shop/${digest}.tar.gz`, digest, 4, 60);
    expect(new Date(upload.expiresAt).getTime()).toBeLessThan(Date.now());
    const response = await fetch(upload.url, { method: 'PUT', headers: upload.headers, body: 'late' });
    expect(response.status).toBe(403);
  });
});

type Verdict = 'accepted' | 'HeadersNotSigned' | 'SignatureDoesNotMatch';

/** RFC 3986 encoding as SigV4 wants it: everything but A-Z a-z 0-9 - _ . ~ */
const sigv4Encode = (text: string) =>
  encodeURIComponent(text).replace(/[!'()*]/g, (char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`);
const hmac = (key: string | Buffer, text: string) => createHmac('sha256', key).update(text, 'utf8').digest();

/**
 * What S3 does with a presigned (query-string SigV4) request, written from AWS's SigV4 reference
 * and independent of the SDK that signed it (re-signing with the SDK's own signer would share its
 * assumptions): an `x-amz-*` header that was not signed is refused (HeadersNotSigned, as in
 * aws/aws-sdk-js#4197), then the signature is computed again over the request as it arrived. The local
 * S3 server checks neither, so this is where the suite sees what real S3 would answer.
 */
function s3Verdict(url: string, method: string, sent: Record<string, string>, secretAccessKey: string): Verdict {
  const parsed = new URL(url);
  const query = parsed.search
    .slice(1)
    .split('&')
    .filter(Boolean)
    .map((pair) => {
      const at = pair.indexOf('=');
      return at < 0 ? [decodeURIComponent(pair), ''] : [decodeURIComponent(pair.slice(0, at)), decodeURIComponent(pair.slice(at + 1))];
    }) as [string, string][];
  const param = (name: string) => query.find(([key]) => key === name)?.[1] ?? '';
  const headers: Record<string, string> = { host: parsed.host };
  for (const [name, value] of Object.entries(sent)) headers[name.toLowerCase()] = value;
  const signedHeaders = param('X-Amz-SignedHeaders').split(';');
  // S3 tolerates x-amz-content-sha256 unsigned; any other x-amz-* header must be in the signed set.
  const unsigned = (name: string) => name.startsWith('x-amz-') && name !== 'x-amz-content-sha256' && !signedHeaders.includes(name);
  if (Object.keys(headers).some(unsigned)) return 'HeadersNotSigned';
  if (signedHeaders.some((name) => headers[name] === undefined)) return 'SignatureDoesNotMatch';

  const canonicalQuery = query
    .filter(([name]) => name !== 'X-Amz-Signature')
    .map(([name, value]) => [sigv4Encode(name), sigv4Encode(value)])
    .sort(([a, x], [b, y]) => (a === b ? (x! < y! ? -1 : 1) : a! < b! ? -1 : 1))
    .map(([name, value]) => `${name}=${value}`)
    .join('&');
  const canonicalUri = parsed.pathname.split('/').map((segment) => sigv4Encode(decodeURIComponent(segment))).join('/');
  const canonicalHeaders = signedHeaders.map((name) => `${name}:${headers[name]!.trim().replace(/\s+/g, ' ')}\n`).join('');
  const canonicalRequest = [method, canonicalUri, canonicalQuery, canonicalHeaders, signedHeaders.join(';'), 'UNSIGNED-PAYLOAD'].join('\n');

  const scope = param('X-Amz-Credential').split('/').slice(1);
  const [day, region, service] = scope as [string, string, string];
  const stringToSign = [
    'AWS4-HMAC-SHA256',
    param('X-Amz-Date'),
    scope.join('/'),
    createHash('sha256').update(canonicalRequest, 'utf8').digest('hex'),
  ].join('\n');
  const signingKey = hmac(hmac(hmac(hmac(`AWS4${secretAccessKey}`, day), region), service), 'aws4_request');
  return hmac(signingKey, stringToSign).toString('hex') === param('X-Amz-Signature') ? 'accepted' : 'SignatureDoesNotMatch';
}

describe('the presigned upload, as real S3 would check it', () => {
  const digest = sha256('signed bytes');
  const key = `artifacts/shop/${digest}.tar.gz`;
  const checksum = Buffer.from(digest, 'hex').toString('base64');
  const secret = LOCAL_CREDENTIALS.secretAccessKey;

  it('signs the checksum as a header instead of hoisting it into the query', async () => {
    const upload = await store.presignUpload(key, digest, 12, 60);
    const query = new URL(upload.url).searchParams;
    expect(query.get('X-Amz-SignedHeaders')?.split(';').sort()).toEqual(['host', 'x-amz-checksum-sha256']);
    expect([...query.keys()].map((name) => name.toLowerCase())).not.toContain('x-amz-checksum-sha256');
    expect(upload.headers).toEqual({ 'x-amz-checksum-sha256': checksum });
  });

  it('is accepted with exactly the headers it hands out, and refused without them or with others', async () => {
    const upload = await store.presignUpload(key, digest, 12, 60);
    expect(s3Verdict(upload.url, 'PUT', upload.headers, secret)).toBe('accepted');
    // Headers S3 does not ask to be signed may come along (the CLI sends content-length).
    expect(s3Verdict(upload.url, 'PUT', { ...upload.headers, 'content-length': '12', 'content-type': 'application/gzip' }, secret)).toBe('accepted');
    expect(s3Verdict(upload.url, 'PUT', {}, secret)).toBe('SignatureDoesNotMatch');
    expect(s3Verdict(upload.url, 'PUT', { 'x-amz-checksum-sha256': Buffer.from(sha256('other'), 'hex').toString('base64') }, secret))
      .toBe('SignatureDoesNotMatch');
    // Leaving the checksum out of the signed set after the fact breaks the signature.
    const stripped = upload.url.replace(/X-Amz-SignedHeaders=[^&]*/, 'X-Amz-SignedHeaders=host');
    expect(s3Verdict(stripped, 'PUT', {}, secret)).toBe('SignatureDoesNotMatch');
    expect(s3Verdict(upload.url, 'PUT', upload.headers, 'another secret')).toBe('SignatureDoesNotMatch');
  });

  it('would have been refused the way it was signed before: the checksum hoisted, the header unsigned', async () => {
    const hoisted = await getSignedUrl(s3.client, new PutObjectCommand({ Bucket: s3.bucket, Key: key, ChecksumSHA256: checksum }), {
      expiresIn: 60,
      signableHeaders: new Set(['x-amz-checksum-sha256']),
    });
    expect(new URL(hoisted).searchParams.get('X-Amz-SignedHeaders')).toBe('host');
    // The verdict above is not merely a strict checker: the old URL alone does verify...
    expect(s3Verdict(hoisted, 'PUT', {}, secret)).toBe('accepted');
    // ...but the CLI sends the checksum as a header, which S3 refuses unsigned.
    expect(s3Verdict(hoisted, 'PUT', { 'x-amz-checksum-sha256': checksum }, secret)).toBe('HeadersNotSigned');
  });

  it('still uploads to the local S3 with the signed header', async () => {
    const body = Buffer.from('signed bytes');
    const upload = await store.presignUpload(key, digest, body.length, 60);
    const response = await fetch(upload.url, { method: 'PUT', headers: upload.headers, body });
    expect(response.status).toBe(200);
    expect(await hashOf(store.read(key))).toBe(digest);
  });
});
