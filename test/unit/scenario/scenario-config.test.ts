/**
 * Scenario files: the example read into services and steps, and every refusal reported
 * at once with its line, key path and value.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigErrors } from '../../../router/deploy/config.ts';
import { parseScenario } from '../../../router/deploy/scenario/scenario-config.ts';

const dir = mkdtempSync(join(tmpdir(), 'scenario-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = join(dir, 'ftp.yaml');
writeFileSync(
  join(dir, 'double-nat.yaml'),
  `name: dn
hosts:
  laptop: { segment: home, address: 192.168.1.10/24, gateway: 192.168.1.1 }
  server: { segment: internet, address: 203.0.113.10/24, gateway: 203.0.113.1 }
routers:
  home: { interfaces: [ { name: lan0, segment: home, address: 192.168.1.1/24 }, { name: wan0, segment: carrier, address: 100.64.0.2/24 } ], routes: [ { to: default, via: 100.64.0.1 } ] }
  cgn: { interfaces: [ { name: in0, segment: carrier, address: 100.64.0.1/24 }, { name: wan0, segment: internet, address: 203.0.113.1/24 } ] }
`,
);

const EXAMPLE = `name: ftp-double-nat
lab: double-nat.yaml
services:
  - name: ftpd
    host: server
    run: vsftpd ./vsftpd.conf
    ready: { tcp: 21 }
steps:
  - name: active FTP through both NATs
    host: laptop
    run: curl -s --ftp-port - ftp://203.0.113.10/pub/hello.txt
    timeout: 20s
    expect: { exit: 0, stdout: "hello through nat" }
  - name: the CGN saw the data connection's expectation
    tool: conntrack -L expect
    router: cgn
    expect: { stdout_match: "dport=2[01] " }
    wait: 5s
  - name: without the helper, active mode fails
    tool: iptables-restore --noflush
    router: home
    stdin: "*raw\\n-F\\nCOMMIT\\n"
  - name: active fails now
    host: laptop
    run: curl -s --ftp-port - ftp://203.0.113.10/pub/hello.txt
    expect: { exit_not: 0 }
    continue: true
  - { name: degrade the carrier link, link: carrier, set: { loss: 20% } }
  - { name: settle, sleep: 1s, differs: "no reason" }
`;

function refusals(text: string): string[] {
  try {
    parseScenario(file, text, { namespaceExists: () => true });
  } catch (error) {
    if (error instanceof ConfigErrors) return error.errors.map((e) => e.message.replace(`${file}:`, ''));
    throw error;
  }
  throw new Error('accepted');
}

describe('scenario files', () => {
  it('reads the example: the lab file, a service with readiness, every kind of step', () => {
    const spec = parseScenario(file, EXAMPLE, { namespaceExists: () => true });
    expect(spec.lab.routers.map((r) => r.name)).toEqual(['home', 'cgn']);
    expect(spec.services).toEqual([{ name: 'ftpd', host: 'server', command: { argv: ['vsftpd', './vsftpd.conf'], shell: false, text: 'vsftpd ./vsftpd.conf' }, ready: { tcp: 21 }, timeout: 10_000, line: 4 }]);
    const [run, tool, restore, fails, link, sleep] = spec.steps;
    expect(run).toMatchObject({ kind: 'run', host: 'laptop', timeout: 20_000, wait: 0, expect: { exit: 0, stdout: 'hello through nat' }, continueOnFailure: false, line: 9 });
    expect(run!.kind === 'run' && run.command.argv).toEqual(['curl', '-s', '--ftp-port', '-', 'ftp://203.0.113.10/pub/hello.txt']);
    expect(tool).toMatchObject({ kind: 'tool', argv: ['conntrack', '-L', 'expect'], router: 'cgn', wait: 5000, expect: { stdoutMatch: /dport=2[01] / } });
    expect(restore).toMatchObject({ kind: 'tool', argv: ['iptables-restore', '--noflush'], stdin: '*raw\n-F\nCOMMIT\n' });
    expect(fails).toMatchObject({ kind: 'run', expect: { exitNot: 0 }, continueOnFailure: true });
    expect(link).toMatchObject({ kind: 'link', segment: 'carrier', settings: { loss: 20 } });
    expect(sleep).toMatchObject({ kind: 'sleep', duration: 1000, differs: 'no reason' });
  });

  it('takes the lab inline, its problems reported under lab.', () => {
    expect(refusals('name: x\nlab:\n  name: l\n  hosts:\n    h: { segment: s, address: 10.0.0.2/24, gateway: 10.0.0.9 }\nsteps: []\n')).toEqual([
      '5: lab.hosts.h.gateway: no router owns this address on segment s (got "10.0.0.9")',
    ]);
  });

  it('reports every problem at once', () => {
    const text = `name: bad
lab: double-nat.yaml
services:
  - { name: s, host: server, run: "echo 'open", ready: { tcp: 99999 } }
  - { name: t, host: nowhere, run: "true" }
steps:
  - { name: two things, host: laptop, run: "true", sleep: 1s }
  - { name: no host, run: "true" }
  - { name: bad wait, host: laptop, run: "true", wait: 5 }
  - { name: bad regex, host: laptop, run: "true", expect: { stdout_match: "(" } }
  - { name: unknown tool, tool: tcpdump -n }
  - { name: which router, tool: conntrack -L }
  - { name: bad link, link: nowhere, set: { loss: lots } }
  - { name: extra key, sleep: 1s, host: laptop }
`;
    expect(refusals(text)).toEqual([
      '4: services[0].run: unterminated single quote at character 6 (or say shell: true to run it with sh -c) (got "echo \'open")',
      '4: services[0].ready.tcp: must be a whole number from 1 to 65535 (got 99999)',
      '7: steps[0]: a step does one thing: run and sleep given (got ["run","sleep"])',
      '8: steps[1].host: must be a non-empty string',
      '9: steps[2].wait: not a duration such as 20ms or 1s (units: us, usec, ms, msec, s, sec) (got 5)',
      '10: steps[3].expect.stdout_match: not a regular expression: Invalid regular expression: /(/m: Unterminated group (got "(")',
      '11: steps[4].tool: unknown tool tcpdump (tools: conntrack, iptables-save, iptables-restore, iptables, stats, interfaces, routes) (got "tcpdump -n")',
      '13: steps[6].set.loss: not a percentage such as 1% (got "lots")',
      '14: steps[7].host: does not go with sleep: (a sleep step takes name, sleep, continue, differs) (got "laptop")',
      '5: services[1].host: no host of that name in lab dn (hosts: laptop, server) (got "nowhere")',
      '8: steps[1].host: no host of that name in lab dn (hosts: laptop, server) (got "")',
      '12: steps[5].tool: the lab has routers home, cgn: say which with router: (got "conntrack -L")',
      '13: steps[6].link: no segment of that name in lab dn (segments: home, carrier, internet) (got "nowhere")',
    ]);
  });

  it('names a lab file that cannot be read on the lab: line', () => {
    expect(refusals('name: x\nlab: missing.yaml\nsteps: []\n')[0]).toMatch(/^2: lab: cannot read the config file: ENOENT/);
  });
});
