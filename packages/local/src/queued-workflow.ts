import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Clock, ReleaseExecutionInput, Workflow } from '@slipway/core';

export interface QueuedExecution extends ReleaseExecutionInput {
  executionId: string;
  status: 'queued';
  queuedAt: string;
}

/**
 * The local Workflow until the durable ASL executor lands: each start is written, atomically and
 * once per release id, to `<dataDir>/executions/<releaseId>.json`, where the executor will pick it up.
 * Nothing runs yet, and nothing pretends to: the release stays `pending`.
 */
export function createQueuedWorkflow(
  directory: string,
  clock: Clock,
): Workflow & {
  list(): Promise<QueuedExecution[]>;
} {
  const fileOf = (releaseId: string) => join(directory, `${releaseId}.json`);
  return {
    async startRelease(input) {
      await mkdir(directory, { recursive: true });
      const execution: QueuedExecution = {
        ...input,
        executionId: `local:release:${input.releaseId}`,
        status: 'queued',
        queuedAt: clock.now().toISOString(),
      };
      const temporary = `${fileOf(input.releaseId)}.tmp`;
      try {
        const existing = JSON.parse(await readFile(fileOf(input.releaseId), 'utf8')) as QueuedExecution;
        return { executionId: existing.executionId };
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
      await writeFile(temporary, JSON.stringify(execution, null, 2));
      await rename(temporary, fileOf(input.releaseId));
      return { executionId: execution.executionId };
    },

    async list() {
      const names = await readdir(directory).catch(() => [] as string[]);
      const files = names.filter((name) => name.endsWith('.json')).sort();
      return Promise.all(
        files.map(
          async (name) => JSON.parse(await readFile(join(directory, name), 'utf8')) as QueuedExecution,
        ),
      );
    },
  };
}
