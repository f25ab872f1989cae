/**
 * Scope ids and stamps (SPEC §3.0). The root scope's id is the instance id; a JOIN/RACE branch's or a
 * nested loop's is `<parent scope>::<parent generation>::<root node id>`; a node run in a scope is stamped
 * `<scope id>::<generation>`. These helpers build and take apart those strings; the state machine
 * (advance.ts) and the engine both use them.
 */
import type { ScopeState } from './changes.ts';

/** The scope ids a stamp lives in, outermost first: `a::1::b::2` → [`a`, `a::1::b`]. */
export function scopeChainOfStamp(stamp: string): string[] {
  const parts = stamp.split('::');
  const chain: string[] = [];
  for (let i = 1; i <= parts.length - 1; i += 2) chain.push(parts.slice(0, i).join('::'));
  return chain;
}

export function scopeOfStamp(stamp: string): string {
  return stamp.slice(0, stamp.lastIndexOf('::'));
}

export function stampOf(scope: Pick<ScopeState, 'id' | 'generation'>): string {
  return `${scope.id}::${scope.generation}`;
}

export function childScopeId(parent: Pick<ScopeState, 'id' | 'generation'>, rootId: string): string {
  return `${stampOf(parent)}::${rootId}`;
}
