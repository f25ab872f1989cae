/**
 * The REST API's request and response shapes, inferred from the zod schemas the server validates and
 * documents with (src/api/schemas.ts, schedules.ts, hooks.ts). Type-only imports: the client carries
 * no zod and no server code at run time.
 */
import type { z } from 'zod';
import type * as S from '../api/schemas.ts';
import type * as Sched from '../api/schedules-openapi.ts';
import type * as H from '../api/hooks-openapi.ts';

export type InstanceStatus = (typeof S.STATUSES)[number];
export type Started = z.infer<typeof S.Started>;
export type InstanceSummary = z.infer<typeof S.InstanceSummary>;
export type InstanceList = z.infer<typeof S.InstanceList>;
export type InstanceNode = z.infer<typeof S.Node>;
export type Instance = z.infer<typeof S.Instance>;
export type InstanceEvent = z.infer<typeof S.Event>;
/** Why a failed instance failed (`Instance.error`): SQLSTATE or pgflare code, message, detail, hint, node, attempt. */
export type InstanceError = z.infer<typeof S.InstanceError>;
export type ErrorBody = z.infer<typeof S.ErrorResponse>;
/** GET /v1/instances filters (every field optional; limit is the page size, default 100). */
export type ListQuery = Partial<Omit<z.output<typeof S.ListQuery>, 'cursor'>>;
export type StartBody = z.input<typeof S.StartBody>;

export type WorkflowDefined = z.infer<typeof S.WorkflowDefined>;
export type WorkflowSummary = z.infer<typeof S.WorkflowSummary>;
export type Workflow = z.infer<typeof S.Workflow>;
export type WorkflowStarted = z.infer<typeof S.WorkflowStarted>;
export type StartWorkflowBody = z.input<typeof S.StartWorkflowBody>;

export type Schedule = z.infer<typeof Sched.Schedule>;
export type ScheduleWithFires = z.infer<typeof Sched.ScheduleWithFires>;
export type CreateScheduleBody = z.input<typeof Sched.CreateScheduleBody>;
export type AlterScheduleBody = z.input<typeof Sched.AlterScheduleBody>;

export type Hook = z.infer<typeof H.HookInfo>;
export type HookCreated = z.infer<typeof H.HookCreated>;
export type HookDetail = z.infer<typeof H.HookDetail>;
export type HookDelivery = z.infer<typeof H.HookDelivery>;
export type HookSecret = z.infer<typeof H.HookSecret>;
export type CreateHookBody = z.input<typeof H.CreateHookBody>;
