/** The HTTP step's input, its outcome and the request after substitution. */
import type { SubstitutionContext } from '../../../graph/substitute.ts';
import type { HttpConfig, HttpMultipartConfig } from '../../../graph/schema.ts';
import type { AddressCheck, EgressPolicy, Resolver } from './egress.ts';

export type NamedResults = SubstitutionContext['results'];
export type Vars = SubstitutionContext['vars'];

interface HttpStepCommon {
  nodeId: string;
  /** For substitution ({var} and $name, src/graph/substitute.ts). */
  named: NamedResults;
  vars: Vars;
  instanceId: string;
  label: string | null;
  /** Stable per step, e.g. `${instanceId}:${nodeId}:${stamp}`; sent as `Idempotency-Key`. */
  idempotencyKey: string;
  policy: EgressPolicy;
  /** Whether the owner holds EXECUTE on df.http (df.http_multipart for multipart); superusers pass. */
  canUseHttp: boolean;
  /** `submitted_by` as regrole text, for the privilege error. */
  ownerRole: string;
  /** DNS port for the resolved-address check; Workers omit it. */
  resolve?: Resolver;
  /** Injectable for tests; defaults to the global `fetch`. */
  fetch?: typeof fetch;
  /**
   * Node: builds a fetch whose connections apply the given check to the addresses they dial (closes
   * DNS rebinding, src/runtime/node/guarded-fetch.ts). Used whenever the policy checks addresses (every
   * mode but `all`); `fetch` is used otherwise. Workers have none.
   */
  guardedFetch?: (check: AddressCheck) => typeof fetch;
  /** Response body cap in bytes (after decompression). Default 10 MiB. */
  maxResponseBytes?: number;
}

export type HttpStepInput = HttpStepCommon &
  ({ nodeType: 'HTTP'; config: HttpConfig } | { nodeType: 'HTTP_MULTIPART'; config: HttpMultipartConfig });

export type StepOutcome = { ok: true; resultText: string } | { ok: false; error: string };

export interface PreparedPart {
  name: string;
  filename: string | null;
  contentType: string | null;
  dataB64: string;
}

export interface PreparedRequest {
  method: string;
  url: string;
  body: string | null;
  /** String-valued headers only, in sorted key order. */
  headers: Array<[string, string]>;
  timeoutSeconds: number;
  parts: PreparedPart[] | null;
}

/** Thrown inside the executor's helpers for a user-data failure; caught and returned as `{ ok: false, error }`. */
export class StepFailure {
  constructor(readonly error: string) {}
}
