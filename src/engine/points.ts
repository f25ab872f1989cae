/**
 * Named crash points (STYLE §6, DBOS debug points). The engine calls `hit` at each; by default nothing
 * happens. Tests inject a handler that throws or kills the connection to prove what survives a crash
 * at exactly that place.
 */
export type CrashPoint =
  /** a row is claimed (locked) and the transaction is open */
  | 'after-claim'
  /** a transactional step's SQL ran; its checkpoint is written but not committed */
  | 'before-commit'
  /** the checkpoint committed; newly ready nodes are not dispatched yet */
  | 'after-commit'
  /** a lease-path step (HTTP, non-transactional SQL) committed its lease and is about to run */
  | 'after-lease'
  /** a lease-path step ran (the HTTP request was answered); its checkpoint has not started */
  | 'after-effect';

export interface PointContext {
  instanceId: string;
  nodeId: string;
}

export type PointHandler = (point: CrashPoint, ctx: PointContext) => void | Promise<void>;

export const noPoints: PointHandler = () => undefined;
