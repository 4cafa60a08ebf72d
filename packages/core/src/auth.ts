import { createHash, randomBytes } from 'node:crypto';
import type { AuditLog } from './audit.ts';
import { ConflictError, ForbiddenError, NotFoundError, UnauthorizedError } from './errors.ts';
import type { Clock } from './ids.ts';
import type { Logger } from './logger.ts';
import type { StoredToken, TokenStore } from './ports.ts';
import { CreateTokenRequest, parse, PrincipalName, type Role } from './schemas.ts';

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
  /** Going on from a canary's pause: whoever deploys, or whoever would approve. */
  'releases:promote': ['deployer', 'approver', 'admin'],
  /** A scan runs a (read-only) command on every host of an environment. */
  'hosts:scan': ['deployer', 'admin'],
  'tokens:read': ['admin'],
  'tokens:write': ['admin'],
  'audit:read': ['admin'],
  /** The local outbox holds approvers' mails, whose personal links decide approvals: credentials. */
  'outbox:read': ['admin'],
} as const satisfies Record<string, readonly Role[]>;
export type Permission = keyof typeof PERMISSIONS;

const TOKEN_PATTERN = /^[A-Za-z0-9_-]{16,256}$/;

/** The bootstrap admin token's name: set up from configuration, never through the API. */
export const BOOTSTRAP_TOKEN_NAME = 'admin';

/** `lastUsedAt` is written at most this often per token, not on every request. */
export const TOKEN_TOUCH_INTERVAL_MS = 60_000;

/** One answer for every token that is well-formed but not good: never existed, expired or revoked. */
export const UNKNOWN_TOKEN_MESSAGE = 'unknown or expired token; ask an admin for a valid one';

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

/** What GET /v1/tokens shows of a token: never the secret, never its hash. */
export interface TokenView {
  name: string;
  role: Role;
  createdAt: string;
  createdBy: string;
  expiresAt?: string;
  lastUsedAt?: string;
}

export interface CreatedToken {
  name: string;
  role: Role;
  /** The secret, shown this once. */
  token: string;
  createdAt: string;
  expiresAt?: string;
}

function view({ name, role, createdAt, createdBy, expiresAt, lastUsedAt }: StoredToken): TokenView {
  return {
    name,
    role,
    createdAt,
    createdBy,
    ...(expiresAt ? { expiresAt } : {}),
    ...(lastUsedAt ? { lastUsedAt } : {}),
  };
}

export interface AuthDeps {
  tokens: TokenStore;
  clock: Clock;
  audit: AuditLog;
  logger: Logger;
}

export function createAuthService({ tokens, clock, audit, logger }: AuthDeps) {
  const isLive = (token: StoredToken, now: Date) => !token.revokedAt && (!token.expiresAt || token.expiresAt > now.toISOString());

  return {
    async authenticate(authorization: string | undefined): Promise<Principal> {
      if (!authorization) {
        throw new UnauthorizedError('send an API token as "Authorization: Bearer <token>"');
      }
      const match = /^Bearer +(\S+)$/i.exec(authorization.trim());
      if (!match) throw new UnauthorizedError('the Authorization header must be "Bearer <token>"');
      // A token of another shape was never one of ours: the same answer as any other unknown token.
      if (!isWellFormedToken(match[1]!)) throw new UnauthorizedError(UNKNOWN_TOKEN_MESSAGE);
      const hash = hashToken(match[1]!);
      const stored = await tokens.getToken(hash);
      const now = clock.now();
      if (!stored || !isLive(stored, now)) throw new UnauthorizedError(UNKNOWN_TOKEN_MESSAGE);

      // At most one write a minute per token, not one per request.
      const notBefore = new Date(now.getTime() - TOKEN_TOUCH_INTERVAL_MS).toISOString();
      if (!stored.lastUsedAt || stored.lastUsedAt < notBefore) {
        try {
          await tokens.touchToken(hash, now.toISOString(), notBefore);
        } catch (error) {
          logger.warn('could not record when a token was last used', { principal: stored.name, error });
        }
      }
      return { name: stored.name, role: stored.role };
    },

    authorize(principal: Principal, permission: Permission): void {
      if (!hasPermission(principal.role, permission)) {
        const allowed = PERMISSIONS[permission].join(' or ');
        throw new ForbiddenError(`${principal.name} has role ${principal.role}; this needs role ${allowed}`);
      }
    },

    /** A new token; its secret is in this answer and nowhere else. ConflictError if the name is taken. */
    async createToken(body: unknown, actor: Principal): Promise<CreatedToken> {
      const request = parse(CreateTokenRequest, body, 'token request');
      if (request.name === BOOTSTRAP_TOKEN_NAME) {
        throw new ConflictError(`the name ${BOOTSTRAP_TOKEN_NAME} is kept for the bootstrap admin token; choose another`);
      }
      const now = clock.now();
      const token = generateToken();
      const stored: StoredToken = {
        name: request.name,
        role: request.role,
        createdAt: now.toISOString(),
        createdBy: actor.name,
        ...(request.expiresInSeconds ? { expiresAt: new Date(now.getTime() + request.expiresInSeconds * 1000).toISOString() } : {}),
      };
      await tokens.createToken(hashToken(token), stored);
      await audit.record('token.created', actor.name, `tokens/${stored.name}`, {
        name: stored.name,
        role: stored.role,
        ...(stored.expiresAt ? { expiresAt: stored.expiresAt } : {}),
      });
      return {
        name: stored.name,
        role: stored.role,
        token,
        createdAt: stored.createdAt,
        ...(stored.expiresAt ? { expiresAt: stored.expiresAt } : {}),
      };
    },

    async listTokens(): Promise<{ items: TokenView[] }> {
      return { items: (await tokens.listTokens()).map(view) };
    },

    /**
     * Revokes a token by name: refused from the next request on. The last admin token that still
     * works cannot be revoked (nobody could make tokens any more): make another admin token first.
     */
    async revokeToken(name: string, actor: Principal): Promise<void> {
      const tokenName = parse(PrincipalName, name, 'token name');
      const now = clock.now();
      const live = await tokens.listTokens();
      const target = live.find((t) => t.name === tokenName);
      if (!target) throw new NotFoundError(`no token is named ${tokenName}; slipway token list shows them`);
      if (target.role === 'admin' && !live.some((t) => t !== target && t.role === 'admin' && isLive(t, now))) {
        throw new ConflictError(
          `${tokenName} is the last admin token that works; create another admin token before revoking it, or nobody could manage tokens any more`,
        );
      }
      const revoked = await tokens.revokeToken(tokenName, now.toISOString());
      if (!revoked) throw new NotFoundError(`no token is named ${tokenName}; slipway token list shows them`);
      await audit.record('token.revoked', actor.name, `tokens/${tokenName}`, { name: tokenName, role: revoked.role });
    },

    /**
     * Stores the bootstrap admin token (name `admin`) from configuration if it is not there yet. A
     * new secret replaces the old bootstrap token, which stops working. A secret that was revoked
     * stays revoked: configure a new one to get a bootstrap token back.
     */
    async ensureAdminToken(token: string): Promise<'present' | 'created' | 'revoked'> {
      const hash = hashToken(token);
      const existing = await tokens.getToken(hash);
      if (existing?.revokedAt) {
        logger.warn('the configured bootstrap admin token was revoked; it stays revoked until a new one is configured');
        return 'revoked';
      }
      // Also repairs a name claim that a crash, or a store from before names were claimed, left out.
      await tokens.createToken(
        hash,
        existing ?? { name: BOOTSTRAP_TOKEN_NAME, role: 'admin', createdAt: clock.now().toISOString(), createdBy: 'bootstrap' },
        { replace: true },
      );
      return existing ? 'present' : 'created';
    },
  };
}
export type AuthService = ReturnType<typeof createAuthService>;
