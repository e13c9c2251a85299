import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, ConfigErrors, DEFAULT_CONTROL_SOCKET, parseConfig } from '../../../router/deploy/config.ts';
import { formatIpv4Address } from '../../../router/core/addresses.ts';
import { routerSpecOf } from '../../../router/deploy/runtime.ts';
import { buildRouter } from '../../../router/stack/build-router.ts';

const existing = new Set(['client', 'server']);
const options = { namespaceExists: (name: string) => existing.has(name) };

const GOOD = `control: /tmp/vr-demo.sock
interfaces:
  - { name: lan0, netns: client, address: 10.0.1.1/24, peer: 10.0.1.2/24 }
  - { name: wan0, netns: server, address: 203.0.113.1/24, peer: 203.0.113.2/24, mtu: 1400 }
routes:
  - { to: 198.51.100.0/24, dev: wan0 }
  - { to: default, dev: wan0, via: 203.0.113.2 }
`;

function refusal(text: string): ConfigError | ConfigErrors {
  try {
    parseConfig('router.yaml', text, options);
  } catch (error) {
    if (error instanceof ConfigError || error instanceof ConfigErrors) return error;
    throw error;
  }
  throw new Error('config was accepted');
}

describe('config', () => {
  it('reads the documented example', () => {
    const config = parseConfig('router.yaml', GOOD, options);
    expect(config.control).toEqual({ path: '/tmp/vr-demo.sock', group: null, mode: 0o600 });
    expect(config.interfaces.map((x) => [x.name, x.netns, formatIpv4Address(x.address.address), x.address.prefixLength, formatIpv4Address(x.peer.address), x.mtu])).toEqual([
      ['lan0', 'client', '10.0.1.1', 24, '10.0.1.2', 1500],
      ['wan0', 'server', '203.0.113.1', 24, '203.0.113.2', 1400],
    ]);
    expect(config.routes[0]).toMatchObject({ dev: 'wan0', via: 0, to: { prefixLength: 24 } });
    expect(formatIpv4Address(config.routes[1]!.via)).toBe('203.0.113.2');
    expect(config.rules).toBeNull();
  });

  it('defaults the control socket', () => {
    const config = parseConfig('r.yaml', 'interfaces:\n  - { name: a, netns: client, address: 10.0.0.1/30, peer: 10.0.0.2/30 }\n', options);
    expect(config.control.path).toBe(DEFAULT_CONTROL_SOCKET);
  });

  it('keeps inline rules text with its starting line', () => {
    const config = parseConfig('r.yaml', `${GOOD}rules: |\n  *filter\n  COMMIT\n`, options);
    expect(config.rules).toEqual({ text: '*filter\nCOMMIT\n', origin: 'r.yaml (rules)', firstLine: 9 });
  });

  it.each([
    ['a missing namespace, named', GOOD.replace('netns: server', 'netns: nowhere'), 'router.yaml:4: interfaces[1].netns:', 'network namespace "nowhere" does not exist'],
    ['a bad address', GOOD.replace('10.0.1.1/24', '10.0.1.300/24'), 'router.yaml:3: interfaces[0].address:', '"10.0.1.300/24"'],
    ['an address without prefix', GOOD.replace('10.0.1.1/24', '10.0.1.1'), 'interfaces[0].address:', 'ADDRESS/PREFIX-LENGTH'],
    ['a peer in another subnet', GOOD.replace('10.0.1.2/24', '10.0.2.2/24'), 'interfaces[0].peer:', 'same subnet'],
    ['a peer equal to the address', GOOD.replace('10.0.1.2/24', '10.0.1.1/24'), 'interfaces[0].peer:', 'must differ'],
    ['an MTU out of range', GOOD.replace('mtu: 1400', 'mtu: 20'), 'interfaces[1].mtu:', '(got 20)'],
    ['an unknown key', GOOD.replace('mtu: 1400', 'mtuu: 1400'), 'interfaces[1].mtuu:', 'unknown key'],
    ['an unknown top-level key', `${GOOD}colour: blue\n`, 'router.yaml:8: colour:', 'unknown key'],
    ['a duplicate name', GOOD.replace('name: wan0', 'name: lan0'), 'interfaces[1].name:', 'used by another interface'],
    ['an interface name too long', GOOD.replace('name: lan0', 'name: averyveryverylongname'), 'interfaces[0].name:', 'Linux interface name'],
    ['overlapping subnets', GOOD.replace('203.0.113.1/24, peer: 203.0.113.2/24', '10.0.1.129/25, peer: 10.0.1.130/25'), 'interfaces[1].address:', 'overlaps the subnet of interface lan0'],
    ['a route to an unknown device', GOOD.replace('dev: wan0 }\n  - { to: default', 'dev: eth9 }\n  - { to: default'), 'routes[0].dev:', '"eth9"'],
    ['a gateway off the link', GOOD.replace('via: 203.0.113.2', 'via: 10.9.9.9'), 'routes[1].via:', 'not on the subnet of wan0'],
    ['no interfaces', 'control: /tmp/x.sock\n', 'interfaces:', 'is required'],
    ['invalid YAML', 'interfaces: [ {\n', 'router.yaml:', 'not valid YAML'],
    ['interfaces not a list', 'interfaces: lan0\n', 'interfaces:', 'must be a list'],
  ])('refuses %s, naming file, key and value', (_, text, where, what) => {
    const error = refusal(text);
    expect(error.message).toContain(where);
    expect(error.message).toContain(what);
  });

  it('reports every problem at once, not only the first', () => {
    // A bad address and a missing namespace in one interface: both (the example), and the
    // rest; the route through that interface is not refused again for the interface's problem.
    const text = GOOD.replace('10.0.1.1/24', '10.0.1.300/24').replace('netns: client', 'netns: nowhere').replace('via: 203.0.113.2', 'via: 10.9.9.9');
    const lanRoute = '  - { to: 198.51.102.0/24, dev: lan0, via: 10.9.9.8 }\n';
    expect(refusal(`${text}${lanRoute}colour: blue\nconntrack: { max: 0 }\n`).message.split('\n')).toEqual([
      'router.yaml:9: colour: unknown key (known: control, capture, interfaces, routes, rules, conntrack, helpers) (got "blue")',
      'router.yaml:3: interfaces[0].netns: network namespace "nowhere" does not exist (create it with: ip netns add nowhere) (got "nowhere")',
      'router.yaml:3: interfaces[0].address: not an IPv4 ADDRESS/PREFIX-LENGTH: Invalid IPv4 address. (got "10.0.1.300/24")',
      'router.yaml:7: routes[1].via: is not on the subnet of wan0 (got "10.9.9.9")',
      'router.yaml:10: conntrack.max: must be a whole number from 1 to 16777216 (got 0)',
    ]);
  });

  it('reads the ftp helper ports and loose flag, with the kernel defaults', () => {
    expect(parseConfig('r.yaml', GOOD, options).helpers).toEqual({ ftp: { ports: [21], loose: false } });
    const config = parseConfig('r.yaml', `${GOOD}helpers:\n  ftp: { ports: [21, 2121], loose: true }\n`, options);
    expect(config.helpers).toEqual({ ftp: { ports: [21, 2121], loose: true } });
    expect(refusal(`${GOOD}helpers:\n  ftp: { ports: [21, 21] }\n`).message).toContain('helpers.ftp.ports: lists a port twice');
    expect(refusal(`${GOOD}helpers:\n  ftp: { ports: [1, 2, 3, 4, 5, 6, 7, 8, 9] }\n`).message).toContain('must list 1 to 8 ports');
    expect(refusal(`${GOOD}helpers:\n  ftp: { ports: [70000] }\n`).message).toContain('helpers.ftp.ports[0]: must be a whole number from 1 to 65535 (got 70000)');
    expect(refusal(`${GOOD}helpers:\n  tftp: {}\n`).message).toContain('helpers.tftp: unknown key');
  });

  it('reads the conntrack settings and refuses bad ones', () => {
    const config = parseConfig('r.yaml', `${GOOD}conntrack: { always: true, max: 1000, auto_helpers: true }\n`, options);
    expect(config.conntrack).toMatchObject({ always: true, max: 1000, autoHelpers: true, checksum: true, tcpLoose: true });
    expect(refusal(`${GOOD}conntrack: { max: 0 }\n`).message).toContain('conntrack.max: must be a whole number');
    expect(refusal(`${GOOD}conntrack: { checksum: yes please }\n`).message).toContain('conntrack.checksum: must be true or false');
  });

  it('takes an empty rules: value, block or file as no rules, as iptables-restore takes an empty file', () => {
    for (const rules of ['rules:\n', 'rules: ""\n', 'rules: |\n', 'rules: |\n\n\n', 'rules: >-\n  \n']) {
      expect(parseConfig('r.yaml', `${GOOD}${rules}`, options).rules).toBeNull();
    }
    const dir = mkdtempSync(join(tmpdir(), 'config-'));
    try {
      const empty = join(dir, 'empty.rules');
      writeFileSync(empty, '');
      const config = parseConfig('r.yaml', `${GOOD}rules: ${empty}\n`, options);
      expect(config.rules).toEqual({ text: '', origin: empty, firstLine: 0 });
      expect(buildRouter(routerSpecOf(config)).netfilter.rules.save(false)).toBe('');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('names a rules file it cannot read', () => {
    expect(refusal(`${GOOD}rules: no-such-rules.txt\n`).message).toMatch(/router\.yaml:8: rules: cannot read the rules file: .*"no-such-rules.txt"/);
  });
});
