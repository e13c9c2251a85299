/**
 * Capture through NAT, read back by tshark: a one-router lab masquerading a LAN, with the ftp
 * helper, captured to a file by `capture:` and live by `vrouter capture -w - | tshark -r -`.
 * An active FTP transfer's PORT is seen on the way in (the client's address) and on the way out
 * (rewritten to the router's), in blocks that share one packet id; a packet a rule drops is
 * written with a comment naming the rule.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFtpServer, type FtpServer } from '../../scripts/ftp-server.ts';
import { uniqueTag } from '../../scripts/netns-topology.ts';
import { VROUTER_BIN } from '../../scripts/router-process.ts';
import { LabProcess } from '../support/lab-process.ts';

const tag = uniqueTag('cap');
const dir = mkdtempSync(join(tmpdir(), 'vrouter-capture-'));
const FILE = join(dir, 'lab.pcapng');
let lab: LabProcess;
let ftp: FtpServer;

beforeAll(async () => {
  lab = await LabProcess.start(
    tag,
    `name: ${tag}
control: /tmp/${tag}.sock
capture: ${FILE}
hosts:
  client: { segment: lan, address: 10.0.1.10/24, gateway: 10.0.1.1 }
  server: { segment: internet, address: 203.0.113.10/24, gateway: 203.0.113.1 }
routers:
  gw:
    interfaces:
      - { name: lan0, segment: lan, address: 10.0.1.1/24 }
      - { name: wan0, segment: internet, address: 203.0.113.1/24 }
    rules: |
      *raw
      -A PREROUTING -i lan0 -p tcp --dport 21 -j CT --helper ftp
      COMMIT
      *nat
      -A POSTROUTING -o wan0 -j MASQUERADE
      COMMIT
      *filter
      -A FORWARD -p udp --dport 9 -j DROP
      COMMIT
`,
  );
  ftp = await startFtpServer(lab, 'server');
});

afterAll(async () => {
  ftp?.stop();
  await lab?.stop();
  rmSync(dir, { recursive: true, force: true });
});

// frame.packet_flags_direction as tshark prints the EPB flags word.
const INBOUND = '0x00000001';
const OUTBOUND = '0x00000002';
const FIELDS = ['frame.interface_name', 'frame.packet_flags_direction', 'frame.packet_id', 'frame.comment', 'ftp.request.arg'];

// Every copy of a segment is decoded: the same bytes on two interfaces are not a retransmission.
const TSHARK_OPTIONS = ['-o', 'tcp.analyze_sequence_numbers:FALSE', '-T', 'fields', ...FIELDS.flatMap((field) => ['-e', field])];

/** tshark's fields, one object per frame. */
function parseFields(text: string): Record<string, string>[] {
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => Object.fromEntries(line.split('\t').map((value, i) => [FIELDS[i]!, value])));
}

/** The PORT commands seen: interface, direction and packet id of each block. */
function portCommands(list: Record<string, string>[]): Record<string, string>[] {
  return list.filter((f) => f['ftp.request.arg']?.match(/^\d+,\d+,\d+,\d+,\d+,\d+$/));
}

/** Runs in the background, so that this process goes on reading a live capture meanwhile. */
async function activeTransfer(): Promise<void> {
  const curl = lab.spawn('client', 'curl', ['-s', '--max-time', '10', '--ftp-port', '-', '--disable-eprt', 'ftp://203.0.113.10/pub/hello.txt']);
  expect(await new Promise((resolve) => curl.once('exit', resolve))).toBe(0);
}

describe('pcapng capture through NAT', () => {
  it('streams a live capture into tshark (vrouter capture -w - | tshark -r -), the PORT before and after the rewrite under one packet id', async () => {
    // As a user types it; the capture is stopped with Ctrl-C (SIGINT), and tshark then reads to the end.
    const socket = `/tmp/${tag}.sock`;
    const pipeline = spawn('sh', ['-c', `"${process.execPath}" "${VROUTER_BIN}" capture --socket ${socket} -w - tcp port 21 | tshark -r - ${TSHARK_OPTIONS.join(' ')}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    pipeline.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    pipeline.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    await new Promise<void>((resolve) => {
      const poll = setInterval(() => stderr.includes('listening') && (clearInterval(poll), resolve()), 20);
    });
    expect(stderr).toContain('listening on gw:lan0, gw:wan0, client:eth0, server:eth0');
    await activeTransfer();
    const capture = spawnSync('pgrep', ['-f', `capture --socket ${socket}`], { encoding: 'utf8' }).stdout.split('\n').filter((pid) => pid && readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'node');
    expect(capture).toHaveLength(1);
    process.kill(Number(capture[0]), 'SIGINT');
    expect(await new Promise((resolve) => pipeline.once('exit', resolve))).toBe(0);
    const ports = portCommands(parseFields(stdout));
    const atRouter = ports.filter((f) => f['frame.interface_name']!.startsWith('gw:'));
    expect(atRouter.map((f) => [f['frame.interface_name'], f['frame.packet_flags_direction'], f['ftp.request.arg']!.split(',').slice(0, 4).join('.')])).toEqual([
      ['gw:lan0', INBOUND, '10.0.1.10'],
      ['gw:wan0', OUTBOUND, '203.0.113.1'],
    ]);
    expect(atRouter[0]!['frame.packet_id']).toBe(atRouter[1]!['frame.packet_id']);
    // The hosts' own ports see it too: as the client sent it, and as the server got it.
    expect(ports.map((f) => f['frame.interface_name'])).toEqual(['client:eth0', 'gw:lan0', 'gw:wan0', 'server:eth0']);
  });

  it('refuses a bad filter with exit 2 and an interface that is not there', () => {
    const bad = spawnSync(process.execPath, [VROUTER_BIN, 'capture', '--socket', `/tmp/${tag}.sock`, '-w', '-', 'port', 'ninety'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/ninety/);
    const missing = spawnSync(process.execPath, [VROUTER_BIN, 'capture', '--socket', `/tmp/${tag}.sock`, '-w', '-', '-i', 'eth9'], { encoding: 'utf8' });
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/no interface eth9 to capture on \(interfaces: gw:lan0, gw:wan0, client:eth0, server:eth0\)/);
  });

  it('traces a packet with vrouter trace: its hook ops, the rule that drops it, its fate', async () => {
    const trace = spawn(process.execPath, [VROUTER_BIN, 'trace', '--socket', `/tmp/${tag}.sock`, 'udp', 'port', '9'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    trace.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
    // vrouter trace says nothing until a packet is traced: probe until it has (it starts in about a second).
    for (let tries = 0; tries < 50 && !out.includes('dropped:'); tries++) {
      spawnSync('ip', ['netns', 'exec', `${tag}-client`, 'bash', '-c', 'echo x > /dev/udp/203.0.113.10/9']);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    trace.kill('SIGINT');
    expect(await new Promise((resolve) => trace.once('exit', resolve))).toBe(0);
    const lines = out.trim().split('\n');
    expect(lines[0]).toMatch(/^trace gw:\d+ in lan0: udp src=10\.0\.1\.10 dst=203\.0\.113\.10 sport=\d+ dport=9 /);
    expect(lines).toContainEqual(expect.stringMatching(/ PREROUTING conntrack-in \(-200\) ACCEPT: NEW original id=\d+ unconfirmed udp /));
    expect(lines.at(-1)).toMatch(/ dropped: hook-drop by filter:FORWARD:rule:1 -A FORWARD -p udp -m udp --dport 9 -j DROP$/);
  });

  it('writes the capture: file, with a dropped packet commented with the rule that dropped it', async () => {
    await activeTransfer();
    lab.exec('client', 'bash', ['-c', 'echo x > /dev/udp/203.0.113.10/9']);
    expect(await lab.stop()).toBe(0);
    const list = parseFields(spawnSync('tshark', ['-r', FILE, ...TSHARK_OPTIONS], { encoding: 'utf8', maxBuffer: 64 << 20 }).stdout);
    const dropped = list.filter((f) => f['frame.comment']);
    expect(dropped.map((f) => [f['frame.interface_name'], f['frame.comment']])).toContainEqual(['gw:lan0', 'dropped by filter:FORWARD:rule:1 -A FORWARD -p udp -m udp --dport 9 -j DROP']);
    const ports = portCommands(list).filter((f) => f['frame.interface_name']!.startsWith('gw:'));
    expect(ports.length).toBeGreaterThanOrEqual(4);
  });
});
