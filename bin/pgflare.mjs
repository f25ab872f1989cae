#!/usr/bin/env node
// The CLI from source, for a clone of this repository (tsx is a dev dependency): the tests that spawn a
// worker and `npm run pgflare` use it. The published package's `bin` is the compiled dist/cli/main.js.
import { register } from 'tsx/esm/api';
register();
await import('../src/cli/main.ts');
