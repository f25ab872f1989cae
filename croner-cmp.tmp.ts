import { Cron } from 'croner';
import { nextFireInZone } from './src/graph/cron.ts';
const exprs = [
  '* * * * *', '*/7 * * * *', '0 9 * * 1-5', '30 2 * * *', '30 1 * * *', '0 0 1 * MON', '15 */5 * * *',
  '0 0 29 2 *', '0 0 30 2 *', '@weekly', '@hourly', '5 4 * 2 *', '0,30 2,3 * * 0', '0 0 13 * 5', '59 23 31 * *',
  '*/15 2,3 * * *', '0 12 * jan-mar,dec sun', '0 3 * * 7', '1-59/29 0-23/6 1-10 * *',
];
const zones = ['UTC', 'America/New_York', 'Europe/Berlin', 'Australia/Lord_Howe', 'Asia/Kolkata', 'America/Sao_Paulo'];
const afters = [
  '2024-03-10T06:50:00Z', '2024-11-03T05:29:00Z', '2024-11-03T06:10:30Z', '2024-03-31T00:59:00Z',
  '2024-10-27T00:30:00Z', '2024-10-06T15:10:00Z', '2024-04-06T14:45:00Z', '2024-02-28T23:59:59Z',
  '2025-12-31T23:59:00Z',
];
let diff = 0, n = 0;
const t0 = performance.now();
for (const e of exprs) for (const z of zones) for (const a of afters) {
  n++;
  const ours = nextFireInZone(e, new Date(a), z)?.toISOString() ?? null;
  let theirs: string | null;
  try { theirs = new Cron(e, { timezone: z, mode: '5-part' }).nextRun(new Date(a))?.toISOString() ?? null; } catch (err) { theirs = 'ERR ' + (err as Error).message; }
  if (ours !== theirs) { diff++; if (diff < 40) console.log(e, z, a, 'ours', ours, 'croner', theirs); }
}
console.log('n', n, 'diff', diff, 'ms', Math.round(performance.now() - t0));
