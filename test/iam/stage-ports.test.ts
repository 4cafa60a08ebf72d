import { STAGE_NAMES, STAGES } from '@slipway/core';
import { describe, expect, it } from 'vitest';
import { permissions } from '../../infra/permissions.ts';
import { STACK_REFS } from '../support/stack-refs.ts';

/**
 * A stage's IAM statements come from the ports its entry in core's stage table declares (`uses`),
 * nothing else: permissions.test.ts proves the calls a full scenario makes stay within them.
 */
const all = permissions(STACK_REFS);
const grants = (fn: string) => all[fn]!.flatMap((statement) => statement.actions.flatMap((action) => statement.resources.map((resource) => `${action} ${resource}`)));
const ARTIFACT_READ = `s3:GetObject ${STACK_REFS.bucketArn}/artifacts/*`;
const MANIFEST_WRITE = `s3:PutObject ${STACK_REFS.bucketArn}/manifests/*`;

describe('stage permissions from the stage table', () => {
  it('gives every stage of the table its own statements', () => {
    for (const name of STAGE_NAMES) expect(all[name], name).toBeDefined();
  });

  it.each(STAGE_NAMES)('%s may send host commands, read artifacts, list hosts and ask for its secret exactly when it says it uses them', (name) => {
    const uses: readonly string[] = STAGES[name].uses;
    const actions = grants(name);
    expect(actions.some((grant) => grant.startsWith('ssm:SendCommand ')), name).toBe(uses.includes('hostCommands'));
    expect(actions.includes(ARTIFACT_READ), name).toBe(uses.includes('artifactDownloads') || uses.includes('artifactManifests'));
    expect(actions.includes(MANIFEST_WRITE), name).toBe(uses.includes('artifactManifests'));
    expect(actions.some((grant) => grant.startsWith('ssm:DescribeInstanceInformation ')), name).toBe(uses.includes('hostInventory') || uses.includes('hostCommands'));
    expect(actions.some((grant) => grant.startsWith('ssm:GetParameter ')), name).toBe(uses.includes('outcomeWebhooks'));
    expect(actions.some((grant) => grant.startsWith('ses:SendEmail ')), name).toBe(uses.includes('mail'));
    expect(actions.some((grant) => grant.startsWith('states:SendTaskSuccess ')), name).toBe(uses.includes('taskCallbacks'));
  });

  it('lets only Watch, which probes analyses, read alarm states, and no other function of the stack', () => {
    const readsAlarms = Object.keys(all).filter((fn) => grants(fn).some((grant) => grant.startsWith('cloudwatch:DescribeAlarms ')));
    expect(readsAlarms).toEqual(['Watch']);
    expect(STAGE_NAMES.filter((name) => (STAGES[name].uses as readonly string[]).includes('alarms'))).toEqual(['Watch']);
  });

  it('lets only Distribute, which signs the download URL, and Prepare, which lists the files, read artifacts', () => {
    expect(STAGE_NAMES.filter((name) => grants(name).includes(ARTIFACT_READ))).toEqual(['Prepare', 'Distribute']);
    expect(STAGE_NAMES.filter((name) => grants(name).includes(MANIFEST_WRITE))).toEqual(['Prepare']);
  });
});
