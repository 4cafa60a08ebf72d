import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { ForbiddenError, UnauthorizedError } from './errors.ts';
import type { Clock } from './ids.ts';
import type { TokenStore } from './ports.ts';
import {
  type CreateTokenRequest,
  CreateTokenRequest as CreateTokenSchema,
  parse,
  type Role,
} from './schemas.ts';

export interface Principal {
  name: string;
  role: Role;
}

const EVERYONE: readonly Role[] = ['viewer', 'deployer', 'approver', 'admin'];

/** What each role may do. Roles are not a ladder: an approver cannot deploy, a deployer cannot approve. */
export const PERMISSIONS = {
  read: EVERYONE,
  'apps:write': ['admin'],
  'artifacts:write': ['deployer', 'admin'],
  'releases:open': ['deployer', 'admin'],
  'releases:approve': ['approver', 'admin'],
  'releases:rollback': ['deployer', 'admin'],
  'releases:cancel': ['deployer', 'admin'],
  'tokens:write': ['admin'],
} as const satisfies Record<string, readonly Role[]>;
export type Permission = keyof typeof PERMISSIONS;

const TOKEN_PATTERN = /^[A-Za-z0-9_-]{16,256}$/;

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export function generateToken(): string {
  return `slw_${randomBytes(32).toString('base64url')}`;
}

export function isWellFormedToken(token: string): boolean {
  return TOKEN_PATTERN.test(token);
}

export function hasPermission(role: Role, permission: Permission): boolean {
  return (PERMISSIONS[permission] as readonly Role[]).includes(role);
}

export interface AuthDeps {
  tokens: TokenStore;
  clock: Clock;
}

export function createAuthService({ tokens, clock }: AuthDeps) {
  return {
    async authenticate(authorization: string | undefined): Promise<Principal> {
      if (!authorization) {
        throw new UnauthorizedError('send an API token as "Authorization: Bearer <token>"');
      }
      const match = /^Bearer (\S+)$/i.exec(authorization.trim());
      if (!match || !isWellFormedToken(match[1]!)) {
        throw new UnauthorizedError('the Authorization header must be "Bearer <token>"');
      }
      const hash = hashToken(match[1]!);
      const stored = await tokens.getToken(hash);
      // The lookup is by hash, so the comparison below is a formality; it keeps timing uniform anyway.
      if (!stored || !timingSafeEqual(Buffer.from(hash), Buffer.from(hashToken(match[1]!)))) {
        throw new UnauthorizedError('this API token is not known; ask an admin for a valid one');
      }
      return { name: stored.name, role: stored.role };
    },

    authorize(principal: Principal, permission: Permission): void {
      if (!hasPermission(principal.role, permission)) {
        const allowed = PERMISSIONS[permission].join(' or ');
        throw new ForbiddenError(`${principal.name} has role ${principal.role}; this needs role ${allowed}`);
      }
    },

    async createToken(body: unknown, actor: Principal): Promise<{ token: string } & CreateTokenRequest> {
      const request = parse(CreateTokenSchema, body, 'token request');
      const token = generateToken();
      await tokens.putToken(hashToken(token), {
        name: request.name,
        role: request.role,
        createdAt: clock.now().toISOString(),
        createdBy: actor.name,
      });
      return { token, ...request };
    },

    /** Stores the bootstrap admin token if it is not there yet; an existing record is left as it is. */
    async ensureAdminToken(token: string): Promise<void> {
      await tokens.putToken(
        hashToken(token),
        { name: 'admin', role: 'admin', createdAt: clock.now().toISOString(), createdBy: 'bootstrap' },
        { onlyIfAbsent: true },
      );
    },
  };
}
export type AuthService = ReturnType<typeof createAuthService>;
