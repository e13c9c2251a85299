/**
 * Reading the files a user names (configs, labs, scenarios, rules): only a regular file, and at
 * most MAX_INPUT_BYTES of it, so that `rules: /dev/zero` or a FIFO nobody writes to is refused
 * at once instead of reading without end or blocking.
 */
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';

/** Far above any real config or rules file (a 100,000-rule ruleset is some 6 MiB). */
export const MAX_INPUT_BYTES = 16 * 1024 * 1024;

/** Why a file cannot be read, as a phrase to follow "cannot read the ... file: ". */
export class InputFileError extends Error {
  readonly code = 'EVROUTERINPUT';
}

function kindOf(stats: Stats): string {
  if (stats.isDirectory()) return 'a directory';
  if (stats.isCharacterDevice()) return 'a character device';
  if (stats.isBlockDevice()) return 'a block device';
  if (stats.isFIFO()) return 'a FIFO';
  if (stats.isSocket()) return 'a socket';
  return 'something else';
}

function tooBig(): InputFileError {
  return new InputFileError(`it is larger than ${MAX_INPUT_BYTES / (1024 * 1024)} MiB`);
}

/** The file's text; throws InputFileError (not found, not regular, too big) with a short reason. */
export function readInputFile(path: string): string {
  let fd: number;
  try {
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    throw new InputFileError((error as Error).message);
  }
  try {
    const stats = fstatSync(fd);
    if (!stats.isFile()) throw new InputFileError(`it is ${kindOf(stats)}, not a regular file`);
    if (stats.size > MAX_INPUT_BYTES) throw tooBig();
    // One byte more than allowed, to see a file that grew since fstat.
    const buffer = Buffer.alloc(Math.min(stats.size, MAX_INPUT_BYTES) + 1);
    let length = 0;
    while (length < buffer.length) {
      const got = readSync(fd, buffer, length, buffer.length - length, null);
      if (got === 0) break;
      length += got;
    }
    if (length > MAX_INPUT_BYTES) throw tooBig();
    return buffer.toString('utf8', 0, length);
  } finally {
    closeSync(fd);
  }
}

/** Standard input to its end, at most MAX_INPUT_BYTES (it may be a pipe or a terminal). */
export async function readInputStream(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of stream) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    length += bytes.length;
    if (length > MAX_INPUT_BYTES) throw tooBig();
    chunks.push(bytes);
  }
  return Buffer.concat(chunks).toString('utf8');
}
