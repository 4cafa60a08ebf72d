import { readLocalEnvironment, startDevServer } from '@slipway/local';
import type { Io } from './main.ts';

/** `slipway dev`: the whole of Slipway on 127.0.0.1, until Ctrl-C. */
export async function runDev(env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const config = readLocalEnvironment(env);
  const server = await startDevServer({
    dataDir: config.SLIPWAY_DATA_DIR,
    port: config.PORT,
    logLevel: config.SLIPWAY_LOG_LEVEL,
    ...(config.SLIPWAY_ADMIN_TOKEN ? { adminToken: config.SLIPWAY_ADMIN_TOKEN } : {}),
    ...(config.SLIPWAY_WEBHOOK_SECRET ? { webhookSecret: config.SLIPWAY_WEBHOOK_SECRET } : {}),
    ...(config.SLIPWAY_RETENTION_OUTPUT_DAYS ? { outputRetentionDays: config.SLIPWAY_RETENTION_OUTPUT_DAYS } : {}),
    ...(config.SLIPWAY_SSH_IDENTITY && config.SLIPWAY_SSH_KNOWN_HOSTS
      ? { ssh: { identityFile: config.SLIPWAY_SSH_IDENTITY, knownHostsFile: config.SLIPWAY_SSH_KNOWN_HOSTS } }
      : {}),
  });
  // The banner is for the person at the terminal; stdout carries the JSON logs.
  io.err('');
  io.err(`Slipway is running at ${server.url}/  (dashboard and API)`);
  io.err(`data folder: ${server.dataDir}`);
  if (config.SLIPWAY_ADMIN_TOKEN) {
    io.err('admin token: the value of SLIPWAY_ADMIN_TOKEN');
  } else if (server.adminTokenGenerated) {
    io.err(`admin token (generated now, saved in ${server.dataDir}/admin-token):`);
    io.err(`  ${server.adminToken}`);
  } else {
    io.err(`admin token: saved in ${server.dataDir}/admin-token`);
  }
  io.err(`try: export SLIPWAY_URL=${server.url} SLIPWAY_TOKEN=$(cat ${server.dataDir}/admin-token)`);
  io.err('');

  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await server.close();
  return 0;
}
