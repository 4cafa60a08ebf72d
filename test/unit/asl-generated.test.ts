import { readFileSync } from 'node:fs';
import { STAGE_NAMES, STAGES, STATE_MACHINES, stageModuleName } from '@slipway/core';
import { describe, expect, it } from 'vitest';
import { generatedFiles, generatedStageFilesOnDisk, renderAsl } from '../../scripts/asl.ts';

/**
 * The state machines and the stage entry points are generated from core's stage table and checked
 * in (reviewers and the AWS console read plain ASL). These fail when the committed files are not
 * what the table generates.
 */
const FIX = 'run `npm run asl` and commit what it writes';
const files = generatedFiles();

describe('files generated from the stage table', () => {
  it.each(Object.keys(files))('%s is what the table generates', (file) => {
    let committed: string | undefined;
    try {
      committed = readFileSync(file, 'utf8');
    } catch {
      committed = undefined;
    }
    expect(committed, `${file} is missing: ${FIX}`).toBeDefined();
    expect(committed, `${file} differs from what packages/core/src/stage-table.ts generates: ${FIX}`).toBe(files[file]);
  });

  it('leaves no generated stage file behind for a stage the table no longer has', () => {
    const expected = Object.keys(files).filter((file) => file.startsWith('functions/'));
    expect(generatedStageFilesOnDisk().sort(), FIX).toEqual(expected.sort());
  });

  it('is byte-stable: the same machine gives the same bytes whatever order its fields were built in', () => {
    const machine = STATE_MACHINES.release();
    // Every field in reverse order, except the states of a `States` object, which keep the flow's order.
    const reversed = (value: unknown, keepOrder = false): unknown => {
      if (Array.isArray(value)) return value.map((item) => reversed(item));
      if (value === null || typeof value !== 'object') return value;
      const entries = Object.entries(value);
      return Object.fromEntries((keepOrder ? entries : entries.reverse()).map(([key, item]) => [key, reversed(item, key === 'States')]));
    };
    const text = renderAsl(machine);
    expect(renderAsl(STATE_MACHINES.release())).toBe(text);
    expect(JSON.stringify(reversed(machine))).not.toBe(JSON.stringify(machine));
    expect(renderAsl(reversed(machine))).toBe(text);
    expect(text.endsWith('}\n')).toBe(true);
    expect(text.split('\n')[1]).toMatch(/^ {2}"Comment"/);
  });

  it('gives every stage of the table a state in the release machine, with its timeout, heartbeat, retry and kind of task', () => {
    const states = new Map<string, Record<string, any>>();
    const collect = (all: Record<string, Record<string, any>>) => {
      for (const [name, state] of Object.entries(all)) {
        states.set(name, state);
        if (state.ItemProcessor) collect(state.ItemProcessor.States);
      }
    };
    collect(STATE_MACHINES.release().States as Record<string, Record<string, any>>);
    for (const name of STAGE_NAMES) {
      const spec = STAGES[name];
      const state = states.get(name);
      expect(state, `${name} has no state`).toBeDefined();
      expect(state!.TimeoutSeconds, name).toBe(spec.timeoutSeconds);
      expect(state!.HeartbeatSeconds, name).toBe('heartbeatSeconds' in spec ? spec.heartbeatSeconds : undefined);
      expect(state!.Retry, name).toEqual(spec.retry);
      const placeholder = `\${${name}FunctionArn}`;
      if (spec.callback) expect(state!).toMatchObject({ Resource: 'arn:aws:states:::lambda:invoke.waitForTaskToken', Parameters: { FunctionName: placeholder } });
      else expect(state!.Resource, name).toBe(placeholder);
      // The state hands the stage exactly its input's fields.
      const handed = Object.keys(spec.callback ? state!.Parameters.Payload : state!.Parameters).map((key) => key.replace(/\.\$$/, ''));
      expect(handed.sort(), name).toEqual(Object.keys(spec.input.shape).sort());
    }
  });

  it('names each stage\'s entry point after it, as the stack and the local executor find it', () => {
    expect(stageModuleName('EnterEnvironment')).toBe('enter-environment');
    expect(stageModuleName('Prepare')).toBe('prepare');
    for (const name of STAGE_NAMES) expect(files[`functions/${stageModuleName(name)}.ts`], name).toContain(`stageFunction('${name}')`);
  });
});
