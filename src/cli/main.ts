#!/usr/bin/env node
/**
 * The `pgflare` binary (package.json `bin`, compiled to dist/cli/main.js). `pgflare --help` lists the
 * commands; src/cli/program.ts defines them.
 */
import { readFileSync } from 'node:fs';
import { CommanderError } from 'commander';
import { createProgram, EXIT, UsageError } from './program.ts';
import { describeError } from './errors.ts';

// package.json sits two levels up from both src/cli/main.ts and dist/cli/main.js.
const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

async function main(argv: string[]): Promise<number> {
  let action: Promise<number> | undefined;
  const program = createProgram(version, (code) => {
    action = code;
  });
  const command = () => program.args[0] ?? '';
  try {
    await program.parseAsync(argv);
    return action ? await action : EXIT.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander has printed the message or the help already. Help that was asked for exits 0; help
      // shown because no command was given, and every parse error, exit EXIT.usage.
      const asked = err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || (err.code === 'commander.help' && err.exitCode === 0);
      return asked ? EXIT.ok : EXIT.usage;
    }
    if (err instanceof UsageError) {
      process.stderr.write(`pgflare ${command()}: ${err.message}\n`);
      return EXIT.usage;
    }
    process.stderr.write(`pgflare ${command()}: ${describeError(err)}\n`);
    return EXIT.error;
  }
}

// Exit explicitly: a lingering handle (a pool's idle timer, a child's pipe) must not keep a finished
// command alive or change its exit status.
main(process.argv).then((code) => process.exit(code));
