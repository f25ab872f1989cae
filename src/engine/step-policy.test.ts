/**
 * Pure tests of the step policy (step-policy.ts): no database. What a row's own options override, which
 * instances may not run, and what a finished attempt becomes.
 */
import { describe, expect, it, vi } from 'vitest';
import { Checkpoint } from '../graph/advance.ts';
import { buildGraph } from '../graph/graph.ts';
import type { ClaimedRow } from './queries/claim.ts';
import { DEFAULT_RETRY } from './retry.ts';
import { isRetry, leafEvent, ownerBlock, ownTimeout, policyFor, substitutionContext, timeoutFor, toOutcome, type StepDefaults } from './step-policy.ts';

const ID = '00000000-0000-0000-0000-000000000001';
const defaults: StepDefaults = { stepTimeoutMs: 0, retry: DEFAULT_RETRY, enableSuperuserInstances: undefined };
const T0 = new Date('2030-01-01T00:00:00.000Z');

function row(over: Partial<ClaimedRow> = {}): ClaimedRow {
  return {
    instance_id: ID,
    id: 'aaaaaaaa',
    node_type: 'SQL',
    query: 'SELECT 1',
    result_name: null,
    status: 'running',
    stamp: `${ID}::1`,
    state: null,
    attempts: 0,
    run_at: T0,
    options: null,
    instance_status: 'running',
    root_node: 'aaaaaaaa',
    label: null,
    vars: {},
    generation: 1,
    owner: 'alice',
    owner_exists: true,
    owner_is_superuser: false,
    superuser_gate: 'off',
    named: null,
    scope_status: 'running',
    input: null,
    ...over,
  };
}

describe('substitutionContext', () => {
  it('drops null vars, and the start input is the named result `input` unless a node is named so', () => {
    const ctx = substitutionContext(row({ vars: { a: '1', b: null }, label: 'l', named: { x: '"v"' }, input: '{"k":1}' }));
    expect(ctx).toEqual({ instanceId: ID, label: 'l', vars: { a: '1' }, results: { input: '{"k":1}', x: '"v"' } });
    expect(substitutionContext(row({ named: { input: '"mine"' }, input: '{"k":1}' })).results).toEqual({ input: '"mine"' });
    expect(substitutionContext(row({ named: null, input: null })).results).toEqual({});
  });
});

describe('ownerBlock', () => {
  it('blocks a vanished owner', () => {
    expect(ownerBlock(defaults, row({ owner_exists: false }))).toBe(`Instance ${ID}: submitted_by role no longer exists in pg_roles`);
  });

  it('blocks a superuser owner unless the gate is on (database setting, or the override)', () => {
    const su = row({ owner_is_superuser: true, owner: 'postgres' });
    expect(ownerBlock(defaults, su)).toMatch(/submitted_by role "postgres" is a superuser, but pg_durable.enable_superuser_instances is off/);
    expect(ownerBlock(defaults, { ...su, superuser_gate: 'ON' })).toBeNull();
    expect(ownerBlock(defaults, { ...su, superuser_gate: 'yes' })).toBeNull();
    expect(ownerBlock({ ...defaults, enableSuperuserInstances: true }, su)).toBeNull();
    expect(ownerBlock({ ...defaults, enableSuperuserInstances: false }, { ...su, superuser_gate: 'on' })).not.toBeNull();
    expect(ownerBlock(defaults, row())).toBeNull();
  });
});

describe('timeouts', () => {
  it("a node's df.timeout overrides the engine default; ownTimeout is null when they agree", () => {
    const d = { ...defaults, stepTimeoutMs: 5000 };
    expect(timeoutFor(d, row())).toBe(5000);
    expect(ownTimeout(d, row())).toBeNull();
    expect(timeoutFor(d, row({ options: { timeout_seconds: 1.5 } }))).toBe(1500);
    expect(ownTimeout(d, row({ options: { timeout_seconds: 1.5 } }))).toBe(1500);
    expect(ownTimeout(d, row({ options: { timeout_seconds: 5 } }))).toBeNull();
    // Zero or absent: the default.
    expect(timeoutFor(d, row({ options: { timeout_seconds: 0 } }))).toBe(5000);
    expect(ownTimeout(defaults, row({ options: { timeout_seconds: 2 } }))).toBe(2000);
  });
});

describe('retry policy and leafEvent', () => {
  const graph = buildGraph(ID, 'aaaaaaaa', [{ id: 'aaaaaaaa', node_type: 'SQL', query: 'SELECT 1', result_name: null, left_node: null, right_node: null }]);
  const machine = () =>
    new Checkpoint({
      graph,
      now: T0,
      nodes: [{ id: 'aaaaaaaa', status: 'running', stamp: `${ID}::1`, state: null }],
      scopes: [{ id: ID, parent: null, root: 'aaaaaaaa', generation: 1, named: {}, status: 'running', result: null }],
      instanceGeneration: 1,
    });

  it("a node's df.retry replaces the engine default (seconds to ms, full jitter)", () => {
    expect(policyFor(defaults, row())).toBe(DEFAULT_RETRY);
    expect(policyFor(defaults, row({ options: { retry: { max_attempts: 3, backoff_seconds: 2, max_backoff_seconds: 10 } } }))).toEqual({
      maxAttempts: 3,
      baseMs: 2000,
      maxMs: 10_000,
      jitter: 1,
    });
  });

  it('a failure with attempts left is retried after the backoff, recorded as attempt_failed', () => {
    vi.spyOn(Math, 'random').mockReturnValue(1);
    try {
      const r = row({ options: { retry: { max_attempts: 3, backoff_seconds: 2, max_backoff_seconds: 10 } } });
      const events: unknown[] = [];
      const cp = machine();
      leafEvent(defaults, r, { kind: 'fail', error: 'boom' }, T0, 2, events)(cp);
      expect(events).toEqual([{ node_id: 'aaaaaaaa', kind: 'attempt_failed', attempt: 2, detail: 'boom' }]);
      expect(isRetry(events)).toBe(true);
      // Second failed attempt: 2 s doubled, full jitter at its top.
      expect(cp.changes.ready).toEqual([{ id: 'aaaaaaaa', runAt: '2030-01-01T00:00:04.000Z' }]);
      expect(cp.changes.nodes.get('aaaaaaaa')).toMatchObject({ run_at: '2030-01-01T00:00:04.000Z', locked_until: null });
      expect(cp.changes.instance).toBeNull();
    } finally {
      vi.restoreAllMocks();
    }
  });

  it('the last attempt fails the node (recorded as failed); without df.retry the first one is the last', () => {
    for (const [r, attempt] of [
      [row({ options: { retry: { max_attempts: 3, backoff_seconds: 2, max_backoff_seconds: 10 } } }), 3],
      [row(), 1],
    ] as const) {
      const events: unknown[] = [];
      const cp = machine();
      leafEvent(defaults, r, { kind: 'fail', error: 'boom' }, T0, attempt, events)(cp);
      expect(events).toEqual([{ node_id: 'aaaaaaaa', kind: 'failed', attempt, detail: 'boom' }]);
      expect(isRetry(events)).toBe(false);
      expect(cp.changes.instance).toMatchObject({ status: 'failed' });
    }
  });

  it('a success completes the node and records nothing', () => {
    const events: unknown[] = [];
    const cp = machine();
    leafEvent(defaults, row({ options: { retry: { max_attempts: 3, backoff_seconds: 2, max_backoff_seconds: 10 } } }), { kind: 'ok', text: '{"v":1}' }, T0, 1, events)(cp);
    expect(events).toEqual([]);
    expect(cp.changes.nodes.get('aaaaaaaa')).toMatchObject({ status: 'completed', result: '{"v":1}' });
    expect(cp.changes.instance).toMatchObject({ status: 'completed' });
  });
});

describe('toOutcome', () => {
  it("maps a step's outcome to the state machine's", () => {
    expect(toOutcome({ ok: true, resultText: '{"rows":[]}' })).toEqual({ kind: 'ok', text: '{"rows":[]}' });
    expect(toOutcome({ ok: false, error: 'x' })).toEqual({ kind: 'fail', error: 'x' });
  });
});
