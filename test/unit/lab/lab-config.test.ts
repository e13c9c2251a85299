/**
 * Lab files: the example read into a lab (namespaces, TUN names, gateways, routes with the
 * interface found from the gateway), a one-router file read as a lab, and every refusal the issue
 * lists reported together, each with its line, key path and value.
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigErrors } from '../../../router/deploy/config.ts';
import { parseLabText } from '../../../router/deploy/lab/lab-file.ts';
import { ip } from '../../support/packets.ts';

const dir = mkdtempSync(join(tmpdir(), 'lab-config-'));
mkdirSync(join(dir, 'rules'));
writeFileSync(join(dir, 'rules/cgn.rules'), '*nat\n-A POSTROUTING -o wan0 -j MASQUERADE\nCOMMIT\n');
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = join(dir, 'dnat.yaml');
const options = { namespaceExists: (name: string) => name === 'mydmz' || name === 'client' || name === 'server' };

const EXAMPLE = `name: dnat
control: /tmp/dnat.sock
segments:
  carrier: { delay: 20ms, jitter: 2ms, loss: 1%, rate: 50mbit, seed: 7 }
hosts:
  laptop: { segment: home, address: 192.168.1.10/24, gateway: 192.168.1.1 }
  phone:  { segment: home, address: 192.168.1.11/24, gateway: 192.168.1.1 }
  server: { segment: internet, address: 203.0.113.10/24, gateway: 203.0.113.1 }
  dmz:    { segment: internet, address: 203.0.113.20/24, gateway: 203.0.113.1, netns: mydmz }
routers:
  home:
    interfaces:
      - { name: lan0, segment: home, address: 192.168.1.1/24 }
      - { name: wan0, segment: carrier, address: 100.64.0.2/24 }
    routes: [ { to: default, via: 100.64.0.1 } ]
    rules: |
      *raw
      -A PREROUTING -i lan0 -p tcp --dport 21 -j CT --helper ftp
      COMMIT
      *nat
      -A POSTROUTING -o wan0 -j MASQUERADE
      COMMIT
  cgn:
    interfaces:
      - { name: in0, segment: carrier, address: 100.64.0.1/24 }
      - { name: wan0, segment: internet, address: 203.0.113.1/24 }
    routes: [ { to: 192.168.1.0/24, via: 100.64.0.2 } ]
    rules: rules/cgn.rules
    conntrack: { max: 65536 }
    helpers: { ftp: { ports: [21] } }
`;

function refusals(text: string): string[] {
  try {
    parseLabText(file, text, options);
  } catch (error) {
    if (error instanceof ConfigErrors) return error.errors.map((e) => e.message);
    throw error;
  }
  throw new Error('the file was accepted');
}

describe('lab files', () => {
  it('reads the example: hosts in <name>-<host> namespaces (or the one named), routers on segments, impairments', () => {
    const lab = parseLabText(file, EXAMPLE, options);
    expect(lab.name).toBe('dnat');
    expect(lab.control).toEqual({ path: '/tmp/dnat.sock', group: null, mode: 0o600 });
    expect(lab.hosts.map((h) => [h.name, h.netns, h.ownsNetns, h.interfaces[0]!.name, h.interfaces[0]!.segment])).toEqual([
      ['laptop', 'dnat-laptop', true, 'eth0', 'home'],
      ['phone', 'dnat-phone', true, 'eth0', 'home'],
      ['server', 'dnat-server', true, 'eth0', 'internet'],
      ['dmz', 'mydmz', false, 'eth0', 'internet'],
    ]);
    expect(lab.hosts[0]!.interfaces[0]!.gateway).toBe(ip('192.168.1.1'));
    const [home, cgn] = lab.routers;
    expect(home!.segments).toEqual(['home', 'carrier']);
    expect(home!.spec.routes).toEqual([{ to: 0, prefixLength: 0, dev: 'wan0', via: ip('100.64.0.1') }]);
    expect(cgn!.spec.routes).toEqual([{ to: ip('192.168.1.0'), prefixLength: 24, dev: 'in0', via: ip('100.64.0.2') }]);
    expect(cgn!.spec.rules!.text).toContain('MASQUERADE');
    expect(cgn!.spec.conntrack!.max).toBe(65536);
    expect(home!.spec.rules!.firstLine).toBe(17);
    const carrier = lab.segments.find((s) => s.name === 'carrier')!;
    expect(carrier).toEqual({ name: 'carrier', impairment: { delay: 20, jitter: 2, loss: 1, rate: 50_000_000 }, seed: 7 });
    expect(lab.segments.map((s) => s.name).sort()).toEqual(['carrier', 'home', 'internet']);
  });

  it('reads a host with several interfaces', () => {
    const lab = parseLabText(
      file,
      `name: two
hosts:
  gw: { interfaces: [ { segment: a, address: 10.0.0.2/24 }, { segment: b, address: 10.0.1.2/24, name: uplink, gateway: 10.0.1.1 } ] }
routers:
  r: { interfaces: [ { name: b0, segment: b, address: 10.0.1.1/24 } ] }
`,
      options,
    );
    expect(lab.hosts[0]!.interfaces.map((i) => [i.name, i.segment, i.gateway])).toEqual([
      ['eth0', 'a', 0],
      ['uplink', 'b', ip('10.0.1.1')],
    ]);
  });

  it('reads a one-router file as a lab with one peer host per interface, in the existing namespaces', () => {
    const lab = parseLabText(
      file,
      `control: /tmp/x.sock
interfaces:
  - { name: lan0, netns: client, address: 10.0.1.1/24, peer: 10.0.1.2/24 }
  - { name: wan0, netns: server, address: 203.0.113.1/24, peer: 203.0.113.2/24, mtu: 1400 }
`,
      options,
    );
    expect(lab.routers.map((r) => [r.name, r.segments])).toEqual([['router', ['lan0', 'wan0']]]);
    expect(lab.hosts.map((h) => [h.name, h.netns, h.ownsNetns, h.interfaces[0]!.name, h.interfaces[0]!.gateway, h.interfaces[0]!.mtu])).toEqual([
      ['client', 'client', false, 'lan0', ip('10.0.1.1'), 1500],
      ['server', 'server', false, 'wan0', ip('203.0.113.1'), 1400],
    ]);
  });

  it('reports every problem of the file, each with its line, key path and value', () => {
    const text = `name: bad
segments:
  spare: { loss: 5% }
  home: { delay: 20 }
hosts:
  laptop: { segment: home, address: 192.168.2.10/24, gateway: 192.168.1.1 }
  phone: { segment: home, address: 192.168.1.1/24, gateway: 192.168.1.99 }
  far: { segment: home, address: 192.168.1.12/24, netns: missing }
routers:
  home:
    interfaces:
      - { name: a-very-long-interface-name, segment: home, address: 192.168.1.1/24 }
      - { name: lan0, segment: home, address: 192.168.1.1/24 }
    routes: [ { to: default, via: 100.64.0.1 } ]
`;
    expect(refusals(text)).toEqual([
      `${file}:12: routers.home.interfaces[0].name: must be a Linux interface name (1-15 of A-Z a-z 0-9 _ . -) (got "a-very-long-interface-name")`,
      `${file}:8: hosts.far.netns: network namespace "missing" does not exist (create it with: ip netns add missing, or leave netns out to have the lab make one) (got "missing")`,
      `${file}:6: hosts.laptop.address: is outside the subnet of router home interface lan0 (192.168.1.1/24) on segment home (got "192.168.2.10/24")`,
      `${file}:7: hosts.phone.address: the same address as router home interface lan0 on segment home (got "192.168.1.1/24")`,
      `${file}:7: hosts.phone.gateway: no router owns this address on segment home (got "192.168.1.99")`,
      `${file}:3: segments.spare: nothing attaches to this segment (no host or router interface names it) (got "spare")`,
      `${file}:4: segments.home.delay: not a duration such as 20ms or 1s (units: us, usec, ms, msec, s, sec) (got 20)`,
      `${file}:14: routers.home.routes[0].via: is on none of router home's segments (lan0 192.168.1.0/24) (got "100.64.0.1")`,
    ]);
  });

  it('refuses a host and a router of the same name, and unknown keys', () => {
    expect(
      refusals(`name: x
hosts:
  r: { segment: s, address: 10.0.0.2/24, colour: red }
routers:
  r: { interfaces: [ { name: e0, segment: s, address: 10.0.0.1/24 } ] }
`),
    ).toEqual([
      `${file}:3: hosts.r.colour: unknown key (known: segment, address, gateway, interface, mtu, netns, interfaces) (got "red")`,
      `${file}:3: hosts.r: is also the name of a router (got "r")`,
    ]);
  });
});
