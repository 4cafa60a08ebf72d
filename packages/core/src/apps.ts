import { type AuditLog, diffConfig } from './audit.ts';
import type { Principal } from './auth.ts';
import { type FieldProblem, NotFoundError, ValidationError } from './errors.ts';
import type { Clock } from './ids.ts';
import type { ReleaseStore, StoredApp } from './ports.ts';
import type { EnvironmentLive, EnvironmentLock } from './release.ts';
import { AppConfig, AppName, parse } from './schemas.ts';

export interface EnvironmentView {
  name: string;
  live: EnvironmentLive['liveRelease'] | null;
  retained: EnvironmentLive['retained'];
  lock: EnvironmentLock | null;
}

export interface AppView extends StoredApp {
  environments: EnvironmentView[];
}

export interface AppDeps {
  store: ReleaseStore;
  clock: Clock;
  audit: AuditLog;
  /**
   * Problems with targets this runtime cannot reach (SSH targets on AWS, or on a local server with
   * no SSH key): a config naming them is refused when applied, not half-way through a release.
   */
  refuseTargets?: (config: AppConfig) => FieldProblem[];
}

export function createAppService({ store, clock, audit, refuseTargets }: AppDeps) {
  async function requireApp(name: string): Promise<StoredApp> {
    const app = await store.getApp(parse(AppName, name, 'app name'));
    if (!app) throw new NotFoundError(`app ${name} does not exist; create it with slipway apply <file>, from a config file that names it`);
    return app;
  }

  return {
    requireApp,

    async put(name: string, body: unknown, actor: Principal): Promise<StoredApp> {
      const appName = parse(AppName, name, 'app name');
      const config = parse(AppConfig, body, 'app config');
      if (config.name !== appName) {
        throw new ValidationError(`the config names app ${config.name} but the URL names ${appName}`, [
          { field: 'name', message: `must equal the app in the URL (${appName})` },
        ]);
      }
      const unreachable = refuseTargets?.(config) ?? [];
      if (unreachable.length > 0) {
        throw new ValidationError(`invalid app config: ${unreachable[0]!.field} ${unreachable[0]!.message}`, unreachable);
      }
      const before = await store.getApp(appName);
      const stored = await store.putApp(config, actor.name, clock.now().toISOString());
      // Against what this write read; a write in between shows as a revision gap.
      await audit.record('app.config_changed', actor.name, `apps/${appName}`, {
        revision: stored.revision,
        ...(before ? { previousRevision: before.revision } : { created: true }),
        changed: diffConfig(before?.config, stored.config),
      });
      return stored;
    },

    async view(name: string): Promise<AppView> {
      const app = await requireApp(name);
      const now = clock.now().toISOString();
      const environments = await Promise.all(
        app.config.environments.map(async (env): Promise<EnvironmentView> => {
          const [live, lock] = await Promise.all([
            store.getEnvironmentLive(app.config.name, env.name),
            store.getLock(app.config.name, env.name),
          ]);
          return {
            name: env.name,
            live: live?.liveRelease ?? null,
            retained: live?.retained ?? [],
            lock: lock && lock.leaseUntil > now ? lock : null,
          };
        }),
      );
      return { ...app, environments };
    },

    list(): Promise<string[]> {
      return store.listApps();
    },
  };
}
export type AppService = ReturnType<typeof createAppService>;
