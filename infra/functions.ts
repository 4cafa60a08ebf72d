import { type StackRefs, permissions, type Statement } from './permissions';
import { STAGE_HANDLERS } from './definitions';
import { API_FUNCTION, EVENT_HANDLERS, functionEnvironment, LAMBDA_RUNTIME, type SecretName } from './handlers';

/**
 * One Lambda per stage and per callback, each with exactly the statements permissions.ts gives it,
 * the shared environment, and the names (never the values) of the secret parameters it is granted.
 */
export function createFunctions(
  refs: $util.Output<StackRefs>,
  environment: Record<string, $util.Input<string>>,
  secretParameterNames: Record<SecretName, $util.Input<string>>,
) {
  const policyFor = (name: string) =>
    refs.apply((r) =>
      (permissions(r)[name] ?? []).map((statement: Statement) => ({
        actions: statement.actions,
        resources: statement.resources,
        ...(statement.conditions ? { conditions: statement.conditions } : {}),
      })),
    );
  const make = (name: string, handler: string, copyFiles?: { from: string; to: string }[]) =>
    new sst.aws.Function(name, {
      ...LAMBDA_RUNTIME,
      handler,
      environment: functionEnvironment(name, environment, secretParameterNames),
      permissions: policyFor(name),
      ...(copyFiles ? { copyFiles } : {}),
    });

  const stages = Object.fromEntries(Object.entries(STAGE_HANDLERS).map(([name, handler]) => [name, make(name, handler)]));
  const commandStatus = make('CommandStatus', EVENT_HANDLERS.CommandStatus);
  const executionFailed = make('ExecutionFailed', EVENT_HANDLERS.ExecutionFailed);
  const sweep = make('Sweep', EVENT_HANDLERS.Sweep);
  // Only the API carries the dashboard's files (test/bundle proves every function starts with what it has).
  const api = make('Api', API_FUNCTION.handler, [...API_FUNCTION.copyFiles]);
  return { stages, commandStatus, executionFailed, sweep, api };
}
