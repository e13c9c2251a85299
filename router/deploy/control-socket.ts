/**
 * Where the control socket lives and who may use it. Whoever can connect can replace the rules
 * and flush the connection table (what the kernel asks CAP_NET_ADMIN for), so:
 *
 *   - the router makes the socket with its mode (0600 by default, owner the router's user, root)
 *     whatever the umask, and gives it the configured group, if any;
 *   - it makes a missing directory 0700 (0710 with a group: the group may reach the socket, not
 *     list or change the directory), by default /run/vrouter, which only root can write;
 *   - router and tools refuse a socket, or a directory holding it, that someone else could have
 *     put there: a symbolic link, not owned by root or the running user, or a directory others
 *     may write to without the sticky bit (in /tmp, others cannot remove or replace our socket).
 *
 * Only the socket and its own directory are checked (lstat: nothing is followed there); the
 * directories above it are the administrator's.
 */
import { chmodSync, chownSync, lstatSync, mkdirSync, type Stats } from 'node:fs';
import { dirname } from 'node:path';

export const DEFAULT_CONTROL_SOCKET = '/run/vrouter/vrouter.sock';
export const DEFAULT_SOCKET_MODE = 0o600;
export const DEFAULT_GROUP_SOCKET_MODE = 0o660;
/** Bits a socket's mode may have: the owner's and the group's, never others'. */
export const ALLOWED_SOCKET_MODE = 0o770;

export interface ControlSocketSpec {
  path: string;
  /** gid the socket (and a directory made for it) is given, or null for the router's own group. */
  group: number | null;
  mode: number;
}

export function controlSocketAt(path: string): ControlSocketSpec {
  return { path, group: null, mode: DEFAULT_SOCKET_MODE };
}

export class ControlSocketError extends Error {
  readonly code = 'EVROUTERSOCKET';
}

const STICKY = 0o1000;
const WRITABLE_BY_OTHERS = 0o022;

function myUid(): number {
  return process.getuid?.() ?? 0;
}

function trusted(stats: Stats): boolean {
  return stats.uid === 0 || stats.uid === myUid();
}

function octal(mode: number): string {
  return `0${(mode & 0o7777).toString(8)}`;
}

function ownerRefusal(what: string, stats: Stats): string {
  return `${what} is owned by uid ${stats.uid}, not by root or this user (uid ${myUid()}): refusing to use it (remove it if no router of yours made it)`;
}

function lstatOrNull(path: string): Stats | null {
  try {
    return lstatSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new ControlSocketError(`control socket ${path}: ${(error as Error).message}`);
  }
}

/** Refuses a directory someone else could have made or could change under us. */
export function checkSocketDirectory(dir: string): void {
  const stats = lstatOrNull(dir);
  const what = `control socket directory ${dir}`;
  if (!stats) throw new ControlSocketError(`${what} does not exist`);
  if (stats.isSymbolicLink()) throw new ControlSocketError(`${what} is a symbolic link: refusing to use it (name the directory it points to)`);
  if (!stats.isDirectory()) throw new ControlSocketError(`${what} is not a directory`);
  if (!trusted(stats)) throw new ControlSocketError(ownerRefusal(what, stats));
  if ((stats.mode & WRITABLE_BY_OTHERS) !== 0 && (stats.mode & STICKY) === 0) {
    throw new ControlSocketError(`${what} may be written by others (mode ${octal(stats.mode)}) and is not sticky: they could replace the socket; refusing to use it`);
  }
}

/**
 * Whether a socket is at `path`, refusing anything else there (a file, a link) and a socket
 * someone else made (a listener planted to read what the tools send, or to block the router).
 */
export function checkSocketFile(path: string): boolean {
  const stats = lstatOrNull(path);
  if (!stats) return false;
  const what = `control socket ${path}`;
  if (stats.isSymbolicLink()) throw new ControlSocketError(`${what} is a symbolic link: refusing to use it`);
  if (!stats.isSocket()) throw new ControlSocketError(`${what} exists and is not a socket: refusing to replace it`);
  if (!trusted(stats)) throw new ControlSocketError(ownerRefusal(what, stats));
  return true;
}

/** The tools' side: the socket and its directory must be trustworthy before anything is sent. */
export function checkSocketToConnect(path: string): void {
  checkSocketDirectory(dirname(path));
  if (!checkSocketFile(path)) throw new ControlSocketError(`control socket ${path} does not exist (is \`vrouter run\` running with this control socket?)`);
}

/** The router's side: makes a missing directory (0700, or 0710 for the group), then checks it. */
export function prepareSocketDirectory(spec: ControlSocketSpec): void {
  const dir = dirname(spec.path);
  let made = false;
  try {
    mkdirSync(dir, { mode: 0o700 });
    made = true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EEXIST') throw new ControlSocketError(`cannot make the control socket directory ${dir}: ${(error as Error).message}`);
  }
  if (made && spec.group !== null) {
    chownSync(dir, myUid(), spec.group);
    chmodSync(dir, 0o710);
  }
  checkSocketDirectory(dir);
}

/**
 * Runs `bind` (Node's listen on a path binds before it returns, which creates the socket file)
 * with a umask that leaves only the owner's bits, so the socket is never reachable by others, not
 * even until applySocketAccess gives it its mode and group.
 */
export function bindOwnerOnly(bind: () => void): void {
  const previous = process.umask(0o177);
  try {
    bind();
  } finally {
    process.umask(previous);
  }
}

export function applySocketAccess(spec: ControlSocketSpec): void {
  if (spec.group !== null) chownSync(spec.path, myUid(), spec.group);
  chmodSync(spec.path, spec.mode);
}
