/** `pgflare tail ID`: prints each step as it starts and finishes, then the outcome; exit code = outcome. */
import { withClient } from './db.ts';
import { clip, duration, styleFor, type Style } from './format.ts';
import { exitCodeOf, follow, outcome, type StepRow } from './follow.ts';
import { EXIT } from './program.ts';

export async function tail(url: string, id: string, opts: { interval: number; timeout?: number; color: boolean }): Promise<number> {
  const s = styleFor(process.stdout, opts.color);
  const write = (line: string) => process.stdout.write(`${line}\n`);
  return withClient(url, async (client) => {
    // A step's stored timestamps are those of the transactions that activated and ran it (a step's
    // `completed` row carries its own transaction's start), so durations are timed here: from the look
    // that first saw the step running to the look that saw it finish, within one --interval.
    const seen = new Map<string, { status: string; at: number; seenRunningAt?: number }>();
    const finished = new Set<string>();
    let first = true;
    const result = await follow(client, id, {
      intervalMs: opts.interval,
      timeoutMs: opts.timeout === undefined ? undefined : opts.timeout * 1000,
      onSnapshot: (snap) => {
        const now = Date.now();
        if (first) write(`${s.bold(id)}: ${snap.status}, ${snap.steps.length} step${snap.steps.length === 1 ? '' : 's'}`);
        first = false;
        const changed = snap.steps.filter((step) => {
          const prev = seen.get(step.node_id);
          return !prev || prev.status !== step.status || prev.at !== step.updated_at.getTime();
        });
        // Finishes before starts: one transaction completes a step and activates the next.
        for (const step of changed.filter((c) => c.status === 'completed' || c.status === 'failed')) {
          const prev = seen.get(step.node_id);
          finished.add(step.node_id);
          const took = prev?.seenRunningAt !== undefined ? `  ${duration(now - prev.seenRunningAt)}` : '';
          seen.set(step.node_id, { status: step.status, at: step.updated_at.getTime() });
          write(`  ${mark(step.status === 'completed' ? 'done' : 'failed', s)}  ${describe(step, s)}${s.dim(took)}  [${finished.size}/${snap.steps.length}]`);
        }
        for (const step of changed.filter((c) => c.status !== 'completed' && c.status !== 'failed')) {
          const running = step.status === 'running';
          seen.set(step.node_id, { status: step.status, at: step.updated_at.getTime(), seenRunningAt: running ? now : undefined });
          if (!running) continue;
          finished.delete(step.node_id);
          write(`  ${mark('started', s)}  ${describe(step, s)}`);
        }
      },
    });
    if (result.timedOut) {
      write(`${id}: still ${result.status} after ${opts.timeout} s (--timeout)`);
      return EXIT.timeout;
    }
    const end = await outcome(client, id);
    const took = end.durationMs === null ? '' : ` in ${duration(end.durationMs)}`;
    const paint = result.status === 'completed' ? s.green : result.status === 'failed' ? s.red : s.yellow;
    write(`${paint(result.status)}${took}${end.output ? `: ${clip(end.output, 200)}` : ''}`);
    return exitCodeOf(result.status);
  });
}

function mark(kind: 'started' | 'done' | 'failed', s: Style): string {
  const word = kind.padEnd(7);
  if (!s.enabled) return word;
  return kind === 'started' ? s.yellow(`▶ ${word}`) : kind === 'done' ? s.green(`✓ ${word}`) : s.red(`✗ ${word}`);
}

function describe(step: StepRow, s: Style): string {
  const name = step.result_name ? ` ${s.bold(step.result_name)} =` : '';
  return `${step.node_type.padEnd(4)} ${s.dim(step.node_id)}${name} ${clip(step.query, 60)}`;
}
