import { describe, expect, it } from 'vitest';
import { createLogger, parseLogFormat } from './log.ts';

const capture = (format: 'json' | 'text', level: 'debug' | 'info' = 'info') => {
  const lines: string[] = [];
  return { lines, log: createLogger(level, (l) => lines.push(l), format) };
};

describe('logger', () => {
  it('json: one object per line with time, level, msg and the fields', () => {
    const { lines, log } = capture('json');
    const err = Object.assign(new Error('boom'), { code: '22012' });
    log.warn('step failed', { instance_id: 'abcd1234', node_id: 'n1', attempt: 2, error: err, skipped: undefined, msg: 'clash' });
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toContain('\n');
    const o = JSON.parse(lines[0]);
    expect(Object.keys(o).slice(0, 3)).toEqual(['time', 'level', 'msg']);
    expect(o).toEqual({
      time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      level: 'warn',
      msg: 'step failed',
      instance_id: 'abcd1234',
      node_id: 'n1',
      attempt: 2,
      error: 'boom',
      error_code: '22012',
      field_msg: 'clash',
    });
  });

  it('text: time, level, msg, key=value', () => {
    const { lines, log } = capture('text');
    log.info('schedule fired', { schedule: 'nightly run', n: 3 });
    expect(lines[0]).toMatch(/^\S+Z info  schedule fired schedule="nightly run" n=3$/);
  });

  it('drops lines below the level', () => {
    const { lines, log } = capture('json', 'info');
    log.debug('step', { instance_id: 'x' });
    expect(lines).toEqual([]);
  });

  it('parses PGFLARE_LOG_FORMAT', () => {
    expect(parseLogFormat(' JSON ')).toBe('json');
    expect(parseLogFormat(undefined)).toBeUndefined();
    expect(() => parseLogFormat('yaml')).toThrow(/PGFLARE_LOG_FORMAT/);
  });
});
