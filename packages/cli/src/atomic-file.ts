import { randomBytes } from 'node:crypto';
import { createWriteStream, renameSync, rmSync, writeFileSync, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import { basename, dirname, join } from 'node:path';
import { CliError, EXIT } from './exit-codes.ts';

/** a temporary name beside `path` (same folder, so the rename stays on one file system) */
function tempBeside(path: string): string {
  return join(dirname(path), `.${basename(path)}.${String(process.pid)}-${randomBytes(4).toString('hex')}.tmp`);
}

/**
 * An output file that appears complete or not at all: written to a temporary file beside it and
 * renamed over it by `commit()`. `abort()` (any failure before the commit) removes the temporary
 * file, so an existing file at `path` is left as it was, never emptied or half-written.
 */
export interface AtomicFile {
  readonly stream: WriteStream;
  commit(): Promise<void>;
  abort(): void;
}

export async function openAtomic(path: string, what: string): Promise<AtomicFile> {
  const tmp = tempBeside(path);
  const stream = createWriteStream(tmp, { flags: 'wx' });
  let failure: Error | undefined;
  stream.on('error', (e) => {
    failure ??= e;
  });
  try {
    await once(stream, 'open');
  } catch (e) {
    throw new CliError(EXIT.USAGE, `cannot write ${what} ${path}: ${(e as Error).message}`);
  }
  let done = false;
  const abort = (): void => {
    if (done) return;
    done = true;
    stream.destroy();
    rmSync(tmp, { force: true });
  };
  const commit = async (): Promise<void> => {
    stream.end();
    if (failure === undefined) {
      try {
        await once(stream, 'finish');
      } catch (e) {
        failure ??= e as Error;
      }
    }
    if (failure !== undefined) {
      abort();
      throw new CliError(EXIT.FAILED, `cannot write ${what} ${path}: ${failure.message}`);
    }
    renameSync(tmp, path);
    done = true;
  };
  return { stream, commit, abort };
}

/** writeFileSync, atomically: the text goes to a temporary file beside `path`, renamed over it. */
export function writeFileAtomic(path: string, text: string): void {
  const tmp = tempBeside(path);
  try {
    writeFileSync(tmp, text, { flag: 'wx' });
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}
