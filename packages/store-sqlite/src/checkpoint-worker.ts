/**
 * The WAL checkpointer, on its own thread and connection (see checkpoints in index.ts). SQLite's
 * automatic checkpoint runs inside whichever commit crosses the threshold: it copies the WAL
 * into the database and syncs both, holding the event loop for milliseconds. Here a PASSIVE
 * checkpoint runs every `intervalMs` instead: it copies what no reader still needs, never
 * blocks a writer, and the writer then reuses the WAL from its start.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { DatabaseSync } from 'node:sqlite';

interface Settings {
  readonly path: string;
  readonly intervalMs: number;
}

const settings = workerData as Settings;
const db = new DatabaseSync(settings.path);
db.exec('PRAGMA busy_timeout = 0');
const checkpoint = db.prepare('PRAGMA wal_checkpoint(PASSIVE)');
let runs = 0;
let frames = 0;

const timer = setInterval(() => {
  try {
    const r = checkpoint.get() as { busy: number; log: number; checkpointed: number } | undefined;
    runs += 1;
    if (r && r.checkpointed > 0) {
      frames += r.checkpointed;
      parentPort?.postMessage({ kind: 'checkpointed', runs, frames, log: r.log, checkpointed: r.checkpointed });
    }
  } catch (e) {
    parentPort?.postMessage({ kind: 'error', message: e instanceof Error ? e.message : String(e) });
  }
}, settings.intervalMs);

parentPort?.on('message', (m: unknown) => {
  if (m === 'stop') {
    clearInterval(timer);
    db.close();
    parentPort?.close();
  }
});
