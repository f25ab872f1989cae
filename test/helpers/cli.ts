/**
 * The compiled `pgflare` binary for tests: `tsc -p tsconfig.build.json` into a private directory under
 * .test-build/ (inside the repository, so node_modules resolves), once per test file, removed afterwards.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';

export const ROOT = join(import.meta.dirname, '../..');
export const TSC = join(ROOT, 'node_modules/typescript/bin/tsc');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface Cli {
  /** Path of the compiled dist/cli/main.js. */
  readonly bin: string;
  run(args: string[], env?: Record<string, string | undefined>): Promise<CliResult>;
  spawn(args: string[], env?: Record<string, string | undefined>): Running;
}

export interface Running {
  child: ChildProcess;
  /** Resolves with all stdout so far once it matches `pattern`; rejects if the process exits first or 20 s pass. */
  waitFor(pattern: RegExp): Promise<string>;
  exit(): Promise<CliResult>;
}

/** Env for the child: no colour forcing from the parent, no inherited DATABASE_URL unless given. */
function childEnv(env: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const base: NodeJS.ProcessEnv = { ...process.env, FORCE_COLOR: undefined, NO_COLOR: undefined, DATABASE_URL: undefined };
  return Object.fromEntries(Object.entries({ ...base, ...env }).filter(([, v]) => v !== undefined)) as NodeJS.ProcessEnv;
}

export function useCli(): Cli {
  // A package-shaped directory: dist/ beside a copy of package.json (the CLI reads its version there).
  const dir = join(ROOT, '.test-build', randomBytes(4).toString('hex'));
  const bin = join(dir, 'dist/cli/main.js');
  beforeAll(() => {
    execFileSync(process.execPath, [TSC, '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', join(dir, 'dist')], { cwd: ROOT, stdio: 'inherit' });
    copyFileSync(join(ROOT, 'package.json'), join(dir, 'package.json'));
  }, 120_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  return {
    bin,
    run(args, env = {}) {
      return new Promise((resolve) => {
        execFile(process.execPath, [bin, ...args], { env: childEnv(env), cwd: ROOT }, (err, stdout, stderr) => {
          resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr });
        });
      });
    },
    spawn(args, env = {}) {
      const child = spawn(process.execPath, [bin, ...args], { env: childEnv(env), cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      const listeners = new Set<() => void>();
      child.stdout!.on('data', (d) => {
        stdout += d;
        for (const l of [...listeners]) l();
      });
      child.stderr!.on('data', (d) => (stderr += d));
      const exited = new Promise<CliResult>((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
      return {
        child,
        waitFor(pattern) {
          return new Promise((resolve, reject) => {
            // A bound, so a missing line fails with what was printed instead of the test's time-out.
            const timer = setTimeout(() => reject(new Error(`no ${pattern} within 20 s; stdout:\n${stdout}\nstderr:\n${stderr}`)), 20_000);
            const check = () => {
              if (pattern.test(stdout)) {
                listeners.delete(check);
                clearTimeout(timer);
                resolve(stdout);
              }
            };
            listeners.add(check);
            check();
            void exited.then((r) => {
              clearTimeout(timer);
              if (!pattern.test(r.stdout)) reject(new Error(`exited ${r.code} before printing ${pattern}:\n${r.stdout}\n${r.stderr}`));
            });
          });
        },
        exit: () => exited,
      };
    },
  };
}
