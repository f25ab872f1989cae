/** How the CLI words an error: PostgreSQL's message with its SQLSTATE, or the error's message. */
export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? `${err.message} (SQLSTATE ${code})` : err.message;
  }
  return String(err);
}
