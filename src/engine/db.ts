/**
 * The database port. The engine, the migrator and the API see only this, so the same code runs
 * over `pg` (Node) and `@neondatabase/serverless` (Workers); see docs/ARCHITECTURE.md, "Two drivers, one port".
 */
export interface QueryResult<R> {
  rows: R[];
  rowCount: number | null;
}

/** One session: statements on it run in order, so BEGIN/COMMIT on it form a transaction. */
export interface DbClient {
  query<R = Record<string, unknown>>(text: string, params?: unknown[]): Promise<QueryResult<R>>;
  /**
   * Optional (the Node adapter has it): runs a multi-statement text over the simple protocol, values as
   * the server's text and rows as arrays, and when a statement raises resolves with the results of the
   * statements completed before it and the error, where `query` would reject and drop them. A batch sends
   * all its steps in one message with it (batch.ts); without it, one round trip per step.
   */
  queryUntilError?(text: string): Promise<{ results: RawResult[]; error?: unknown }>;
}

/** A statement's result as queryUntilError returns it. */
export interface RawResult {
  fields?: { name: string; dataTypeID: number }[];
  rows: (string | null)[][];
}

export interface Db {
  /** Lends one session for the duration of `fn` (a pool checkout). */
  withClient<T>(fn: (client: DbClient) => Promise<T>): Promise<T>;
  /** Runs `fn` inside BEGIN … COMMIT on one session; ROLLBACK if it throws. */
  withTransaction<T>(fn: (client: DbClient) => Promise<T>): Promise<T>;
  end(): Promise<void>;
}

/** Builds withTransaction from withClient, for adapters whose pool lends plain sessions. */
export async function inTransaction<T>(client: DbClient, fn: (client: DbClient) => Promise<T>): Promise<T> {
  await client.query('BEGIN');
  try {
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/** A session lent by a node-postgres-style pool (`pg`, `@neondatabase/serverless`). */
export interface PooledSession {
  release(destroy?: boolean | Error): void;
  on(event: 'error', listener: (err: Error) => void): unknown;
  removeListener(event: 'error', listener: (err: Error) => void): unknown;
}

export interface SessionPool<S extends PooledSession> {
  connect(): Promise<S>;
  end(): Promise<void>;
}

export interface DbOverPoolOptions<S> {
  /** Wraps a lent session for the engine (default: used as it is). */
  adapt?: (session: S) => DbClient;
  /** Destroy a session `fn` threw out of rather than pool it again (it may sit in an aborted state). */
  dropOnThrow?: boolean;
}

/** The database port over a node-postgres-style pool: the adapters differ only in their pool and options. */
export function dbOverPool<S extends PooledSession, P extends SessionPool<S>>(
  pool: P,
  options: DbOverPoolOptions<S> = {},
): Db & { pool: P } {
  const adapt = options.adapt ?? ((s: S) => s as unknown as DbClient);
  const withClient = async <T>(fn: (c: DbClient) => Promise<T>): Promise<T> => {
    const session = await pool.connect();
    // The pool listens for a lost connection only while the session is idle in it. A lent one (a worker
    // loop holds one while it waits for work) would otherwise crash the process with an unhandled
    // 'error'; its queries fail instead, and it is destroyed rather than pooled again.
    let lost: Error | undefined;
    const onError = (err: Error) => {
      lost = err;
    };
    session.on('error', onError);
    let threw = false;
    try {
      return await fn(adapt(session));
    } catch (err) {
      threw = true;
      throw err;
    } finally {
      session.removeListener('error', onError);
      session.release(lost ?? (threw && options.dropOnThrow ? true : undefined));
    }
  };
  return {
    pool,
    withClient,
    withTransaction: (fn) => withClient((c) => inTransaction(c, fn)),
    end: () => pool.end(),
  };
}
