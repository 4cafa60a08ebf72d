import { type StackRefs, permissions, type Statement } from './permissions';
import { STAGE_HANDLERS } from './definitions';

const runtime = { runtime: 'nodejs22.x', architecture: 'arm64', timeout: '60 seconds', memory: '512 MB' } as const;

/** One Lambda per stage and per callback, each with exactly the statements permissions.ts gives it. */
export function createFunctions(refs: $util.Output<StackRefs>, environment: Record<string, $util.Input<string>>) {
  const policyFor = (name: string) =>
    refs.apply((r) =>
      (permissions(r)[name] ?? []).map((statement: Statement) => ({
        actions: statement.actions,
        resources: statement.resources,
        ...(statement.conditions ? { conditions: statement.conditions } : {}),
      })),
    );
  const make = (name: string, handler: string) =>
    new sst.aws.Function(name, { ...runtime, handler, environment, permissions: policyFor(name) });

  const stages = Object.fromEntries(Object.entries(STAGE_HANDLERS).map(([name, handler]) => [name, make(name, handler)]));
  const commandStatus = make('CommandStatus', 'functions/command-status.handler');
  const executionFailed = make('ExecutionFailed', 'functions/execution-failed.handler');
  const sweep = make('Sweep', 'functions/sweep.handler');
  const api = new sst.aws.Function('Api', {
    ...runtime,
    handler: 'functions/api.handler',
    environment,
    permissions: policyFor('Api'),
    // The dashboard's files are read next to the bundle at run time.
    copyFiles: ['index.html', 'dashboard.js', 'dashboard.css'].map((file) => ({ from: `packages/dashboard/src/${file}`, to: file })),
  });
  return { stages, commandStatus, executionFailed, sweep, api };
}
