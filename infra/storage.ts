/**
 * The single table (key layout in packages/aws/src/table.ts) and the artifact bucket.
 * Kept in step with TABLE_DEFINITION by hand until the AWS issue adds a test that compares them.
 */
export const table = new sst.aws.Dynamo('Releases', {
  fields: {
    pk: 'string',
    sk: 'string',
    gsi1pk: 'string',
    gsi1sk: 'string',
    gsi2pk: 'string',
    gsi2sk: 'string',
  },
  primaryIndex: { hashKey: 'pk', rangeKey: 'sk' },
  globalIndexes: {
    gsi1: { hashKey: 'gsi1pk', rangeKey: 'gsi1sk' },
    gsi2: { hashKey: 'gsi2pk', rangeKey: 'gsi2sk' },
  },
});

export const bucket = new sst.aws.Bucket('Artifacts');
