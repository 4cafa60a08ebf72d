import { CommanderError } from 'commander';
import { ApiError } from './client.ts';
import type { Io } from './output.ts';
import { createProgram } from './program.ts';

export { packDirectory } from './pack.ts';
export type { Io } from './output.ts';
export { createProgram, VERSION } from './program.ts';

/**
 * Runs one slipway command and returns its exit code: 0 success; 1 the API refused, the release
 * did not succeed or something failed on the way; 2 a usage error (unknown command or flag, a
 * missing or malformed value, an extra argument), always naming what to fix.
 */
export async function main(argv: string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  const context = { env, io, exitCode: 0 };
  const program = createProgram(context);
  // `slipway help release open` is `slipway release open --help`, at any depth.
  const args = argv[0] === 'help' ? [...argv.slice(1), '--help'] : argv;
  try {
    await program.parseAsync(args, { from: 'user' });
    return context.exitCode;
  } catch (error) {
    // Commander has already printed the help, the version or the usage error (with a suggestion).
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    io.err(`slipway: ${(error as Error).message}`);
    if (error instanceof ApiError && Array.isArray(error.details)) {
      for (const problem of error.details as { field: string; message: string }[]) io.err(`  ${problem.field}: ${problem.message}`);
    }
    return 1;
  }
}
