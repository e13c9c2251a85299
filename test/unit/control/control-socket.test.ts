/**
 * What the router and the tools refuse to use as a control socket or its directory (issue 12,
 * item 3): anything someone else could have put there. Runs as root, like the router, so it can
 * make files owned by nobody.
 */
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkSocketToConnect, prepareSocketDirectory } from '../../../router/deploy/control-socket.ts';

const NOBODY = 65534;
let root: string;
let server: Server;
let live: string;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'vrouter-socket-'));
  live = join(root, 'live.sock');
  server = createServer();
  await new Promise<void>((resolve) => server.listen(live, resolve));
});

afterAll(() => {
  server.close();
  rmSync(root, { recursive: true, force: true });
});

function directory(name: string, mode: number, uid = 0): string {
  const dir = join(root, name);
  mkdirSync(dir);
  chmodSync(dir, mode);
  chownSync(dir, uid, 0);
  return dir;
}

describe('control socket paths', () => {
  it('takes a root-owned socket in a private directory, and in a sticky world-writable one (as /tmp)', async () => {
    expect(() => checkSocketToConnect(live)).not.toThrow();
    const inSticky = join(directory('sticky', 0o1777), 'x.sock');
    const other = createServer();
    await new Promise<void>((resolve) => other.listen(inSticky, resolve));
    expect(() => checkSocketToConnect(inSticky)).not.toThrow();
    other.close();
  });

  it.each([
    ['a missing socket', () => join(root, 'none.sock'), 'does not exist (is `vrouter run` running with this control socket?)'],
    ['a symbolic link to a socket', () => (symlinkSync(live, join(root, 'link.sock')), join(root, 'link.sock')), 'is a symbolic link: refusing to use it'],
    ['a regular file', () => (writeFileSync(join(root, 'file.sock'), ''), join(root, 'file.sock')), 'exists and is not a socket: refusing to replace it'],
    ['a socket owned by nobody', () => {
      const path = join(root, 'theirs.sock');
      const theirs = createServer().listen(path);
      chownSync(path, NOBODY, NOBODY);
      theirs.unref();
      return path;
    }, `is owned by uid ${NOBODY}, not by root or this user (uid 0): refusing to use it`],
    ['a directory owned by nobody', () => join(directory('nobodys', 0o755, NOBODY), 'x.sock'), `is owned by uid ${NOBODY}`],
    ['a directory others may write to', () => join(directory('open', 0o777), 'x.sock'), 'may be written by others (mode 0777) and is not sticky: they could replace the socket; refusing to use it'],
    ['a directory that is a symbolic link', () => (symlinkSync(root, join(root, 'linked')), join(root, 'linked', 'live.sock')), 'is a symbolic link: refusing to use it (name the directory it points to)'],
  ])('refuses %s', async (_, make, message) => {
    const path = make();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(() => checkSocketToConnect(path)).toThrow(message);
  });

  it('makes a missing directory 0700, or 0710 with the group, whatever the umask', () => {
    const previous = process.umask(0);
    try {
      prepareSocketDirectory({ path: join(root, 'made', 'x.sock'), group: null, mode: 0o600 });
      prepareSocketDirectory({ path: join(root, 'grouped', 'x.sock'), group: NOBODY, mode: 0o660 });
    } finally {
      process.umask(previous);
    }
    expect(statMode(join(root, 'made'))).toEqual({ mode: 0o700, gid: 0 });
    expect(statMode(join(root, 'grouped'))).toEqual({ mode: 0o710, gid: NOBODY });
  });
});

function statMode(path: string): { mode: number; gid: number } {
  const stats = statSync(path);
  return { mode: stats.mode & 0o7777, gid: stats.gid };
}
