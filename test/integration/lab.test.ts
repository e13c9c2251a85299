/**
 * A lab in one vrouter process, driven as users drive it (`vrouter run lab.yaml`, `vrouter exec`,
 * `vrouter link`, tools with `--router`): a home router behind a carrier-grade NAT, two hosts on
 * the home LAN and a server outside.
 *
 *   laptop 192.168.1.10, phone 192.168.1.11 -- home (lan0 .1 | wan0 100.64.0.2) -- carrier (delay
 *   10 ms ± 2 ms) -- cgn (in0 100.64.0.1 | wan0 203.0.113.1) -- internet -- server 203.0.113.10
 *
 * Both routers MASQUERADE and attach the ftp and pptp helpers by rule.
 */
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFtpServer, type FtpServer } from '../../scripts/ftp-server.ts';
import { uniqueTag } from '../../scripts/netns-topology.ts';
import { VROUTER_BIN, startRouterProcess } from '../../scripts/router-process.ts';
import { LabProcess, leftoversOf } from '../support/lab-process.ts';
import { PEER } from '../support/peers.ts';
import { Peer } from '../support/pptp-site.ts';
import { fileURLToPath } from 'node:url';

const TSX = fileURLToPath(new URL('../../node_modules/.bin/tsx', import.meta.url));
const PAC = fileURLToPath(new URL('../../scripts/pptp-peers/pac-server.ts', import.meta.url));
const PNS = fileURLToPath(new URL('../../scripts/pptp-peers/pns-client.ts', import.meta.url));

const HELPERS_AND_MASQUERADE = (lan: string, wan: string): string => `*raw
      -A PREROUTING -i ${lan} -p tcp --dport 21 -j CT --helper ftp
      -A PREROUTING -i ${lan} -p tcp --dport 1723 -j CT --helper pptp
      COMMIT
      *nat
      -A POSTROUTING -o ${wan} -j MASQUERADE
      COMMIT`;

function labYaml(tag: string): string {
  return `name: ${tag}
control: /tmp/${tag}.sock
segments:
  carrier: { delay: 10ms, jitter: 2ms, seed: 7 }
hosts:
  laptop: { segment: home, address: 192.168.1.10/24, gateway: 192.168.1.1 }
  phone:  { segment: home, address: 192.168.1.11/24, gateway: 192.168.1.1 }
  server: { segment: internet, address: 203.0.113.10/24, gateway: 203.0.113.1 }
routers:
  home:
    interfaces:
      - { name: lan0, segment: home, address: 192.168.1.1/24 }
      - { name: wan0, segment: carrier, address: 100.64.0.2/24 }
    routes: [ { to: default, via: 100.64.0.1 } ]
    rules: |
      ${HELPERS_AND_MASQUERADE('lan0', 'wan0')}
  cgn:
    interfaces:
      - { name: in0, segment: carrier, address: 100.64.0.1/24 }
      - { name: wan0, segment: internet, address: 203.0.113.1/24 }
    routes: [ { to: 192.168.1.0/24, via: 100.64.0.2 } ]
    rules: |
      ${HELPERS_AND_MASQUERADE('in0', 'wan0')}
`;
}

const tag = uniqueTag('lb');
let lab: LabProcess;
let ftp: FtpServer;

beforeAll(async () => {
  lab = await LabProcess.start(tag, labYaml(tag));
  ftp = await startFtpServer(lab, 'server');
});

afterAll(async () => {
  ftp?.stop();
  await lab?.stop();
});

const pings = (host: string, to: string, count = 1, extra: string[] = []): { status: number | null; stdout: string } => lab.exec(host, 'ping', ['-c', String(count), '-i', '0.2', '-W', '2', ...extra, to]);

describe('a lab: double NAT in one process', () => {
  it('brings hosts up in <name>-<host> namespaces with eth0 and a default route through the gateway', () => {
    const laptop = lab.exec('laptop', 'ip', ['-4', '-o', 'addr', 'show', 'dev', 'eth0']);
    expect(laptop.stdout).toContain('inet 192.168.1.10/24');
    expect(lab.exec('laptop', 'ip', ['route', 'show', 'default']).stdout.trim()).toBe('default via 192.168.1.1 dev eth0');
  });

  it('lets two hosts on one LAN behind MASQUERADE reach a server and each other', () => {
    for (const host of ['laptop', 'phone']) expect(pings(host, '203.0.113.10').status).toBe(0);
    // Host to host on the LAN: straight across the segment, not through the router (TTL 64).
    const direct = pings('laptop', '192.168.1.11');
    expect(direct.status).toBe(0);
    expect(direct.stdout).toMatch(/ttl=64 /);
    // Through both routers: TTL 62 at the far end.
    expect(pings('laptop', '203.0.113.10').stdout).toMatch(/ttl=62 /);
    const sink = lab.spawn('server', process.execPath, [PEER, 'tcp-sink', '5001']);
    try {
      spawnSync('sleep', ['0.5']);
      const sent = lab.exec('phone', process.execPath, [PEER, 'tcp-send', '203.0.113.10', '5001', '50000']);
      expect(JSON.parse(sent.stdout.trim().split('\n').at(-1)!)).toMatchObject({ bytes: 50000 });
    } finally {
      sink.kill();
    }
    // Each router keeps its own table: home saw the LAN address, the CGN only home's public one.
    const home = lab.tool(['conntrack', '-L', '--router', 'home', '-p', 'tcp', '--dport', '5001']).stdout;
    const cgn = lab.tool(['conntrack', '-L', '--router', 'cgn', '-p', 'tcp', '--dport', '5001']).stdout;
    expect(home).toMatch(/src=192\.168\.1\.11 dst=203\.0\.113\.10 .* src=203\.0\.113\.10 dst=100\.64\.0\.2 /);
    expect(cgn).toMatch(/src=100\.64\.0\.2 dst=203\.0\.113\.10 .* src=203\.0\.113\.10 dst=203\.0\.113\.1 /);
  });

  it('carries active and passive FTP (curl and lftp) through both NATs, the server seeing the rewritten PORT', () => {
    const url = 'ftp://203.0.113.10/pub/hello.txt';
    for (const mode of [['--ftp-port', '-'], ['--ftp-port', '-', '--disable-eprt'], ['--ftp-pasv'], ['--ftp-pasv', '--disable-epsv']]) {
      const got = lab.exec('laptop', 'curl', ['-s', '--max-time', '20', ...mode, url]);
      expect([mode.join(' '), got.status, got.stdout]).toEqual([mode.join(' '), 0, 'hello through nat\n']);
    }
    for (const passive of ['false', 'true']) {
      const got = lab.exec('phone', 'lftp', ['-c', `set ftp:passive-mode ${passive}; set net:max-retries 1; set net:timeout 10; cat ${url}`]);
      expect([passive, got.status, got.stdout]).toEqual([passive, 0, 'hello through nat\n']);
    }
    const big = spawnSync('ip', ['netns', 'exec', lab.ns('phone'), 'curl', '-s', '--max-time', '30', '--ftp-port', '-', 'ftp://203.0.113.10/pub/big.bin'], { maxBuffer: 4 << 20 });
    expect(createHash('sha256').update(big.stdout).digest('hex')).toBe(ftp.bigSha256);
    // The server saw the CGN's public address in PORT and EPRT, both helpers having rewritten them.
    expect(ftp.log()).toMatch(/"PORT 203,0,113,1,\d+,\d+"/);
    expect(ftp.log()).toMatch(/"EPRT \|1\|203\.0\.113\.1\|\d+\|"/);
    expect(ftp.log()).not.toMatch(/PORT 192,168|PORT 100,64|EPRT \|1\|(192|100)/);
  });

  it('carries PPTP from two clients on one LAN, with the same call id, through both NATs', async () => {
    const pac = new Peer(lab.spawn('server', TSX, [PAC, '--listen', '203.0.113.10', '--connections', '2', '--connection-call-id-step', '1', '--timeout', '20000', '--gre-first', 'pns']));
    expect(await pac.waitFor((line) => line.event === 'listening')).not.toBeNull();
    const clients = ['laptop', 'phone'].map((host) => new Peer(lab.spawn(host, TSX, [PNS, '--server', '203.0.113.10', '--call-id', '4242', '--gre-count', '3', '--timeout', '20000'])));
    const runs = await Promise.all(clients.map((client) => client.done));
    const server = await pac.done;
    for (const run of runs) {
      const summary = run.lines.find((line) => line.event === 'summary') as { calls?: { greSent: number; greReceived: number }[] } | undefined;
      expect([run.code, summary?.calls?.[0]?.greSent, summary?.calls?.[0]?.greReceived], run.stderr).toEqual([0, 3, 3]);
    }
    // The server saw both calls from the CGN's one public address, with the PNS call ids the
    // NATs gave them in place of the clients' shared 4242: that is what keeps the calls apart.
    const calls = server.lines.filter((line) => line.event === 'call-up');
    expect(calls.map((line) => line.peer)).toEqual(['203.0.113.1', '203.0.113.1']);
    const ids = calls.map((line) => line.pnsCallId as number);
    expect(new Set(ids).size).toBe(2);
    expect(ids).not.toContain(4242);
  });

  it('delays across the impaired segment by the set delay ± jitter, both ways', () => {
    const result = pings('laptop', '203.0.113.10', 20);
    expect(result.status).toBe(0);
    const times = [...result.stdout.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
    expect(times).toHaveLength(20);
    // Out and back across carrier: 2 × (10 ± 2) ms, plus forwarding and timer slack (a few ms more
    // when the 2-core machine is loaded).
    expect(Math.min(...times)).toBeGreaterThanOrEqual(16);
    expect(Math.max(...times)).toBeLessThanOrEqual(36);
    const mean = times.reduce((a, b) => a + b, 0) / times.length;
    expect(mean).toBeGreaterThan(18);
    expect(mean).toBeLessThan(25);
  });

  it('stops traffic with vrouter link SEGMENT down and restores it with up', () => {
    const down = lab.tool(['link', 'carrier', 'down']);
    expect([down.status, down.stdout.trim()]).toEqual([0, 'carrier: down delay 10ms jitter 2ms limit 1000']);
    expect(pings('laptop', '203.0.113.10', 2).status).not.toBe(0);
    // The LAN itself is not affected.
    expect(pings('laptop', '192.168.1.11').status).toBe(0);
    expect(lab.tool(['link', 'carrier', 'up']).status).toBe(0);
    expect(pings('laptop', '203.0.113.10').status).toBe(0);
    const bad = lab.tool(['link', 'carrier', 'loss', 'lots']);
    expect([bad.status, bad.stderr.split('\n')[0]]).toEqual([2, 'vrouter: link carrier: loss lots: not a percentage such as 1%']);
  });

  it('runs a command in a host with vrouter exec, with its exit status', () => {
    const config = lab.router.configFile;
    const run = spawnSync(process.execPath, [VROUTER_BIN, 'exec', '--config', config, 'phone', '--', 'sh', '-c', 'ip -4 -o addr show dev eth0; exit 7'], { encoding: 'utf8' });
    expect([run.status, run.stdout]).toEqual([7, expect.stringContaining('192.168.1.11/24')]);
  });

  it('asks for --router when the lab has several', () => {
    const run = lab.tool(['conntrack', '-L']);
    expect([run.status, run.stderr.trim()]).toEqual([1, 'vrouter: this lab has routers home, cgn: name one with --router NAME']);
  });

  it('leaves nothing behind on SIGTERM: namespaces, TUNs, socket', async () => {
    ftp.stop();
    expect(await lab.stop()).toBe(0);
    expect(lab.leftovers()).toEqual([]);
  });
});

describe('a lab that cannot start', () => {
  it('undoes what it made when start-up fails half way', async () => {
    const failing = uniqueTag('lf');
    // The last host's TUN cannot be renamed to "lo": by then the first host exists.
    const yaml = labYaml(failing).replace('server: { segment: internet, address: 203.0.113.10/24, gateway: 203.0.113.1 }', 'server: { segment: internet, address: 203.0.113.10/24, gateway: 203.0.113.1, interface: lo }');
    await expect(startRouterProcess(yaml)).rejects.toThrow(/exited with 1 before ready[\s\S]*renaming the TUN to lo failed/);
    expect(leftoversOf(failing, `/tmp/${failing}.sock`, 0).filter((what) => !what.startsWith('tun '))).toEqual([]);
  });

  it('refuses a bad lab file before making anything, with every problem and exit code 2', async () => {
    const bad = uniqueTag('lx');
    const yaml = labYaml(bad).replace('gateway: 192.168.1.1 }\n  phone', 'gateway: 192.168.1.99 }\n  phone').replace('via: 100.64.0.1', 'via: 10.9.9.9');
    const error = await startRouterProcess(yaml).catch((e: Error) => e.message);
    expect(error).toMatch(/exited with 2 before ready/);
    expect(error).toMatch(/hosts\.laptop\.gateway: no router owns this address on segment home \(got "192\.168\.1\.99"\)/);
    expect(error).toMatch(/routers\.home\.routes\[0\]\.via: is on none of router home's segments/);
    expect(leftoversOf(bad, `/tmp/${bad}.sock`, 0).filter((what) => !what.startsWith('tun '))).toEqual([]);
    expect(existsSync(`/run/netns/${bad}-laptop`)).toBe(false);
  });
});
