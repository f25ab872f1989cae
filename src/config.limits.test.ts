import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.ts';

describe('size limits from the environment', () => {
  it('are undefined (the built-in defaults) when unset, and parsed when set', () => {
    expect(loadConfig({})).toMatchObject({ maxResultBytes: undefined, maxResponseBytes: undefined });
    expect(loadConfig({ PGFLARE_MAX_RESULT_BYTES: '2048', PGFLARE_MAX_RESPONSE_BYTES: '1048576' })).toMatchObject({
      maxResultBytes: 2048,
      maxResponseBytes: 1048576,
    });
  });

  it.each(['0', '1023', '1073741825', 'lots', '1.5'])('refuse %s with a message naming the variable', (v) => {
    expect(() => loadConfig({ PGFLARE_MAX_RESULT_BYTES: v })).toThrow(ConfigError);
    expect(() => loadConfig({ PGFLARE_MAX_RESPONSE_BYTES: v })).toThrow(/PGFLARE_MAX_RESPONSE_BYTES/);
  });
});
