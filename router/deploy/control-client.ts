/** Client side of the control socket (see control-server.ts), for the `vrouter` tools. */
import { createConnection, type Socket } from 'node:net';
import { checkSocketToConnect } from './control-socket.ts';

export class ControlError extends Error {
  readonly code = 'EVROUTERCONTROL';
  constructor(
    message: string,
    /** The code of the router's error (EVROUTERRULES: it refused the rules sent); null for a socket error. */
    readonly routerCode: string | null = null,
  ) {
    super(message);
  }
}

/**
 * Arguments every request of this process carries: the CLI sets `router` once from `--router
 * NAME`, so each tool talks to that router of a lab without passing it around.
 */
const requestDefaults: Record<string, unknown> = {};

export function setRequestDefaults(defaults: Record<string, unknown>): void {
  Object.assign(requestDefaults, defaults);
}

/** One request line, with this process's defaults (`router`). */
export function requestLine(command: string, args: Record<string, unknown>): string {
  return `${JSON.stringify({ command, args: { ...requestDefaults, ...args } })}\n`;
}

/** A socket error as the tools report it. */
export function connectionError(path: string, error: NodeJS.ErrnoException): ControlError {
  const hint = error.code === 'ENOENT' || error.code === 'ECONNREFUSED' ? ' (is `vrouter run` running with this control socket?)' : '';
  return new ControlError(`control socket ${path}: ${error.message}${hint}`);
}

/**
 * Connects to the router's socket, once it and its directory are ones nobody else could have put
 * there (control-socket.ts): nothing is sent to a listener someone planted. Throws ControlError.
 */
export function connectControl(path: string): Socket {
  try {
    checkSocketToConnect(path);
  } catch (error) {
    throw new ControlError((error as Error).message);
  }
  return createConnection(path);
}

/** A reply line: a result, the router's refusal, or (to a listener) how many events it lost. */
interface ReplyLine {
  ok: boolean;
  result?: unknown;
  error?: string;
  /** The code of the router's error (EVROUTERRULES: it refused the rules sent). */
  code?: string;
  errno?: string;
  lost?: number;
}

/**
 * Sends one request and calls `onResult` for every result line until the router closes the
 * connection (one line for one-shot commands, one per event for streaming ones). A listener that
 * fell behind is told how many events it lost (`onLost`; the router's ENOBUFS) and goes on.
 * Resolves when the connection ends; rejects with the router's error message or a socket error.
 */
export function controlRequest(
  path: string,
  command: string,
  args: Record<string, unknown>,
  onResult: (result: unknown) => void,
  onLost: (lost: number) => void = () => {},
): { done: Promise<void>; cancel: () => void } {
  let socket: Socket;
  try {
    socket = connectControl(path);
  } catch (error) {
    return { done: Promise.reject(error as Error), cancel: () => {} };
  }
  const done = new Promise<void>((resolve, reject) => {
    let buffered = '';
    let failed: Error | null = null;
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(requestLine(command, args)));
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        let message: ReplyLine;
        try {
          message = JSON.parse(line) as ReplyLine;
        } catch {
          failed = new ControlError(`control socket ${path}: the router's reply is not JSON`);
          socket.destroy();
          return;
        }
        if (message.ok) onResult(message.result);
        else if (message.errno === 'ENOBUFS') onLost(message.lost ?? 0);
        else failed = new ControlError(message.error ?? 'request failed', message.code ?? null);
      }
    });
    socket.on('error', (error: NodeJS.ErrnoException) => reject(connectionError(path, error)));
    socket.on('close', () => (failed ? reject(failed) : resolve()));
  });
  return { done, cancel: () => socket.end() };
}

/** A one-shot command's single result. */
export async function controlCall(path: string, command: string, args: Record<string, unknown> = {}): Promise<unknown> {
  let answer: unknown;
  await controlRequest(path, command, args, (result) => (answer = result)).done;
  return answer;
}
