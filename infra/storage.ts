/**
 * The single table (key layout in packages/aws/src/table.ts) and the bucket for artifacts and host
 * command output.
 */
export const table = new sst.aws.Dynamo('Releases', {
  fields: { pk: 'string', sk: 'string', gsi1pk: 'string', gsi1sk: 'string', gsi2pk: 'string', gsi2sk: 'string' },
  primaryIndex: { hashKey: 'pk', rangeKey: 'sk' },
  globalIndexes: {
    gsi1: { hashKey: 'gsi1pk', rangeKey: 'gsi1sk' },
    gsi2: { hashKey: 'gsi2pk', rangeKey: 'gsi2sk' },
  },
  // Items that should go away by themselves (expired tokens) carry an epoch-seconds `ttl`.
  ttl: 'ttl',
  deletionProtection: $app.stage === 'prod',
  transform: { table: { pointInTimeRecovery: { enabled: true }, serverSideEncryption: { enabled: true } } },
});

export const bucket = new sst.aws.Bucket('Artifacts', {
  versioning: true,
  enforceHttps: true,
  lifecycle: [{ id: 'command-output', prefix: 'command-output/', expiresIn: '30 days' }],
});

// Encrypted at rest, said explicitly (S3 default since 2023, but a policy should not rely on it).
new aws.s3.BucketServerSideEncryptionConfiguration('ArtifactsEncryption', {
  bucket: bucket.name,
  rules: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: 'AES256' } }],
});
