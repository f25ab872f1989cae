/**
 * CPU time of the bench server and of this process, read from /proc: on the shared 2-core machine the
 * wall time of one call moves with everything else running, its CPU time much less (bench/README.md,
 * "Profiling one build").
 */
import { readdirSync, readFileSync } from 'node:fs';
import type pg from 'pg';

/** utime + stime (+ the reaped children's with `children`) of a process, in seconds, and its parent. */
function stat(pid: number | string, children = false): { ppid: number; s: number } {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
    // fields after the command: state(0) ppid(1) … utime(11) stime(12) cutime(13) cstime(14)
    const ticks = Number(rest[11]) + Number(rest[12]) + (children ? Number(rest[13]) + Number(rest[14]) : 0);
    return { ppid: Number(rest[1]), s: ticks / 100 };
  } catch {
    return { ppid: -1, s: 0 };
  }
}

/** The server process (postmaster) of the session `c`. */
export async function postmasterOf(c: pg.Client): Promise<number> {
  const pid = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;
  return stat(pid).ppid;
}

/** CPU seconds of the whole server so far: the postmaster, its live backends and reaped ones. */
export function serverCpu(postmaster: number): number {
  let total = stat(postmaster, true).s;
  for (const pid of readdirSync('/proc')) {
    if (/^\d+$/.test(pid) && stat(pid).ppid === postmaster) total += stat(pid).s;
  }
  return total;
}

/** CPU seconds of one backend so far. */
export const backendCpu = (pid: number) => stat(pid).s;

/** This process's CPU seconds so far. */
export function nodeCpu(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}
