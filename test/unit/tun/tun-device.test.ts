// Real TUN devices in a namespace this file creates (needs root). Every address used lives in
// that namespace: packets leave it only through the TUN, to this process.
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { constants, release } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_OFFLOADS, TunDevice, TunOffload, offloadNames, type TunOptions } from '../../../router/deploy/tun/tun-device.ts';
import { IPV4_FLAG_DF, IpProtocol, emitIpv4Header, parseIpv4 } from '../../../router/wire/ipv4.ts';
import { TcpFlag, emitTcp } from '../../../router/wire/tcp.ts';
import { VIRTIO_NET_HDR_LENGTH, VirtioGso, VirtioNetFlag, emitVirtioNetHeader, parseVirtioNetHeader } from '../../../router/wire/virtio-net.ts';

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

/** Linux 6.2 added TUN_F_USO4/6. */
const kernelHasUso = (() => {
  const [major, minor] = release().split('.').map(Number) as [number, number];
  return major > 6 || (major === 6 && minor >= 2);
})();

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

  it('vnetHeader asks for CSUM, TSO4, TSO6 and USO, and offloads says what the kernel granted', () => {
    const dev = openTun('o', { vnetHeader: true });
    const base = TunOffload.CSUM | TunOffload.TSO4 | TunOffload.TSO6;
    expect(dev.offloads).toBe(kernelHasUso ? DEFAULT_OFFLOADS : base);
    expect(offloadNames(dev.offloads)).toEqual(kernelHasUso ? ['csum', 'tso4', 'tso6', 'uso4', 'uso6'] : ['csum', 'tso4', 'tso6']);
    expect(openTun('n').offloads).toBe(0);
    expect(openTun('z', { vnetHeader: true, offloads: 0 }).offloads).toBe(0);
  });

  it('an optional offload the kernel refuses is dropped, and the rest granted', () => {
    // tun.c enables USO only for USO4 and USO6 together and refuses USO4 alone: the same EINVAL
    // a kernel without USO gives, so this exercises the fallback on any kernel.
    const dev = openTun('u', { vnetHeader: true, offloads: TunOffload.CSUM | TunOffload.TSO4 | TunOffload.TSO6 | TunOffload.USO4 });
    expect(offloadNames(dev.offloads)).toEqual(['csum', 'tso4', 'tso6']);
  });

  it('offloads the kernel refuses, or without vnetHeader, are errors that say so', () => {
    expect(() => openTun('t', { vnetHeader: true, offloads: TunOffload.TSO4 })).toThrow(
      expect.objectContaining({ code: 'EINVAL', message: expect.stringMatching(/^TUNSETOFFLOAD '.*': Invalid argument$/) }),
    );
    expect(() => openTun('t', { offloads: TunOffload.CSUM })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE', message: 'offloads csum need vnetHeader: true' }),
    );
    expect(() => openTun('t', { vnetHeader: true, offloads: 0x100 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
  });

  it('default slots hold the largest IPv4 packet behind the header: a 65535-byte TSO super-packet arrives whole', async () => {
    // In through one TUN (from "beyond" it), forwarded by the namespace out of one granting TSO.
    const into = openTun('i', { vnetHeader: true });
    const out = openTun('s', { vnetHeader: true });
    expect([into.slotSize, openTun('p').slotSize]).toEqual([65552, 65536]);
    plugIntoNamespace(into, 9);
    plugIntoNamespace(out, 10);
    execFileSync('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    const src = parseIpv4('10.200.9.1');
    const dst = parseIpv4('10.200.10.1');
    const packet = Buffer.alloc(65535);
    emitIpv4Header({ src, dst, protocol: IpProtocol.TCP, ttl: 64, flagsFragment: IPV4_FLAG_DF, payloadLength: 65535 - 20 }, packet, 0);
    emitTcp({ srcPort: 1, dstPort: 2, seq: 1, ack: 1, flags: TcpFlag.ACK, window: 100, payload: Buffer.alloc(65535 - 40, 0x5a) }, packet, 20, src, dst);
    const header = Buffer.alloc(VIRTIO_NET_HDR_LENGTH);
    emitVirtioNetHeader({ flags: 0, gsoType: VirtioGso.TCPV4, hdrLen: 40, gsoSize: 1460, csumStart: 0, csumOffset: 0 }, header, 0);
    const seen: { length: number; header: ReturnType<typeof parseVirtioNetHeader> }[] = [];
    out.start((slab, lengths, count) => {
      for (let i = 0; i < count; i++) seen.push({ length: lengths[i]!, header: parseVirtioNetHeader(slab, i * out.slotSize) });
    });
    expect(into.writeWithHeader(header, 0, packet)).toBe(65535);
    await waitFor(() => seen.length > 0);
    expect(seen).toEqual([{ length: 65535, header: expect.objectContaining({ gsoType: VirtioGso.TCPV4, gsoSize: 1460, hdrLen: 40 }) }]);
  });

  it('writeWithHeader sends the header with the packet; refusals come back as -errno', () => {
    const vnet = openTun('h', { vnetHeader: true });
    const plain = openTun('q');
    plugIntoNamespace(vnet, 11);
    const header = Buffer.alloc(VIRTIO_NET_HDR_LENGTH);
    const request = Buffer.from('4500001c0000400040010000' + '0ac80b010ac80b02' + '0800f7ff00000000', 'hex');
    request.writeUInt16BE(checksum(request.subarray(0, 20)), 10);
    expect(vnet.writeWithHeader(header, 0, request)).toBe(28);
    expect(plain.writeWithHeader(header, 0, request)).toBe(-constants.errno.EINVAL); // no header to send
    expect(vnet.writeWithHeader(header, 1, request)).toBe(-constants.errno.EINVAL); // header past the buffer
    expect(vnet.writeWithHeader(header, 0, request, 20, 20)).toBe(-constants.errno.EINVAL); // packet past it
    header[1] = 0x33; // no such GSO type: the kernel refuses it
    expect(vnet.writeWithHeader(header, 0, request)).toBe(-constants.errno.EINVAL);
    header[1] = 0;
    header[0] = VirtioNetFlag.NEEDS_CSUM; // checksum field past the packet
    header.writeUInt16LE(26, 6);
    header.writeUInt16LE(6, 8);
    expect(vnet.writeWithHeader(header, 0, request)).toBe(-constants.errno.EINVAL);
    vnet.close();
    expect(vnet.writeWithHeader(header, 0, request)).toBe(-constants.errno.EBADF);
  });

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
