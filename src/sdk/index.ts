/**
 * pgflare's TypeScript SDK: the typed graph builder and the REST client. Runs in Workers, Node and
 * browsers (no `node:` imports; the client needs only `fetch`).
 */
export {
  Step,
  envelope,
  fromGraph,
  isStep,
  startQuery,
  join,
  loop,
  race,
  seq,
  sql,
  toStep,
  when,
  whenRows,
  type BindsOf,
  type Closed,
  type GraphNode,
  type GraphOptions,
  type RefsOf,
  type StepLike,
} from './builder.ts';
export { breakLoop, http, httpMultipart, sleep, waitForSchedule, waitForSignal, type HttpMethod, type HttpMultipartOptions, type HttpOptions, type MultipartPart } from './steps.ts';
export { toSeconds, type Duration } from './duration.ts';
export type { RefsIn, Unbound } from './names.ts';
export { createClient, type Checked, type InstancePages, type PgflareClient, type StartOptions, type WaitOptions, type WorkflowInput } from './client.ts';
export { PgflareError, PgflareTimeoutError, type ClientOptions, type FetchLike } from './transport.ts';
export type { InstanceStreamItem, StreamOptions } from './stream.ts';
export type * from './api-types.ts';
