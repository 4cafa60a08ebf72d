import {
  assertHostTransition,
  assertTransition,
  canTransition,
  IllegalTransitionError,
  isTerminal,
  RELEASE_STATUSES,
} from '@slipway/core';
import { describe, expect, it } from 'vitest';

describe('release transitions', () => {
  it('walks the happy path through two environments', () => {
    const path = [
      'pending',
      'distributing',
      'switching',
      'distributing',
      'awaiting_approval',
      'switching',
      'succeeded',
    ] as const;
    for (let i = 1; i < path.length; i++) expect(canTransition(path[i - 1]!, path[i]!)).toBe(true);
  });

  it('treats succeeded, failed, rejected and cancelled as final', () => {
    const terminal = RELEASE_STATUSES.filter(isTerminal);
    expect(terminal).toEqual(['succeeded', 'failed', 'rejected', 'cancelled']);
    for (const from of terminal) {
      for (const to of RELEASE_STATUSES) expect(canTransition(from, to)).toBe(false);
    }
  });

  it('lets a rollback go from pending to its gate or its switch, with nothing to distribute', () => {
    expect(canTransition('pending', 'awaiting_approval')).toBe(true);
    expect(canTransition('pending', 'switching')).toBe(true);
  });

  it('refuses skipping to the end or rejecting without an approval gate', () => {
    expect(() => assertTransition('pending', 'succeeded')).toThrow(IllegalTransitionError);
    expect(() => assertTransition('distributing', 'succeeded')).toThrow(/distributing cannot move to succeeded/);
    expect(() => assertTransition('distributing', 'rejected')).toThrow(
      /distributing cannot move to rejected/,
    );
    expect(() => assertTransition('switching', 'rejected')).toThrow(IllegalTransitionError);
  });

  it('lets any running release fail or be cancelled', () => {
    for (const from of ['pending', 'distributing', 'awaiting_approval', 'switching'] as const) {
      expect(canTransition(from, 'failed')).toBe(true);
      expect(canTransition(from, 'cancelled')).toBe(true);
    }
  });

  it('only reverts hosts that were switched or failed', () => {
    expect(() => assertHostTransition('switched', 'reverted')).not.toThrow();
    expect(() => assertHostTransition('healthy', 'reverted')).not.toThrow();
    expect(() => assertHostTransition('pending', 'reverted')).toThrow(/host in status pending/);
    expect(() => assertHostTransition('distributed', 'healthy')).toThrow(IllegalTransitionError);
  });
});
