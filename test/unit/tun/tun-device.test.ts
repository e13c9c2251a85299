// Real TUN devices in a namespace this file creates (needs root). Every address used lives in
// that namespace: packets leave it only through the TUN, to this process.
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { constants } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TunDevice, type TunOptions } from '../../../router/deploy/tun/tun-device.ts';

const run = promisify(execFile);
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const ns = `vrt-tun-${process.pid}-${randomBytes(3).toString('hex')}`;
const opened: TunDevice[] = [];

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Unique, <= 15 chars. */
function tunName(tag: string): string {
  return `vt${tag}${process.pid.toString(36)}${randomBytes(2).toString('hex')}`;
}

function openTun(tag: string, options?: TunOptions): TunDevice {
  const dev = TunDevice.open(tunName(tag), options);
  opened.push(dev);
  return dev;
}

/** Moves dev into the namespace as 10.200.subnet.2/24; 10.200.subnet.1 is "beyond the TUN". */
function plugIntoNamespace(dev: TunDevice, subnet: number): void {
  ip('link', 'set', dev.name, 'netns', ns);
  ip('-n', ns, 'addr', 'add', `10.200.${subnet}.2/24`, 'dev', dev.name);
  ip('-n', ns, 'link', 'set', dev.name, 'up');
}

function ping(target: string, ...opts: string[]): Promise<unknown> {
  return run('ip', ['netns', 'exec', ns, 'ping', '-n', ...opts, target]);
}

/** Sends `count` unanswered echo requests back to back while the event loop is blocked. */
function pingBlocking(target: string, count: number): void {
  try {
    execFileSync('ip', ['netns', 'exec', ns, 'ping', '-n', '-q', '-c', String(count), '-i', '0', '-W', '0.1', target], {
      stdio: 'ignore',
    });
  } catch {
    // no replies: ping exits 1
  }
}

function packets(slab: Buffer, lengths: Int32Array, count: number, dev: TunDevice): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const start = i * dev.slotSize + dev.headerLength;
    out.push(Buffer.from(slab.subarray(start, start + lengths[i]!)));
  }
  return out;
}

const addr = (p: Buffer, at: number) => [...p.subarray(at, at + 4)].join('.');

function isEchoRequest(p: Buffer, dst: string): boolean {
  return p.length >= 28 && p[0] === 0x45 && p[9] === 1 && addr(p, 16) === dst && p[20] === 8;
}

function checksum(b: Buffer): number {
  let sum = 0;
  for (let i = 0; i < b.length; i += 2) sum += (b[i]! << 8) | (b[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** The echo reply the pinged host would send (20-byte IPv4 header, as ping sends). */
function echoReply(request: Buffer): Buffer {
  const r = Buffer.from(request);
  request.copy(r, 12, 16, 20);
  request.copy(r, 16, 12, 16);
  r[20] = 0;
  r.writeUInt16BE(0, 22);
  r.writeUInt16BE(checksum(r.subarray(20)), 22);
  r.writeUInt16BE(0, 10);
  r.writeUInt16BE(checksum(r.subarray(0, 20)), 10);
  return r;
}

async function waitFor(cond: () => boolean, ms = 3000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Runs an ES module in a fresh node (with tsx); `TunDevice`, `execFileSync`, NS and TUN are in scope. */
async function runChild(body: string, nodeFlags: string[] = []): Promise<string[]> {
  const code = `
    import { execFileSync, spawn } from 'node:child_process';
    import { TunDevice } from ${JSON.stringify(resolve(repoRoot, 'router/deploy/tun/tun-device.ts'))};
    const { NS, TUN } = process.env;
    setTimeout(() => process.exit(3), 10000).unref();
    ${body}
  `;
  const { stdout } = await run(process.execPath, [...nodeFlags, '--import', 'tsx', '--input-type=module', '-e', code], {
    cwd: repoRoot,
    env: { ...process.env, NS: ns, TUN: tunName('x') },
  });
  return stdout.split('\n').filter(Boolean);
}

beforeAll(() => {
  ip('netns', 'add', ns);
  // No IPv6 on devices moved in: only the IPv4 packets a test sends come out of its TUN.
  execFileSync('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv6.conf.default.disable_ipv6=1']);
});

afterEach(() => {
  for (const dev of opened.splice(0)) dev.close();
});

afterAll(() => {
  for (const dev of opened.splice(0)) dev.close();
  ip('netns', 'del', ns);
});

describe('TunDevice', () => {
  it('delivers a packet the namespace sends out of the TUN', async () => {
    const dev = openTun('r');
    expect(dev.headerLength).toBe(0);
    plugIntoNamespace(dev, 1);
    const seen: Buffer[] = [];
    dev.start((slab, lengths, count) => {
      expect(count).toBeGreaterThan(0);
      seen.push(...packets(slab, lengths, count, dev).filter((p) => isEchoRequest(p, '10.200.1.1')));
    });
    await ping('10.200.1.1', '-c', '1', '-W', '1').catch(() => undefined); // nobody answers
    expect(seen).toHaveLength(1);
    expect(addr(seen[0]!, 12)).toBe('10.200.1.2');
    expect(seen[0]!.readUInt16BE(2)).toBe(seen[0]!.length); // IPv4 total length = slot length
  });

  for (const vnetHeader of [false, true]) {
    it(`write() injects a packet the namespace receives (vnetHeader: ${vnetHeader})`, async () => {
      const subnet = vnetHeader ? 3 : 2;
      const dev = openTun(vnetHeader ? 'v' : 'w', { vnetHeader });
      expect(dev.headerLength).toBe(vnetHeader ? 12 : 0);
      plugIntoNamespace(dev, subnet);
      const written: number[] = [];
      dev.start((slab, lengths, count) => {
        for (const p of packets(slab, lengths, count, dev)) {
          if (isEchoRequest(p, `10.200.${subnet}.1`)) written.push(dev.write(echoReply(p)));
        }
      });
      // ping exits non-zero unless our reply reached it inside the namespace.
      await ping(`10.200.${subnet}.1`, '-c', '1', '-W', '2');
      expect(written).toEqual([84]); // 20 IP + 8 ICMP + 56 data
    });
  }

  it('drains at most batchSize packets per handler call', async () => {
    const dev = openTun('b', { batchSize: 4, slotSize: 2048 });
    plugIntoNamespace(dev, 4);
    const counts: number[] = [];
    let requests = 0;
    dev.start((slab, lengths, count) => {
      counts.push(count);
      requests += packets(slab, lengths, count, dev).filter((p) => isEchoRequest(p, '10.200.4.1')).length;
    });
    pingBlocking('10.200.4.1', 20); // all 20 are queued in the TUN when the loop runs again
    await waitFor(() => requests === 20);
    expect(Math.max(...counts)).toBe(4);
  });

  it('runs nextTicks and microtasks after each batch, before any other I/O callback', async () => {
    // Two devices readable in the same loop iteration: only a callback scope around each batch
    // makes A's ticks run before B's batch.
    const events: string[] = [];
    for (const subnet of [7, 8]) {
      const dev = openTun(String(subnet), { batchSize: 1, slotSize: 2048 });
      plugIntoNamespace(dev, subnet);
      dev.start(() => {
        events.push(`batch ${subnet}`);
        process.nextTick(() => events.push(`tick ${subnet}`));
        queueMicrotask(() => events.push(`microtask ${subnet}`));
      });
    }
    for (const subnet of [7, 8]) pingBlocking(`10.200.${subnet}.1`, 2);
    await waitFor(() => events.length === 12);
    for (let i = 0; i < 12; i += 3) {
      const subnet = events[i]!.split(' ')[1];
      expect(events.slice(i, i + 3)).toEqual([`batch ${subnet}`, `tick ${subnet}`, `microtask ${subnet}`]);
    }
  });

  it('close() deletes the device inside the namespace, and later writes return -EBADF', () => {
    const dev = openTun('c');
    plugIntoNamespace(dev, 5);
    dev.start(() => {});
    expect(ip('-n', ns, '-o', 'link', 'show', dev.name)).toContain(dev.name);
    dev.close();
    expect(dev.closed).toBe(true);
    expect(() => ip('-n', ns, 'link', 'show', dev.name)).toThrow();
    const packet = Buffer.alloc(28);
    expect(dev.write(packet)).toBe(-constants.errno.EBADF);
    expect(() => dev.close()).not.toThrow();
  });

  it('a failed read stops polling and reports -errno once', async () => {
    const dev = openTun('d');
    ip('link', 'set', dev.name, 'netns', ns);
    const counts: number[] = [];
    dev.start((_slab, _lengths, count) => counts.push(count));
    ip('-n', ns, 'link', 'del', dev.name); // the fd stays open, detached from any device
    await waitFor(() => counts.length > 0);
    await new Promise((r) => setTimeout(r, 50));
    expect(counts).toEqual([-77]); // -EBADFD (Linux; not in os.constants.errno)
  });

  it('write() reports bad arguments as -EINVAL instead of throwing', () => {
    const dev = openTun('e');
    expect(dev.write(Buffer.alloc(20), 10, 20)).toBe(-constants.errno.EINVAL); // out of range
    expect(dev.write(Buffer.alloc(20))).toBe(-constants.errno.EINVAL); // kernel: not an IP packet
  });

  it('open() returns the kernel-chosen name for a template', () => {
    const dev = openTun('%d');
    expect(dev.name).toMatch(/^vt\d+/);
  });

  it('open() throws a clear error with a code for an invalid name', () => {
    expect(() => TunDevice.open('x'.repeat(16))).toThrow(
      expect.objectContaining({ code: 'ENAMETOOLONG', message: expect.stringContaining('limit is 15') }),
    );
    expect(() => TunDevice.open('bad/name')).toThrow(
      expect.objectContaining({ code: 'EINVAL', message: "TUNSETIFF 'bad/name': Invalid argument" }),
    );
    expect(() => TunDevice.open('ok', { batchSize: 0 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
  });

  it('a throwing batch handler becomes an uncaughtException and polling goes on', async () => {
    // In a child process: vitest fails a run on any uncaught exception.
    const out = await runChild(`
      const dev = TunDevice.open(TUN);
      execFileSync('ip', ['link', 'set', TUN, 'netns', NS]);
      execFileSync('ip', ['-n', NS, 'addr', 'add', '10.200.6.2/24', 'dev', TUN]);
      execFileSync('ip', ['-n', NS, 'link', 'set', TUN, 'up']);
      process.on('uncaughtException', (e) => console.log('uncaught ' + e.message));
      let batches = 0;
      dev.start(() => {
        if (++batches === 1) throw new Error('boom');
        console.log('next batch');
        dev.close();
      });
      spawn('ip', ['netns', 'exec', NS, 'ping', '-n', '-c', '2', '-i', '0.2', '-W', '1', '10.200.6.1'], { stdio: 'ignore' });
    `);
    expect(out).toEqual(['uncaught boom', 'next batch']);
  }, 15_000);

  it('a device garbage-collected without close() is deleted', async () => {
    const out = await runChild(
      `
      const show = () => execFileSync('ip', ['-n', NS, '-o', 'link', 'show', TUN], { stdio: 'pipe' });
      (() => execFileSync('ip', ['link', 'set', TunDevice.open(TUN).name, 'netns', NS]))();
      show();
      console.log('moved');
      gc();
      setImmediate(() => {
        try { show(); console.log('still there'); } catch { console.log('gone'); }
      });
    `,
      ['--expose-gc'],
    );
    expect(out).toEqual(['moved', 'gone']);
  }, 15_000);

  it('a worker that exits with a polling device deletes it and exits cleanly', async () => {
    // Only the worker loads the addon, so Node really unloads it when the worker goes away.
    const out = await runChild(`
      const { Worker } = await import('node:worker_threads');
      const worker = new Worker(\`
        // ESM, like the child (workers inherit --input-type=module), but without tsx's hooks.
        import { parentPort } from 'node:worker_threads';
        import { tsImport } from 'tsx/esm/api';
        const { TunDevice } = await tsImport(${JSON.stringify(resolve(repoRoot, 'router/deploy/tun/tun-device.ts'))}, import.meta.url);
        const dev = TunDevice.open(process.env.TUN);
        dev.start(() => {});
        parentPort.postMessage(dev.name);
      \`, { eval: true });
      const name = await new Promise((r) => worker.once('message', r));
      execFileSync('ip', ['link', 'set', name, 'netns', NS]);
      await worker.terminate();
      try {
        execFileSync('ip', ['-n', NS, 'link', 'show', name], { stdio: 'pipe' });
        console.log('still there');
      } catch {
        console.log('gone');
      }
    `);
    expect(out).toEqual(['gone']);
  }, 15_000);
});
