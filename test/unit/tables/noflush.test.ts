/**
 * iptables-restore --noflush and --test. NOFLUSH_AFTER is what the real iptables-save -c printed
 * (iptables v1.8.9, nf_tables, in a scratch network namespace) after BASE was loaded with
 * iptables-restore -c and NOFLUSH_INPUT with iptables-restore --noflush: the tables in the input
 * are edited, not flushed, a `:CHAIN - [0:0]` line flushes that user chain, the other tables stay.
 */
import { describe, expect, it } from 'vitest';
import { CommandSet } from '../../../router/deploy/command-registry.ts';
import { registerRouterCommands } from '../../../router/deploy/router-commands.ts';
import type { ControlReply } from '../../../router/deploy/control-server.ts';
import { buildRouter } from '../../../router/stack/build-router.ts';

const BASE = `*filter
:INPUT ACCEPT [1:2]
:FORWARD DROP [5:500]
:OUTPUT ACCEPT [0:0]
:zeta - [0:0]
:alpha - [0:0]
[7:700] -A FORWARD -j zeta
[8:800] -A FORWARD -s 1.1.1.1/32 -j ACCEPT
[9:900] -A zeta -j RETURN
[3:300] -A alpha -s 2.2.2.2/32
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
[4:400] -A POSTROUTING -o wan0 -j MASQUERADE
COMMIT
`;

const NOFLUSH_INPUT = `*filter
:FORWARD ACCEPT [0:0]
:alpha - [0:0]
:beta - [0:0]
-A FORWARD -s 9.9.9.9 -j beta
-I FORWARD -s 8.8.8.8
-A alpha -s 7.7.7.7
-D FORWARD -s 1.1.1.1/32 -j ACCEPT
-F zeta
COMMIT
`;

const NOFLUSH_AFTER = `*filter
:INPUT ACCEPT [1:2]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:alpha - [0:0]
:beta - [0:0]
:zeta - [0:0]
[0:0] -A FORWARD -s 8.8.8.8/32
[7:700] -A FORWARD -j zeta
[0:0] -A FORWARD -s 9.9.9.9/32 -j beta
[0:0] -A alpha -s 7.7.7.7/32
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
[4:400] -A POSTROUTING -o wan0 -j MASQUERADE
COMMIT
`;

/** The rule tables of a router with `text` loaded as iptables-restore -c loads it (NAT's targets included, as production builds them). */
function loaded(text: string) {
  const built = buildRouter({ interfaces: [] });
  built.netfilter.loadRules(text, 'base.rules', 0, { keepCounters: true });
  return { tables: built.netfilter.rules };
}

const withoutComments = (text: string): string => text.replace(/^#.*\n/gm, '');

describe('iptables-restore --noflush', () => {
  it('edits the tables the input names as they are, counters kept, as the real iptables-restore --noflush', () => {
    const { tables } = loaded(BASE);
    tables.apply(tables.parse(NOFLUSH_INPUT, 'noflush.rules', 0, { noflush: true }));
    expect(withoutComments(tables.save(true))).toBe(NOFLUSH_AFTER);
  });

  it('replaces the tables the input names without it', () => {
    const { tables } = loaded(BASE);
    tables.apply(tables.parse('*filter\n-A FORWARD -s 8.8.8.8\nCOMMIT\n', 'flush.rules'));
    expect(tables.save(false)).toContain(':FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A FORWARD -s 8.8.8.8/32\nCOMMIT');
    expect(tables.save(false)).not.toContain('zeta');
  });

  it('starts a table nothing loaded yet from its empty built-in chains, and flushes one with -F', () => {
    const { tables } = loaded(BASE);
    tables.apply(tables.parse('*raw\n-A PREROUTING -p tcp --dport 21 -j CT --helper ftp\nCOMMIT\n*nat\n-F\nCOMMIT\n', 'noflush.rules', 0, { noflush: true }));
    expect(withoutComments(tables.save(false))).toContain('*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A PREROUTING -p tcp -m tcp --dport 21 -j CT --helper ftp\nCOMMIT\n');
    expect(tables.save(false)).not.toContain('MASQUERADE');
  });

  it('refuses a user chain declared twice in the input, and names the line', () => {
    const { tables } = loaded(BASE);
    expect(() => tables.parse('*filter\n:alpha - [0:0]\n:alpha - [0:0]\nCOMMIT\n', 'noflush.rules', 0, { noflush: true })).toThrow('noflush.rules:3: chain alpha is declared twice');
  });

  it('refuses a command the tables cannot take, with the line, and changes nothing', () => {
    const { tables } = loaded(BASE);
    const before = tables.save(true);
    expect(() => tables.apply(tables.parse('*filter\n-A FORWARD -s 6.6.6.6\n-D FORWARD -s 5.5.5.5\nCOMMIT\n', 'noflush.rules', 0, { noflush: true }))).toThrow(
      'noflush.rules:3: no rule "-A FORWARD -s 5.5.5.5/32" in chain FORWARD to delete',
    );
    expect(tables.save(true)).toBe(before);
  });
});

describe('the iptables-restore control command', () => {
  const reply: ControlReply = {
    send: () => undefined,
    fail: () => undefined,
    end: () => undefined,
    onClose: () => undefined,
    raw() {
      throw new Error('not a stream');
    },
  };

  function restoreCommand() {
    const built = buildRouter({ interfaces: [], rules: { text: BASE, origin: 'base.rules', firstLine: 0 } });
    const commands = new CommandSet();
    registerRouterCommands(commands, built, []);
    const restore = (args: Record<string, unknown>): unknown => commands.commands.get('iptables-restore')!.handler(args, reply);
    return { built, restore };
  }

  it('checks a file with --test and changes nothing; refuses a bad one with its line', () => {
    const { built, restore } = restoreCommand();
    const before = built.netfilter.rules.save(true);
    expect(restore({ text: '*filter\n-A FORWARD -s 6.6.6.6\nCOMMIT\n', origin: 'test.rules', test: true })).toBe('ok');
    expect(() => restore({ text: '*filter\n-A FORWARD -s 6.6.6.6\n-A FORWARD -m frob\nCOMMIT\n', origin: 'test.rules', test: true })).toThrow('test.rules:3: unknown match "frob"');
    expect(built.netfilter.rules.save(true)).toBe(before);
  });

  it('keeps the other rules with --noflush', () => {
    const { built, restore } = restoreCommand();
    restore({ text: '*raw\n-F\nCOMMIT\n*filter\n-I FORWARD -s 6.6.6.6\nCOMMIT\n', origin: 'test.rules', noflush: true });
    const saved = built.netfilter.rules.save(false);
    expect(saved).toContain('-A FORWARD -s 6.6.6.6/32\n-A FORWARD -j zeta\n');
    expect(saved).toContain('-A POSTROUTING -o wan0 -j MASQUERADE\n');
  });
});
