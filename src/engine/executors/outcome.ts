/** What running one step produced: its result text, or the error text the node fails with. */
export type StepOutcome = { ok: true; resultText: string } | { ok: false; error: string };
