import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { systemNames } from '../../../router/deploy/system-names.ts';
import { ip } from '../../support/packets.ts';

const dir = mkdtempSync(join(tmpdir(), 'vrouter-names-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function files(services: string, hosts: string, networks: string) {
  const paths = { services: join(dir, 'services'), hosts: join(dir, 'hosts'), networks: join(dir, 'networks') };
  writeFileSync(paths.services, services);
  writeFileSync(paths.hosts, hosts);
  writeFileSync(paths.networks, networks);
  return systemNames(paths);
}

describe('names for iptables -L from /etc/services, /etc/hosts and /etc/networks', () => {
  const names = files(
    '# comment\ntcpmux\t\t1/tcp\nhttp\t\t80/tcp\t\twww\t\t# WorldWideWeb HTTP\nwww-alt\t80/tcp\ndomain\t\t53/udp\n',
    '127.0.0.1 localhost\n127.0.0.1 other\n::1 localhost ip6-localhost\n10.0.0.1\trouter # the router\n',
    'default\t\t0.0.0.0\nloopback\t127.0.0.0\nlocalnet 127.0.0.1\nshort\t\t10\n',
  );

  it('gives the first service of a port and protocol, as getservbyport', () => {
    expect(names.serviceName(80, 'tcp')).toBe('http');
    expect(names.serviceName(53, 'udp')).toBe('domain');
    expect(names.serviceName(53, 'tcp')).toBeNull();
  });

  it('gives a host name first, then a network name, as iptables asks gethostbyaddr then getnetbyaddr', () => {
    expect(names.hostName(ip('127.0.0.1'))).toBe('localhost');
    expect(names.hostName(ip('10.0.0.1'))).toBe('router');
    expect(names.hostName(ip('127.0.0.0'))).toBe('loopback');
    expect(names.hostName(ip('0.0.0.0'))).toBe('default');
    // inet_network("10") is 10: it names 0.0.0.10, not 10.0.0.0.
    expect(names.hostName(ip('10.0.0.0'))).toBeNull();
    expect(names.hostName(ip('0.0.0.10'))).toBe('short');
  });

  it('has no names when the files are missing', () => {
    const none = systemNames({ services: join(dir, 'absent'), hosts: join(dir, 'absent'), networks: join(dir, 'absent') });
    expect(none.serviceName(80, 'tcp')).toBeNull();
    expect(none.hostName(ip('127.0.0.1'))).toBeNull();
  });
});
