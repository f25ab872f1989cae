/**
 * Waits until `condition` (a boolean SQL expression) holds, for states that another process or session
 * brings about: a real worker process, a session entering a lock wait. There is no engine to drive by
 * hand there, so this polls: on the server (pg_sleep between checks), bounded, failing with the condition.
 */
export async function serverUntil(
  query: (text: string) => Promise<Record<string, unknown>[]>,
  condition: string,
  maxChecks = 500,
  pauseSeconds = 0.01,
): Promise<void> {
  for (let i = 0; i < maxChecks; i++) {
    const [r] = await query(`SELECT (${condition}) AS ok`);
    if (r.ok) return;
    await query(`SELECT pg_sleep(${pauseSeconds})`);
  }
  throw new Error(`condition never held: ${condition}`);
}
