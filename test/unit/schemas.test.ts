import {
  AppConfig,
  artifactKey,
  ListReleasesQuery,
  OpenReleaseRequest,
  parse,
  ValidationError,
} from '@slipway/core';
import { describe, expect, it } from 'vitest';
import { sha256, shopConfigInput } from '../support/fixtures.ts';

function problems(schema: Parameters<typeof parse>[0], input: unknown) {
  try {
    parse(schema, input, 'input');
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    return (error as ValidationError).details;
  }
  throw new Error('expected a validation error');
}

const clone = () => structuredClone(shopConfigInput) as Record<string, any>;

describe('app config', () => {
  it('accepts the config from DESIGN.md and fills in defaults', () => {
    const config = AppConfig.parse(shopConfigInput);
    expect(config.queue).toBe(false);
    expect(config.environments[0]!.bakeSeconds).toBe(0);
    expect(config.environments[1]!.approval).toMatchObject({ forRollback: false, allowSelfApproval: false });
    const minimal = AppConfig.parse({
      name: 'web',
      deployRoot: '/srv/web',
      environments: [{ name: 'prod', targets: { hosts: ['h1'] } }],
    });
    expect(minimal.keepReleases).toBe(5);
    expect(minimal.hooks).toEqual({ postDeploy: '', preRelease: '', postRelease: '', healthCheck: '' });
    expect(minimal.environments[0]!.strategy).toEqual({ type: 'all-at-once' });
  });

  it.each([
    ['name', 'Shop', 'name'],
    ['name', '-shop', 'name'],
    ['name', 'a'.repeat(64), 'name'],
    ['deployRoot', 'srv/shop', 'deployRoot'],
    ['deployRoot', '/srv/../etc', 'deployRoot'],
    ['deployRoot', '/srv/shop;rm -rf /', 'deployRoot'],
    ['deployRoot', '/srv/$(whoami)', 'deployRoot'],
    ['deployRoot', '/', 'deployRoot'],
    ['keepReleases', 1, 'keepReleases'],
    ['keepReleases', 2.5, 'keepReleases'],
  ])('rejects %s = %j naming the field', (field, value, expected) => {
    const config = clone();
    config[field] = value;
    expect(problems(AppConfig, config).map((p) => p.field)).toContain(expected);
  });

  it.each([
    [['../etc/passwd'], 'sharedPaths[0]'],
    [['/etc/passwd'], 'sharedPaths[0]'],
    [['storage', 'a/./b'], 'sharedPaths[1]'],
    [['with space'], 'sharedPaths[0]'],
    [['storage', 'storage'], 'sharedPaths'],
  ])('rejects shared paths %j', (paths, field) => {
    const config = clone();
    config.sharedPaths = paths;
    expect(problems(AppConfig, config).map((p) => p.field)).toContain(field);
  });

  it('rejects hook commands with control characters but keeps quotes and $ for the quoting generator', () => {
    const config = clone();
    config.hooks.postRelease = 'systemctl reload shop\nrm -rf /';
    expect(problems(AppConfig, config)).toEqual([
      { field: 'hooks.postRelease', message: expect.stringMatching(/control characters/) },
    ]);
    config.hooks.postRelease = `echo "it's $HOME" && true`;
    expect(() => AppConfig.parse(config)).not.toThrow();
  });

  it('rejects hostile host ids and tags', () => {
    const config = clone();
    config.environments[0].targets = { hosts: ['ok-1', '../escape', 'a b', 'x;y', 'h1', 'h1'] };
    config.environments[1].targets = { tags: { Role: 'web\u0000' } };
    const fields = problems(AppConfig, config).map((p) => p.field);
    expect(fields).toEqual(
      expect.arrayContaining([
        'environments[0].targets.hosts[1]',
        'environments[0].targets.hosts[2]',
        'environments[0].targets.hosts[3]',
        'environments[1].targets.tags.Role',
      ]),
    );
  });

  it('names unknown fields, bad strategies and impossible approvals', () => {
    const config = clone();
    config.colour = 'blue';
    config.environments[0].strategy = { type: 'rolling', batchSize: '150%' };
    config.environments[1].approval = { approvers: ['lead@example.com'], required: 2 };
    const found = problems(AppConfig, config);
    expect(found).toEqual(
      expect.arrayContaining([
        { field: 'colour', message: 'is not a known field; remove it' },
        expect.objectContaining({ field: 'environments[0].strategy.batchSize' }),
        {
          field: 'environments[1].approval.required',
          message: 'required must not exceed the number of approvers',
        },
      ]),
    );
  });

  it('refuses duplicate environment names and empty pipelines', () => {
    const config = clone();
    config.environments[1].name = 'staging';
    expect(problems(AppConfig, config).map((p) => p.field)).toContain('environments');
    config.environments = [];
    expect(problems(AppConfig, config).map((p) => p.field)).toContain('environments');
  });
});

describe('open release request', () => {
  const sha = sha256('artifact');
  const valid = {
    app: 'shop',
    version: '1.2.3+build.7',
    artifact: { key: artifactKey('shop', sha), sha256: sha },
  };

  it('accepts a content-addressed key and defaults the description', () => {
    expect(OpenReleaseRequest.parse(valid).description).toBe('');
  });

  it.each([
    [{ ...valid, version: '1.0; rm -rf /' }, 'version'],
    [{ ...valid, version: '$(id)' }, 'version'],
    [{ ...valid, version: '../1' }, 'version'],
    [{ ...valid, artifact: { key: artifactKey('other', sha), sha256: sha } }, 'artifact.key'],
    [{ ...valid, artifact: { key: '../../etc/passwd', sha256: sha } }, 'artifact.key'],
    [{ ...valid, artifact: { key: valid.artifact.key, sha256: 'ABC' } }, 'artifact.sha256'],
    [{ ...valid, description: 'bell\u0007' }, 'description'],
    [{ ...valid, extra: true }, 'extra'],
    [{ ...valid, app: 42 }, 'app'],
  ])('rejects %j at %s', (input, field) => {
    expect(problems(OpenReleaseRequest, input).map((p) => p.field)).toContain(field);
  });

  it('allows newlines in the description', () => {
    expect(OpenReleaseRequest.parse({ ...valid, description: 'line one\nline two' }).description).toContain(
      '\n',
    );
  });
});

describe('release list query', () => {
  it('coerces limit and bounds it', () => {
    expect(ListReleasesQuery.parse({ limit: '5' }).limit).toBe(5);
    expect(problems(ListReleasesQuery, { limit: '1000' }).map((p) => p.field)).toEqual(['limit']);
    expect(problems(ListReleasesQuery, { environment: 'prod' }).map((p) => p.field)).toEqual(['environment']);
    expect(problems(ListReleasesQuery, { sort: 'asc' }).map((p) => p.field)).toEqual(['sort']);
  });
});
