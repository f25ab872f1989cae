/**
 * Pure tests of the engine's copy of an instance's rows (snapshot.ts): no database. The DB-backed side
 * (a stale copy refused by df._apply and done again) is test/engine/snapshot.test.ts.
 */
import { describe, expect, it } from 'vitest';
import type { Changes, ScopeState } from '../graph/changes.ts';
import {
  activationSnapshot,
  advanceSnapshot,
  expectation,
  fromSnapshot,
  mergeChanges,
  overlay,
  partialSnapshot,
  serialize,
  type Loaded,
  type RawScope,
} from './snapshot.ts';

const scope = (id: string, over: Partial<ScopeState> = {}): ScopeState => ({
  id,
  parent: null,
  root: 'r',
  generation: 1,
  named: {},
  status: 'running',
  result: null,
  ...over,
});
const changes = (over: Partial<Changes> = {}): Changes => ({
  nodes: new Map(),
  scopes: new Map(),
  scopeDeletes: new Set(),
  cancelScopes: [],
  instance: null,
  ready: [],
  ...over,
});
const loaded = (over: Partial<Loaded> = {}): Loaded => ({ instance: { status: 'running', generation: 1 }, nodes: [], scopes: [], ...over });

describe('overlay', () => {
  it('reads through an unwritten activation: node fields, scopes replaced, deleted and added', () => {
    const base = loaded({
      nodes: [
        { id: 'a', status: 'pending', stamp: null, state: null },
        { id: 'b', status: 'running', stamp: 'inst::1', state: { x: 1 } },
      ],
      scopes: [scope('inst'), scope('gone')],
    });
    const carry = changes({
      nodes: new Map([
        ['a', { status: 'running' as const, stamp: 'inst::1', state: null }],
        ['b', { attempts: 2 }],
      ]),
      scopes: new Map([
        ['inst', scope('inst', { named: { x: '1' } })],
        ['new', scope('new', { parent: 'inst' })],
      ]),
      scopeDeletes: new Set(['gone']),
    });
    const s = overlay(base, carry);
    expect(s.nodes).toEqual([
      { id: 'a', status: 'running', stamp: 'inst::1', state: null },
      { id: 'b', status: 'running', stamp: 'inst::1', state: { x: 1 } },
    ]);
    expect(s.scopes.map((x) => [x.id, x.named])).toEqual([
      ['inst', { x: '1' }],
      ['new', {}],
    ]);
    // Copies: the carry's scopes are not shared with the result, the input is unchanged.
    s.scopes[0].named.y = '2';
    expect(carry.scopes.get('inst')!.named).toEqual({ x: '1' });
    expect(base.scopes.map((x) => x.id)).toEqual(['inst', 'gone']);
  });
});

describe('mergeChanges', () => {
  it('is `a` then `b`: node fields merged, later scopes win, deletes and re-creations, lists appended', () => {
    const a = changes({
      nodes: new Map([['n', { status: 'running' as const, stamp: 's1', attempts: 0 }]]),
      scopes: new Map([
        ['s', scope('s')],
        ['t', scope('t')],
      ]),
      scopeDeletes: new Set(['u']),
      cancelScopes: ['c1'],
      instance: { status: 'running' },
      ready: [{ id: 'n', runAt: 'T1' }],
    });
    const b = changes({
      nodes: new Map([
        ['n', { status: 'completed' as const, result: '1' }],
        ['m', { status: 'running' as const }],
      ]),
      scopes: new Map([
        ['s', scope('s', { status: 'completed' })],
        ['u', scope('u')],
      ]),
      scopeDeletes: new Set(['t']),
      cancelScopes: ['c2'],
      instance: { status: 'completed', output: 'o' },
      ready: [{ id: 'm', runAt: 'T2' }],
    });
    const m = mergeChanges(a, b);
    expect(m.nodes.get('n')).toEqual({ status: 'completed', stamp: 's1', attempts: 0, result: '1' });
    expect(m.nodes.get('m')).toEqual({ status: 'running' });
    expect([...m.scopes.keys()].sort()).toEqual(['s', 'u']);
    expect(m.scopes.get('s')!.status).toBe('completed');
    expect([...m.scopeDeletes]).toEqual(['t']);
    expect(m.cancelScopes).toEqual(['c1', 'c2']);
    expect(m.instance).toEqual({ status: 'completed', output: 'o' });
    expect(m.ready).toEqual([
      { id: 'n', runAt: 'T1' },
      { id: 'm', runAt: 'T2' },
    ]);
    // Neither input is changed.
    expect(a.nodes.get('n')).toEqual({ status: 'running', stamp: 's1', attempts: 0 });
    expect(a.scopes.has('t')).toBe(true);
    expect(mergeChanges(changes(), changes()).instance).toBeNull();
  });
});

describe('fromSnapshot', () => {
  const read = { nodes: ['leaf', 'join'], scopes: ['inst', 'inst::1::b'] };

  it('knows nothing without a copy made at the activation', () => {
    expect(fromSnapshot(undefined, read, 'leaf')).toBeNull();
    const partial = partialSnapshot();
    partial.nodes.set('leaf', { id: 'leaf', status: 'running', stamp: 'inst::1', state: null });
    expect(fromSnapshot(partial, { nodes: ['leaf'], scopes: [] }, 'leaf')).toBeNull();
  });

  it('answers from a complete copy: unknown nodes are pending, unknown or null scopes absent; copies out', () => {
    const snap = activationSnapshot({ status: 'running', generation: 3 });
    snap.nodes.set('leaf', { id: 'leaf', status: 'running', stamp: 'inst::3', state: { k: 1 } });
    snap.scopes.set('inst', { ...scope('inst', { generation: 3 }), named: { a: '1' } });
    snap.scopes.set('inst::1::b', null);
    const got = fromSnapshot(snap, read, 'leaf')!;
    expect(got).toEqual({
      instance: { status: 'running', generation: 3 },
      nodes: [
        { id: 'leaf', status: 'running', stamp: 'inst::3', state: { k: 1 } },
        { id: 'join', status: 'pending', stamp: null, state: null },
      ],
      scopes: [{ ...scope('inst', { generation: 3 }), named: { a: '1' } }],
    });
    got.scopes[0].named.b = '2';
    got.instance!.status = 'x';
    expect(snap.scopes.get('inst')!.named).toEqual({ a: '1' });
    expect(snap.instance.status).toBe('running');
  });

  it('refuses while another leaf runs (a sibling branch may checkpoint first)', () => {
    const snap = activationSnapshot({ status: 'running', generation: 1 });
    snap.running.add('leaf');
    expect(fromSnapshot(snap, read, 'leaf')).not.toBeNull();
    snap.running.add('other');
    expect(fromSnapshot(snap, read, 'leaf')).toBeNull();
  });
});

describe('expectation', () => {
  it('names every row assumed: nodes as read, scopes read but absent as null', () => {
    const sc: RawScope = scope('inst');
    const pre = loaded({ nodes: [{ id: 'leaf', status: 'running', stamp: 'inst::1', state: null }], scopes: [sc] });
    expect(expectation(pre, { nodes: ['leaf'], scopes: ['inst', 'inst::1::b'] })).toEqual({
      instance: { status: 'running', generation: 1 },
      nodes: { leaf: { id: 'leaf', status: 'running', stamp: 'inst::1', state: null } },
      scopes: { inst: sc, 'inst::1::b': null },
    });
  });
});

describe('advanceSnapshot', () => {
  const isLeaf = (id: string) => id !== 'join';

  it('moves past a write: rows read, then the changes as df._apply writes them', () => {
    const snap = activationSnapshot({ status: 'pending', generation: 1 });
    const pre = loaded({ instance: { status: 'pending', generation: 1 }, nodes: [], scopes: [] });
    const ch = changes({
      nodes: new Map([
        ['join', { status: 'running' as const, stamp: 'inst::1', state: null }],
        ['a', { status: 'running' as const, stamp: 'inst::1::a::1', state: null }],
        ['b', { status: 'running' as const, stamp: 'inst::1::b::1', state: null }],
      ]),
      scopes: new Map([
        ['inst', scope('inst')],
        ['inst::1::a', scope('inst::1::a', { parent: 'inst', root: 'a' })],
      ]),
      instance: { status: 'running' },
    });
    expect(advanceSnapshot(snap, pre, { nodes: [], scopes: ['inst'] }, ch, isLeaf)).toBe(true);
    expect(snap.instance).toEqual({ status: 'running', generation: 1 });
    expect([...snap.running].sort()).toEqual(['a', 'b']);
    expect(snap.nodes.get('join')).toEqual({ id: 'join', status: 'running', stamp: 'inst::1', state: null });
    expect(snap.scopes.get('inst::1::a')).toMatchObject({ parent: 'inst', root: 'a', generation: 1, status: 'running' });

    // a completes: no longer running; its scope is deleted; an upsert keeps an existing scope's parent/root.
    const ch2 = changes({
      nodes: new Map([['a', { status: 'completed' as const, result: '1' }]]),
      scopes: new Map([['inst', { ...scope('inst', { parent: 'elsewhere', root: 'other' }), status: 'completed' as const }]]),
      scopeDeletes: new Set(['inst::1::a']),
      instance: { generation: 2 },
    });
    expect(advanceSnapshot(snap, loaded(), { nodes: [], scopes: [] }, ch2, isLeaf)).toBe(true);
    expect([...snap.running]).toEqual(['b']);
    expect(snap.nodes.get('a')).toEqual({ id: 'a', status: 'completed', stamp: 'inst::1::a::1', state: null });
    expect(snap.scopes.get('inst')).toMatchObject({ parent: null, root: 'r', status: 'completed' });
    expect(snap.scopes.get('inst::1::a')).toBeNull();
    expect(snap.instance.generation).toBe(2);
  });

  it('a cancelled scope and every scope nested in it become known absent', () => {
    const snap = activationSnapshot({ status: 'running', generation: 1 });
    for (const id of ['inst', 'inst::1::r', 'inst::1::r::1::x', 'inst::1::q']) snap.scopes.set(id, scope(id));
    expect(advanceSnapshot(snap, loaded(), { nodes: [], scopes: [] }, changes({ cancelScopes: ['inst::1::r'] }), isLeaf)).toBe(true);
    expect(snap.scopes.get('inst::1::r')).toBeNull();
    expect(snap.scopes.get('inst::1::r::1::x')).toBeNull();
    expect(snap.scopes.get('inst::1::q')).not.toBeNull();
  });

  it('scopes read but not found are known absent; a partial copy learns only fully known new nodes', () => {
    const snap = partialSnapshot();
    const ch = changes({
      nodes: new Map([
        ['full', { status: 'running' as const, stamp: 's', state: null }],
        ['half', { status: 'running' as const }],
      ]),
    });
    expect(advanceSnapshot(snap, loaded(), { nodes: [], scopes: ['missing'] }, ch, isLeaf)).toBe(true);
    expect(snap.scopes.get('missing')).toBeNull();
    expect(snap.nodes.has('full')).toBe(true);
    expect(snap.nodes.has('half')).toBe(false);
  });

  it('gives up when the result is not knowable here: a signal floor, or no instance', () => {
    const snap = activationSnapshot({ status: 'running', generation: 1 });
    expect(advanceSnapshot(snap, loaded(), { nodes: [], scopes: [] }, changes({ nodes: new Map([['s', { signal_floor: true }]]) }), isLeaf)).toBe(false);
    expect(advanceSnapshot(snap, loaded({ instance: null }), { nodes: [], scopes: [] }, changes(), isLeaf)).toBe(false);
  });
});

describe('serialize', () => {
  it("writes df._apply's shape", () => {
    const ch = changes({
      nodes: new Map([
        ['then', { status: 'running' as const }],
        ['sql', { status: 'running' as const }],
        ['join', { status: 'running' as const }],
      ]),
      scopes: new Map([['inst', scope('inst')]]),
      scopeDeletes: new Set(['d']),
      cancelScopes: ['c'],
      instance: { status: 'running' },
    });
    expect(serialize(ch, [{ e: 1 }])).toEqual({
      nodes: [
        { id: 'then', status: 'running' },
        { id: 'sql', status: 'running' },
        { id: 'join', status: 'running' },
      ],
      scopes: [scope('inst')],
      scope_deletes: ['d'],
      cancel_scopes: ['c'],
      instance: { status: 'running' },
      events: [{ e: 1 }],
    });
    expect(serialize(changes(), [])).toEqual({ nodes: [], scopes: [], scope_deletes: [], cancel_scopes: [], events: [] });
  });
});
