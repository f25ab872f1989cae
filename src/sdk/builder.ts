/**
 * The typed graph builder: workflows as TypeScript values that serialize to exactly the envelope JSON
 * the SQL DSL builds (same keys, same order, same bytes), so `df.start`, the REST API and the client
 * take them as they take DSL output.
 *
 *   sql('SELECT id FROM orders WHERE NOT shipped').as('batch')
 *     .andThen(sql('UPDATE orders SET shipped = true WHERE id IN (SELECT id FROM $batch.*)'))
 *
 * A plain string stands for a SQL step wherever a step is taken, as in the DSL. Steps are immutable:
 * every method returns a new step. (The sequence method is `andThen`, not `then`: an object with a
 * `then` method is a promise to `await`, and would be awaited by accident.)
 */
import type { NodeType } from '../graph/schema.ts';
import { jsonbText } from './jsonb.ts';
import { toSeconds, type Duration } from './duration.ts';
import type { RefsIn, Unbound } from './names.ts';

/** pgflare's own per-node options (df.retry, df.timeout), under the `pgflare` key pg_durable ignores. */
export interface GraphOptions {
  retry?: { max_attempts: number; backoff_seconds: number; max_backoff_seconds: number };
  timeout_seconds?: number;
}

/** One node of envelope JSON (SPEC §1.3), children nested, as `df.start` takes it. */
export interface GraphNode {
  node_type: NodeType;
  left_node?: GraphNode;
  right_node?: GraphNode;
  condition_node?: GraphNode;
  extra_nodes?: GraphNode[];
  query?: string;
  result_name?: string;
  pgflare?: GraphOptions;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * A workflow step. `Binds` are the result names it binds (`.as`), `Refs` the `$name` references in
 * its SQL that nothing before them binds; both exist only for the type checker.
 */
export class Step<Binds extends string = never, Refs extends string = never> {
  declare readonly _binds?: Binds;
  declare readonly _refs?: Refs;

  /** Use the functions of this module (sql, seq, join, …) rather than this constructor. */
  constructor(
    readonly node: Readonly<GraphNode>,
    /** The instance label `start` uses when none is given; not part of the graph. */
    readonly startLabel?: string,
  ) {}

  /** `this ~> next`: runs next after this step. */
  andThen<N extends StepLike>(next: N): Step<Binds | BindsOf<N>, Refs | Exclude<RefsOf<N>, Binds>> {
    return new Step(envelope('THEN', { left_node: this.node, right_node: toStep(next).node }), this.startLabel);
  }

  /** `this |=> name`: later steps read this step's result as `$name` (`$name.col`, `$name.*`). */
  as<N extends string>(name: N): Step<Binds | N, Refs> {
    if (name === '') throw new TypeError('as: result name cannot be empty');
    if (!IDENTIFIER.test(name)) {
      throw new TypeError(`as: result name '${name}' is not a valid identifier — must match [a-zA-Z_][a-zA-Z0-9_]*`);
    }
    return new Step(envelope(this.node.node_type, { ...this.node, result_name: name }), this.startLabel);
  }

  /** `df.retry(step, …)`: a failing SQL or HTTP step runs again, up to maxAttempts in all, with backoff. */
  retry(opts: { maxAttempts: number; backoff?: Duration; maxBackoff?: Duration }): Step<Binds, Refs> {
    const type = this.node.node_type;
    if (type !== 'SQL' && type !== 'HTTP' && type !== 'HTTP_MULTIPART') {
      throw new TypeError(`retry: only SQL and HTTP steps can be retried, not ${type}`);
    }
    const { maxAttempts } = opts;
    if (!Number.isInteger(maxAttempts) || maxAttempts < 1 || maxAttempts > 1000) {
      throw new RangeError(`retry: maxAttempts must be between 1 and 1000, got ${maxAttempts}`);
    }
    const retry = {
      max_attempts: maxAttempts,
      backoff_seconds: toSeconds(opts.backoff ?? 1, 'retry: backoff'),
      max_backoff_seconds: toSeconds(opts.maxBackoff ?? 300, 'retry: maxBackoff'),
    };
    return this.withOptions({ retry });
  }

  /** `df.timeout(step, seconds)`: the SQL step's statement_timeout. */
  timeout(seconds: Duration): Step<Binds, Refs> {
    if (this.node.node_type !== 'SQL') {
      throw new TypeError(`timeout: only SQL steps take a statement timeout, not ${this.node.node_type} (HTTP steps have a timeout option)`);
    }
    const s = toSeconds(seconds, 'timeout');
    if (s <= 0) throw new RangeError(`timeout: seconds must be positive, got ${s}`);
    return this.withOptions({ timeout_seconds: s });
  }

  /** The instance label to start this workflow with (df.start's `label`); only the outermost step's counts. */
  label(text: string): Step<Binds, Refs> {
    return new Step(this.node, text);
  }

  /** Drops the `$name` bookkeeping, for SQL whose `$` is not a named result (e.g. `$tag$` quoting). */
  unchecked(): Step<Binds, never> {
    return this as unknown as Step<Binds, never>;
  }

  /** The envelope JSON as a plain object; `JSON.stringify` of it is byte-identical to the DSL's text. */
  toGraph(): GraphNode {
    return structuredClone(this.node) as GraphNode;
  }

  toJSON(): GraphNode {
    return this.node as GraphNode;
  }

  /** The envelope JSON text (what `SELECT <dsl expression>` returns). */
  toString(): string {
    return JSON.stringify(this.node);
  }

  private withOptions(patch: GraphOptions): Step<Binds, Refs> {
    const merged = { ...this.node.pgflare, ...patch };
    // Same key order as the DSL's jsonb (retry, timeout_seconds), so the text is the same.
    const pgflare = JSON.parse(jsonbText(merged as never)) as GraphOptions;
    return new Step(envelope(this.node.node_type, { ...this.node, pgflare }), this.startLabel);
  }
}

export type StepLike = Step<any, any> | string;
export type BindsOf<S> = S extends Step<infer B, any> ? B : never;
export type RefsOf<S> = S extends Step<any, infer R> ? R : S extends string ? RefsIn<S> : never;
/** The step itself when every `$name` it reads is bound inside it (or is one of `Given`), else `Unbound<names>`. */
export type Closed<S, Given extends string = never> = 0 extends 1 & RefsOf<S> // Step<any, any>: nothing known, nothing checked
  ? S
  : [Exclude<RefsOf<S>, Given>] extends [never]
    ? S
    : Unbound<Exclude<RefsOf<S>, Given>>;

/** Envelope with keys in the order the DSL writes them (df._envelope). */
export function envelope(type: NodeType, parts: Omit<GraphNode, 'node_type'> = {}): GraphNode {
  const n: GraphNode = { node_type: type };
  if (parts.left_node) n.left_node = parts.left_node;
  if (parts.right_node) n.right_node = parts.right_node;
  if (parts.condition_node) n.condition_node = parts.condition_node;
  if (parts.extra_nodes && parts.extra_nodes.length > 0) n.extra_nodes = parts.extra_nodes;
  if (parts.query !== undefined) n.query = parts.query;
  if (parts.result_name !== undefined) n.result_name = parts.result_name;
  if (parts.pgflare !== undefined) n.pgflare = parts.pgflare;
  return n;
}

/** A Step, also one made by another copy of this module (two installs of the package). */
export function isStep(x: unknown): x is Step<any, any> {
  if (x instanceof Step) return true;
  const n = (x as { node?: { node_type?: unknown } } | null)?.node;
  return typeof x === 'object' && x !== null && typeof n?.node_type === 'string' && typeof (x as Step).toGraph === 'function';
}

/** A step for a string (a SQL step) or the step itself. */
export function toStep<S extends StepLike>(s: S): Step<BindsOf<S>, RefsOf<S>> {
  if (isStep(s)) return s as Step<BindsOf<S>, RefsOf<S>>;
  if (typeof s !== 'string') throw new TypeError('a step is a Step or a SQL string');
  return new Step(envelope('SQL', { query: s }));
}

/** `df.sql(query)`: one SQL statement, run in its own transaction. */
export function sql<S extends string>(query: S): Step<never, RefsIn<S>> {
  return toStep(query) as Step<never, RefsIn<S>>;
}

/** Wraps envelope JSON built elsewhere (the DSL's output, a stored workflow); not type-checked for names. */
export function fromGraph(graph: GraphNode | string): Step<never, never> {
  return new Step(typeof graph === 'string' ? (JSON.parse(graph) as GraphNode) : graph);
}

type Seq<T extends readonly unknown[], B extends string = never, R extends string = never> = T extends readonly [infer H, ...infer Rest]
  ? Seq<Rest, B | BindsOf<H>, R | Exclude<RefsOf<H>, B>>
  : Step<B, R>;

/** `a ~> b ~> c`: steps one after another (a left fold, as the DSL's operator groups). */
export function seq<T extends [StepLike, ...StepLike[]]>(...steps: T): Seq<T> {
  if (steps.length === 0) throw new TypeError('seq: at least one step');
  let out = toStep(steps[0]) as Step<any, any>;
  for (const s of steps.slice(1)) out = out.andThen(s);
  return out as Seq<T>;
}

type AllBinds<T extends readonly unknown[]> = T extends readonly (infer E)[] ? BindsOf<E> : never;
type AllRefs<T extends readonly unknown[]> = T extends readonly (infer E)[] ? RefsOf<E> : never;

/**
 * `a & b` (two steps) or df.join3 and wider (three or more: one JOIN with `extra_nodes`): all run in
 * parallel; the result is the array of their results. (`a & b & c` in the DSL nests: join(join(a, b), c).)
 */
export function join<T extends [StepLike, StepLike, ...StepLike[]]>(...steps: T): Step<AllBinds<T>, AllRefs<T>> {
  if (steps.length < 2) throw new TypeError('join: at least two steps');
  const [a, b, ...more] = steps.map((s) => toStep(s).node);
  return new Step(envelope('JOIN', { left_node: a, right_node: b, extra_nodes: more }));
}

/** `a | b | c`: the first to finish wins, the others are cancelled (a left fold of RACE nodes). */
export function race<A extends StepLike, B extends StepLike>(a: A, b: B, ...more: StepLike[]): Step<BindsOf<A> & BindsOf<B>, RefsOf<A> | RefsOf<B>> {
  let out = new Step(envelope('RACE', { left_node: toStep(a).node, right_node: toStep(b).node }));
  for (const s of more) out = new Step(envelope('RACE', { left_node: out.node, right_node: toStep(s).node }));
  return out as never;
}

/** `cond ?> then !> otherwise` (df.if): runs `then` when the condition step's result is truthy. */
export function when<C extends StepLike, T extends StepLike, E extends StepLike>(
  condition: C,
  then: T,
  otherwise: E,
): Step<BindsOf<C> | (BindsOf<T> & BindsOf<E>), RefsOf<C> | Exclude<RefsOf<T> | RefsOf<E>, BindsOf<C>>> {
  return new Step(
    envelope('IF', { left_node: toStep(then).node, right_node: toStep(otherwise).node, condition_node: toStep(condition).node }),
  );
}

/** df.if_rows(name, then, otherwise): branches on whether the named result `name` has rows. */
export function whenRows<N extends string, T extends StepLike, E extends StepLike>(
  resultName: N,
  then: T,
  otherwise: E,
): Step<BindsOf<T> & BindsOf<E>, N | RefsOf<T> | RefsOf<E>> {
  const query = `{"condition_type":"result_has_rows","result_name":${JSON.stringify(resultName)}}`;
  return new Step(envelope('IF', { left_node: toStep(then).node, right_node: toStep(otherwise).node, query }));
}

/**
 * `@> body` (df.loop): runs body again and again until a `breakLoop()` inside it runs, or, with
 * `whileCondition`, while that step's result is truthy.
 */
export function loop<Bd extends StepLike, C extends StepLike = never>(
  body: Bd,
  whileCondition?: C,
): Step<BindsOf<Bd>, RefsOf<Bd> | RefsOf<C>> {
  const condition = whileCondition === undefined ? undefined : toStep(whileCondition).node;
  return new Step(envelope('LOOP', { left_node: toStep(body).node, condition_node: condition }));
}

/**
 * The query that starts `step` with node-postgres or any driver that takes `{ text, values }`:
 * `const { rows: [{ id }] } = await pool.query(startQuery(wf))`.
 */
export function startQuery<S extends Step<any, any>>(step: S & Closed<S>, label?: string): { text: string; values: [string, string | null] } {
  return { text: 'SELECT df.start($1, $2) AS id', values: [step.toString(), label ?? step.startLabel ?? null] };
}
