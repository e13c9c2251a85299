/**
 * FTP through NAT with real programs (vsftpd; curl and lftp as clients), through vrouter and
 * through the kernel with the same rules, compared case by case:
 *   - MASQUERADE with the ftp helper attached by rule: active (PORT, EPRT) and passive (PASV, EPSV),
 *     several transfers on one control connection, a 1 MiB file intact;
 *   - a server behind DNAT (port forward of 21) used in passive mode, where 227 is rewritten;
 *   - without the helper rule, active mode fails as it does on the kernel (vsftpd refuses the PORT).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFtpServer, type FtpServer } from '../../scripts/ftp-server.ts';
import { setUpKernelRouter, type KernelLink, vrouterConfigOf } from '../../scripts/kernel-router.ts';
import { Topology, uniqueTag } from '../../scripts/netns-topology.ts';
import { startRouterProcess, type RouterProcess } from '../../scripts/router-process.ts';
import { controlCall } from '../../router/deploy/control-client.ts';
import { listenForEvents } from '../support/conntrack-events.ts';

const MASQUERADE_RULES = (helper: boolean): string => `${helper ? '*raw\n-A PREROUTING -p tcp --dport 21 -j CT --helper ftp\nCOMMIT\n' : ''}*nat
-A POSTROUTING -o wan0 -j MASQUERADE
COMMIT
`;

const PORT_FORWARD_RULES = `*raw
-A PREROUTING -p tcp --dport 21 -j CT --helper ftp
COMMIT
*nat
-A PREROUTING -i wan0 -p tcp --dport 21 -j DNAT --to-destination 10.0.1.2
COMMIT
`;

/** client on lan0 behind the router, server on wan0; for port forwarding the server is on lan0. */
const LINKS: KernelLink[] = [
  { name: 'lan0', role: 'inside', address: '10.0.1.1/24', peer: '10.0.1.2/24' },
  { name: 'wan0', role: 'outside', address: '203.0.113.1/24', peer: '203.0.113.2/24' },
];

interface Site {
  topology: Topology;
  ftp: FtpServer;
  router: RouterProcess | null;
}

async function vrouterSite(tag: string, rules: string, serverRole: string): Promise<Site> {
  const topology = new Topology(uniqueTag(tag), ['inside', 'outside']);
  const router = await startRouterProcess(vrouterConfigOf(topology, LINKS, rules));
  return { topology, router, ftp: await startFtpServer(topology, serverRole) };
}

async function kernelSite(tag: string, rules: string, serverRole: string): Promise<Site> {
  const topology = new Topology(uniqueTag(tag), ['inside', 'outside', 'router']);
  setUpKernelRouter(topology, 'router', LINKS, rules);
  return { topology, router: null, ftp: await startFtpServer(topology, serverRole) };
}

function curl(site: Site, from: string, url: string, flags: string[]): { status: number | null; stdout: string; stderr: string } {
  return site.topology.exec(from, 'curl', ['-sS', '--max-time', '8', ...flags, url], 20_000);
}

const ACTIVE_PORT = ['--ftp-port', '-', '--disable-eprt'];
const ACTIVE_EPRT = ['--ftp-port', '-'];
const PASSIVE_PASV = ['--ftp-pasv', '--disable-epsv'];
const PASSIVE_EPSV = ['--ftp-pasv'];

/** The client-behind-MASQUERADE cases, each as a short outcome word. */
function masqueradeOutcomes(site: Site): Record<string, string> {
  const hello = 'ftp://203.0.113.2/pub/hello.txt';
  const fetch = (flags: string[]): string => {
    const result = curl(site, 'inside', hello, flags);
    return result.status === 0 ? result.stdout.trim() : `failed (curl ${result.status})`;
  };
  const big = curl(site, 'inside', 'ftp://203.0.113.2/pub/big.bin', [...ACTIVE_PORT, '-o', '/dev/null', '-w', '%{size_download}']);
  const lftp = site.topology.exec(
    'inside',
    'lftp',
    ['-e', 'set ftp:passive-mode off; set net:max-retries 1; set net:timeout 4; cat pub/hello.txt; cat pub/hello.txt; cat pub/hello.txt; bye', 'ftp://203.0.113.2'],
    30_000,
  );
  return {
    'active PORT': fetch(ACTIVE_PORT),
    'active EPRT': fetch(ACTIVE_EPRT),
    'passive PASV': fetch(PASSIVE_PASV),
    'passive EPSV': fetch(PASSIVE_EPSV),
    '1 MiB active': big.status === 0 ? `${big.stdout} bytes` : `failed (curl ${big.status})`,
    'three transfers on one control connection (lftp, active)': lftp.stdout.split('\n').filter((l) => l === 'hello through nat').length === 3 ? 'three' : `got ${JSON.stringify(lftp.stdout)}`,
  };
}

describe('FTP through MASQUERADE with the ftp helper, vrouter and kernel', () => {
  let ours: Site;
  let kernel: Site;
  beforeAll(async () => {
    ours = await vrouterSite('fm', MASQUERADE_RULES(true), 'outside');
    kernel = await kernelSite('km', MASQUERADE_RULES(true), 'outside');
  });
  afterAll(async () => {
    for (const site of [ours, kernel]) {
      await site?.router?.stop();
      site?.ftp.stop();
      site?.topology.destroy();
    }
  });

  it('transfers in every mode, and the same as the kernel', async () => {
    const events = await listenForEvents(ours.router!.controlSocket, ['expect']);
    const kernelResult = masqueradeOutcomes(kernel);
    const ourResult = masqueradeOutcomes(ours);
    // The cases ran synchronously: the event lines are still in the pipe until the loop reads them,
    // which it does while stop() waits for -E to end.
    await events.stop();
    expect(kernelResult).toEqual({
      'active PORT': 'hello through nat',
      'active EPRT': 'hello through nat',
      'passive PASV': 'hello through nat',
      'passive EPSV': 'hello through nat',
      '1 MiB active': `${1024 * 1024} bytes`,
      'three transfers on one control connection (lftp, active)': 'three',
    });
    expect(ourResult).toEqual(kernelResult);
    // The active-mode expectation, as conntrack -E expect prints it on the kernel.
    expect(events.stdout()).toMatch(
      / {4}\[NEW\] 300 proto=6 src=203\.0\.113\.2 dst=203\.0\.113\.1 sport=0 dport=\d+ mask-src=255\.255\.255\.255 mask-dst=255\.255\.255\.255 sport=0 dport=65535 master-src=10\.0\.1\.2 master-dst=203\.0\.113\.2 sport=\d+ dport=21 class=0 helper=ftp/,
    );
  });

  it('delivers the 1 MiB file intact', () => {
    const result = ours.topology.exec('inside', 'sh', ['-c', `curl -sS --max-time 8 ${ACTIVE_PORT.join(' ')} ftp://203.0.113.2/pub/big.bin | sha256sum`], 20_000);
    expect(result.stdout.split(' ')[0]).toBe(ours.ftp.bigSha256);
  });

  it('shows the control connection with its helper in conntrack -L, NATed as the kernel shows it', async () => {
    const lines = (await controlCall(ours.router!.controlSocket, 'conntrack-list', {})) as string[];
    // use= is 1 plus one per data connection still listed (each holds a reference, as in the kernel).
    expect(lines.find((l) => l.includes('dport=21 '))).toMatch(
      /^tcp {6}6 \d+ [A-Z_]+ src=10\.0\.1\.2 dst=203\.0\.113\.2 sport=\d+ dport=21 src=203\.0\.113\.2 dst=203\.0\.113\.1 sport=21 dport=\d+ \[ASSURED\] mark=0 helper=ftp use=\d+$/,
    );
  });
});

describe('FTP without the helper rule fails in active mode, as on the kernel', () => {
  let ours: Site;
  let kernel: Site;
  beforeAll(async () => {
    ours = await vrouterSite('fn', MASQUERADE_RULES(false), 'outside');
    kernel = await kernelSite('kn', MASQUERADE_RULES(false), 'outside');
  });
  afterAll(async () => {
    for (const site of [ours, kernel]) {
      await site?.router?.stop();
      site?.ftp.stop();
      site?.topology.destroy();
    }
  });

  it('refuses the PORT command (vsftpd sees a foreign address) while passive works', () => {
    for (const site of [kernel, ours]) {
      const active = curl(site, 'inside', 'ftp://203.0.113.2/pub/hello.txt', [...ACTIVE_PORT, '-v']);
      expect(active.status).not.toBe(0);
      expect(active.stderr).toContain('500 Illegal PORT command');
      expect(curl(site, 'inside', 'ftp://203.0.113.2/pub/hello.txt', PASSIVE_PASV).stdout.trim()).toBe('hello through nat');
    }
  });
});

describe('FTP server behind DNAT (port forward of 21), passive mode', () => {
  let ours: Site;
  let kernel: Site;
  beforeAll(async () => {
    ours = await vrouterSite('fd', PORT_FORWARD_RULES, 'inside');
    kernel = await kernelSite('kd', PORT_FORWARD_RULES, 'inside');
  });
  afterAll(async () => {
    for (const site of [ours, kernel]) {
      await site?.router?.stop();
      site?.ftp.stop();
      site?.topology.destroy();
    }
  });

  it('rewrites the 227 reply to the public address, so PASV works from outside, as on the kernel', () => {
    for (const site of [kernel, ours]) {
      const result = curl(site, 'outside', 'ftp://203.0.113.1/pub/hello.txt', [...PASSIVE_PASV, '-v']);
      expect(result.stdout.trim()).toBe('hello through nat');
      expect(result.stderr).toMatch(/227 Entering Passive Mode \(203,0,113,1,\d+,\d+\)/);
    }
  });
});
