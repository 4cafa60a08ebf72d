import { ConflictError } from '../errors.ts';
import type { AuditEntry, AuditStore, StoredToken, TokenStore } from '../ports.ts';

/**
 * In-memory fakes of the token and audit stores for unit tests. They pass the same contract suites
 * as the DynamoDB stores (test/contract), so a test written against them holds against DynamoDB.
 */
export function createMemoryTokenStore(): TokenStore & { records: Map<string, StoredToken> } {
  const records = new Map<string, StoredToken>();
  /** name -> hash of the live token holding it. */
  const names = new Map<string, string>();
  const copy = (token: StoredToken): StoredToken => ({ ...token });

  return {
    records,

    async createToken(hash, token, options = {}) {
      const holder = names.get(token.name);
      if (holder === hash && records.has(hash)) return;
      if (records.has(hash)) throw new ConflictError('that token is stored already under another name');
      if (holder !== undefined) {
        if (!options.replace) throw new ConflictError(`a token named ${token.name} exists; revoke it first or choose another name`);
        records.set(holder, { ...records.get(holder)!, revokedAt: token.createdAt });
      }
      names.set(token.name, hash);
      records.set(hash, copy(token));
    },

    async getToken(hash) {
      const token = records.get(hash);
      return token ? copy(token) : undefined;
    },

    async listTokens() {
      return [...names.keys()].sort().map((name) => copy(records.get(names.get(name)!)!));
    },

    async revokeToken(name, at) {
      const hash = names.get(name);
      if (hash === undefined) return undefined;
      names.delete(name);
      const revoked = { ...records.get(hash)!, revokedAt: at };
      records.set(hash, revoked);
      return copy(revoked);
    },

    async touchToken(hash, at, notBefore) {
      const token = records.get(hash);
      if (!token || token.revokedAt || (token.lastUsedAt && token.lastUsedAt >= notBefore)) return;
      records.set(hash, { ...token, lastUsedAt: at });
    },
  };
}

export function createMemoryAuditStore(): AuditStore {
  const entries = new Map<string, AuditEntry>();
  return {
    async append(entry) {
      if (!entries.has(entry.id)) entries.set(entry.id, structuredClone(entry));
    },

    async list({ limit, cursor }) {
      const newestFirst = [...entries.keys()].sort().reverse().filter((id) => cursor === undefined || id < cursor);
      const page = newestFirst.slice(0, limit).map((id) => structuredClone(entries.get(id)!));
      return newestFirst.length > limit ? { items: page, nextCursor: page.at(-1)!.id } : { items: page };
    },
  };
}
