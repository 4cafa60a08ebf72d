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

/**
 * The bucket is versioned, so an overwritten or deleted object stays as a noncurrent version: those
 * go 30 days later, as do the delete markers left once none remains, and an upload that never
 * completed stops costing after 7 days. SST's `lifecycle` rules know only current-object expiry,
 * so this rule is added to the lifecycle configuration SST makes from them.
 */
const OLD_VERSIONS_AND_UPLOADS = {
  id: 'noncurrent-versions-and-incomplete-uploads',
  status: 'Enabled',
  filter: {},
  noncurrentVersionExpiration: { noncurrentDays: 30 },
  expiration: { expiredObjectDeleteMarker: true },
  abortIncompleteMultipartUpload: { daysAfterInitiation: 7 },
};

export const bucket = new sst.aws.Bucket('Artifacts', {
  versioning: true,
  enforceHttps: true,
  lifecycle: [{ id: 'command-output', prefix: 'command-output/', expiresIn: '30 days' }],
  transform: {
    lifecycle: (args) => {
      args.rules = $output(args.rules).apply((rules) => [...(rules ?? []), OLD_VERSIONS_AND_UPLOADS]);
    },
  },
});

// Encrypted at rest, said explicitly (S3 default since 2023, but a policy should not rely on it).
new aws.s3.BucketServerSideEncryptionConfiguration('ArtifactsEncryption', {
  bucket: bucket.name,
  rules: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: 'AES256' } }],
});

/**
 * Run Command output as it is printed (SendCommand's CloudWatchOutputConfig): what the API follows
 * for live host output. Kept as long as the bucket keeps the whole output.
 */
export const commandOutputLogs = new aws.cloudwatch.LogGroup('CommandOutput', {
  name: `/slipway/${$app.name}-${$app.stage}/command-output`,
  retentionInDays: 30,
});
