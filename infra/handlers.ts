/**
 * What each function's package is made of, besides the stages (infra/definitions.ts): its handler
 * and the files copied next to its bundle. A plain module (no SST globals, no imports) so the bundle
 * test starts every function the stack deploys from this very list.
 */

/** Every Lambda runs on this; SST derives the esbuild target from `runtime` (nodejs22.x: es2023). */
export const LAMBDA_RUNTIME = { runtime: 'nodejs22.x', architecture: 'arm64', timeout: '60 seconds', memory: '512 MB' } as const;

/** The functions EventBridge invokes: SSM command status, failed executions, the schedule. */
export const EVENT_HANDLERS = {
  CommandStatus: 'functions/command-status.handler',
  ExecutionFailed: 'functions/execution-failed.handler',
  Sweep: 'functions/sweep.handler',
} as const;

/**
 * The HTTP API. The dashboard's files sit next to its bundle (SST copies `to` relative to the
 * package root, where `bundle.mjs` is); it reads each on the first request for it. No other
 * function carries or reads them.
 */
export const API_FUNCTION = {
  handler: 'functions/api.handler',
  copyFiles: ['index.html', 'dashboard.js', 'dashboard.css'].map((file) => ({ from: `packages/dashboard/src/${file}`, to: file })),
} as const;
