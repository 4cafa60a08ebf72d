import { readFileSync } from 'node:fs';
import { STAGE_NAMES, type StageName, stageModuleName } from '../packages/core/src/stage-table.ts';

/** The ASL files with their `${NameFunctionArn}` placeholders filled in, as the stack deploys them. */
export function renderStateMachine(file: string, functionArns: Record<string, string>): string {
  const text = readFileSync(file, 'utf8');
  return text.replace(/\$\{(\w+)FunctionArn\}/g, (placeholder, name: string) => {
    const arn = functionArns[name];
    if (!arn) throw new Error(`${file} names ${placeholder}, but the stack defines no function ${name}`);
    return arn;
  });
}

/**
 * The stage functions the state machines call, by placeholder name, and their handler files: one
 * Lambda per entry of the stage table, each with the entry point `npm run asl` generates for it.
 */
export const STAGE_HANDLERS = Object.fromEntries(STAGE_NAMES.map((name) => [name, `functions/${stageModuleName(name)}.handler`])) as Record<
  StageName,
  string
>;
