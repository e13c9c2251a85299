/**
 * `control:` in router and lab files: a path, or `{ path, group, mode }` (issue 12, items 2 and 3).
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, ConfigErrors, parseConfig } from '../../../router/deploy/config.ts';
import { parseLabText } from '../../../router/deploy/lab/lab-file.ts';

const options = { namespaceExists: () => true };
const INTERFACES = 'interfaces:\n  - { name: a, netns: client, address: 10.0.0.1/30, peer: 10.0.0.2/30 }\n';
const LAB = 'name: l\nhosts:\n  h: { segment: s, address: 10.0.0.2/24 }\n';

const router = (control: string) => parseConfig('r.yaml', `${control}\n${INTERFACES}`, options).control;
const lab = (control: string) => parseLabText('lab.yaml', `${control}\n${LAB}`, options).control;

function refusal(read: () => unknown): string {
  try {
    read();
  } catch (error) {
    if (error instanceof ConfigError || error instanceof ConfigErrors) return error.message;
    throw error;
  }
  throw new Error('accepted');
}

describe('control:', () => {
  it('defaults to a socket 0600 in /run/vrouter', () => {
    expect(parseConfig('r.yaml', INTERFACES, options).control).toEqual({ path: '/run/vrouter/vrouter.sock', group: null, mode: 0o600 });
    expect(parseLabText('lab.yaml', LAB, options).control).toEqual({ path: '/run/vrouter/vrouter.sock', group: null, mode: 0o600 });
  });

  it.each([
    ['control: /tmp/x.sock', { path: '/tmp/x.sock', group: null, mode: 0o600 }],
    ['control: { path: /run/vrouter/x.sock }', { path: '/run/vrouter/x.sock', group: null, mode: 0o600 }],
    ['control: { path: /run/x/s.sock, group: 65534 }', { path: '/run/x/s.sock', group: 65534, mode: 0o660 }],
    ['control: { group: nogroup }', { path: '/run/vrouter/vrouter.sock', group: 65534, mode: 0o660 }],
    ['control: { group: "0", mode: 0640 }', { path: '/run/vrouter/vrouter.sock', group: 0, mode: 0o640 }],
    ['control: { mode: "0600" }', { path: '/run/vrouter/vrouter.sock', group: null, mode: 0o600 }],
    ['control: { mode: 0o660 }', { path: '/run/vrouter/vrouter.sock', group: null, mode: 0o660 }],
    ['control: { mode: 700 }', { path: '/run/vrouter/vrouter.sock', group: null, mode: 0o700 }],
  ])('reads %s, in a router file and in a lab file', (control, expected) => {
    expect(router(control)).toEqual(expected);
    expect(lab(control)).toEqual(expected);
  });

  it.each([
    ['control: { mode: 0666 }', 'r.yaml:1: control.mode: must not give others access (anyone on the machine could change the rules): use group: for the users who may (got "0666")'],
    ['control: { mode: 0777 }', 'r.yaml:1: control.mode: must not give others access'],
    ['control: { mode: 04600 }', 'r.yaml:1: control.mode: must not give others access'],
    ['control: { mode: 0680 }', 'r.yaml:1: control.mode: must be octal permission bits such as 0600 or 0660 (got 680)'],
    ['control: { mode: rw }', 'r.yaml:1: control.mode: must be octal permission bits such as 0600 or 0660 (got "rw")'],
    ['control: { group: no-such-group-hc }', 'r.yaml:1: control.group: no group of this name on this machine (getent group no-such-group-hc finds none) (got "no-such-group-hc")'],
    ['control: { group: "-s" }', 'r.yaml:1: control.group: must be a group name or a gid (got "-s")'],
    ['control: { group: 1.5 }', 'r.yaml:1: control.group: must be a group name or a gid from 0 to 4294967294 (got 1.5)'],
    ['control: { socket: /tmp/x }', 'r.yaml:1: control.socket: unknown key (known: path, group, mode) (got "/tmp/x")'],
    ['control: [ /tmp/x ]', 'r.yaml:1: control: must be a mapping (got ["/tmp/x"])'],
    ['control: { path: "" }', 'r.yaml:1: control.path: must be a non-empty string (got "")'],
  ])('refuses %s with the line and key', (control, message) => {
    expect(refusal(() => router(control))).toContain(message);
    expect(refusal(() => lab(control))).toContain(message.replace('r.yaml', 'lab.yaml'));
  });
});
