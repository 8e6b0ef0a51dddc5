/**
 * The last resort of a process that serves Mandate. The real defence is a listener on every
 * database client and pool (store-postgres has one on each, for as long as it holds it); this is
 * for the one a future change forgets. A database connection error that reaches no listener is
 * logged and the node carries on: the driver has already failed that connection's statements (so
 * they were denies) and drops the connection. Anything else uncaught stays fatal, as Node would
 * have it, after one log line.
 */
import { unavailableCause } from '@mandate/store-postgres';

export interface SafetyNetLog {
  error(obj: object, msg: string): void;
}

export type UncaughtHandler = (error: unknown, origin: string) => void;

/** the handler itself (tests call it directly); `exit` ends the process on anything else */
export function uncaughtHandler(log: SafetyNetLog, exit: (code: number) => void): UncaughtHandler {
  return (error, origin) => {
    const cause = unavailableCause(error);
    if (cause !== undefined) {
      log.error({ cause, origin }, 'a database connection error reached no listener; the connection is dropped and this node carries on');
      return;
    }
    log.error({ err: error, origin }, 'uncaught exception; stopping');
    exit(1);
  };
}

/** installs the handler on this process; returns how to remove it */
export function installSafetyNet(log: SafetyNetLog, exit: (code: number) => void = (code) => process.exit(code)): () => void {
  const handler = uncaughtHandler(log, exit);
  process.on('uncaughtException', handler);
  return () => {
    process.off('uncaughtException', handler);
  };
}
