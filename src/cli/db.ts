import pg from 'pg';

export type Client = pg.Client;

/** One session for one CLI command, closed afterwards. */
export async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, application_name: 'pgflare:cli' });
  try {
    await client.connect();
  } catch (err) {
    throw new Error(`could not connect to the database: ${err instanceof Error ? err.message : String(err)}`);
  }
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** df.status of an id, or an error naming it when the instance is unknown or not visible to this role. */
export async function requireStatus(client: pg.Client, id: string): Promise<string> {
  const { rows } = await client.query<{ status: string | null }>('SELECT df.status($1) AS status', [id]);
  if (!rows[0]?.status) throw new Error(`instance ${id} not found (or not visible to this role)`);
  return rows[0].status;
}
