/**
 * Where `mandate serve` writes its log (pino's lines: the access log and the runtime's own): the
 * first line of a turn of the event loop goes to the writer at once, the others that turn writes
 * follow together at its end, instead of one at a time.
 *
 * pino's writer (sonic-boom, asynchronous) appends each line to the text still waiting for the
 * disk and measures that whole text again to do it (`Buffer.byteLength` of a string that grows,
 * so quadratic in the lines waiting). Under load a write is nearly always in flight: measured at
 * 50 connections, that was the largest single allocation of a decision request (~6.5 KiB of
 * ~59). Handed at most two chunks per turn, it measures at most twice per turn. One call at a
 * time, each line still leaves when it is written, as before.
 *
 * Nothing else changes: the same bytes, in the same order, through the same writer (which still
 * writes off the event loop and copes with a full pipe). A line waits at most for the end of the
 * turn that wrote it; the process's exit (a fatal error included) writes what is left.
 */
import { pino } from 'pino';

/** what takes the joined lines (sonic-boom, or a test's array) */
export interface LineWriter {
  write(chunk: string): unknown;
  /** writes everything still buffered before returning (at exit) */
  flushSync?(): void;
}

export interface TurnLines {
  /** pino's stream interface: one line, newline included */
  write(line: string): void;
  /** hands every line written so far to the writer now */
  flush(): void;
}

/**
 * The first line of a turn reaches `out` at once; the rest of that turn's lines as one chunk at
 * its end (`schedule`), so that every line still leaves in the order it was written.
 */
export function linesPerTurn(out: LineWriter, schedule: (fn: () => void) => void = setImmediate): TurnLines {
  let lines: string[] = [];
  /** a line went out this turn: later ones wait for its end */
  let turnStarted = false;
  const flush = (): void => {
    turnStarted = false;
    if (lines.length === 0) return;
    const chunk = lines.length === 1 ? (lines[0] as string) : lines.join('');
    lines = [];
    out.write(chunk);
  };
  return {
    write(line) {
      if (turnStarted) {
        lines.push(line);
        return;
      }
      out.write(line);
      turnStarted = true;
      schedule(flush);
    },
    flush,
  };
}

/**
 * Standard output as `linesPerTurn` over pino's own writer for it. `close` hands over what is
 * left and stops watching the process's exit (a server closed, the process carries on).
 */
export function stdoutLines(): { readonly stream: TurnLines; close(): void } {
  const held: { lines?: TurnLines; out?: LineWriter } = {};
  // at exit (a fatal error's process.exit too), the last turn's lines go to the writer, which
  // writes them synchronously. Watched before the writer exists: pino's own exit hook, which
  // also flushes the writer, is then registered after this one and runs after it
  const atExit = (): void => {
    held.lines?.flush();
    try {
      held.out?.flushSync?.();
    } catch {
      // a closed or broken standard output: nothing left to write to
    }
  };
  process.on('exit', atExit);
  const out = pino.destination({ dest: 1, sync: false });
  const lines = linesPerTurn(out);
  held.out = out;
  held.lines = lines;
  return {
    stream: lines,
    close() {
      lines.flush();
      process.off('exit', atExit);
    },
  };
}
