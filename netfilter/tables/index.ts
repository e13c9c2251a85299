/**
 * The rule tables: raw, mangle, nat and filter in iptables-restore syntax, evaluated as the
 * kernel's ip_tables does, and printed back as iptables-save prints them.
 *
 *   const tables = new RuleTables({ reject, log, knownHelper });
 *   for (const ops of tables.hookOps()) router.register(ops);   // once: raw, mangle, filter
 *   const nat = new NatHooks(natCore, tables);                   // the nat table runs from there
 *   tables.load(text, 'config.yaml (rules)', 14);                // throws RulesError; counters from 0
 *   tables.load(text, 'saved.rules', 0, { keepCounters: true });  // iptables-restore -c
 *   tables.save(true);                                           // iptables-save -c
 *
 * The nat table has no ops of its own, as in the kernel: its chains are walked by the NAT hooks
 * (nf_nat_inet_fn, nat/nat-hooks.ts) at -100 and 100, for a connection's first packet only, and
 * this class is their NatChainRunner.
 *
 * Loading replaces the tables the text names and keeps the others, as iptables-restore does.
 * The swap is atomic: a packet already walking a table finishes on the one it started with.
 */
import type { Packet } from '../../router/core/packet.ts';
import { HOOK_NAMES, Verdict, type HookOps, type HookPoint } from '../../router/core/hooks.ts';
import { runTable } from './evaluate.ts';
import type { ExtensionContext, TablesEnv } from './extension.ts';
import { recentUse } from './matches/recent.ts';
import { RecentTables, type RecentList, type RecentUse } from './matches/recent-table.ts';
import { parseRuleset } from './parser.ts';
import type { LoadedTable, ParsedRuleset } from './ruleset.ts';
import { saveTables } from './save.ts';
import { TABLE_HOOKS, TABLE_NAMES, TableId } from './tables.ts';

export { RulesError } from './errors.ts';
export type { RejectSender, TablesEnv } from './extension.ts';
export type { ParsedRuleset } from './ruleset.ts';

/** Runs the nat table's built-in chain for a hook (for the NAT hooks); its NAT targets bind the connection. */
export interface NatChainRunner {
  hasNatTable(): boolean;
  runNatChain(hook: HookPoint, packet: Packet): Verdict;
}

/** iptables-restore's -c (keep the counters the text gives) and --noflush (edit the loaded tables). */
export interface RestoreOptions {
  keepCounters?: boolean;
  noflush?: boolean;
}

export class RuleTables implements NatChainRunner {
  /** By TableId; null until a text loads that table. Replaced whole on apply(). */
  private tables: readonly (LoadedTable | null)[] = [null, null, null, null];
  /** By TableId: the table's ops, made once (the nat table has none: see above). */
  private readonly ops: readonly (readonly HookOps[])[];
  private readonly recent = new RecentTables();
  private readonly context: ExtensionContext;

  private readonly trace: (packet: Packet, line: string) => void;

  constructor(env: TablesEnv) {
    this.context = { ...env, now: env.now ?? (() => performance.now()), interfaces: env.interfaces ?? [], recent: this.recent };
    this.trace = env.trace ?? ((_packet, line) => env.log(line));
    const ops: HookOps[][] = [[], [], [], []];
    for (const id of [TableId.RAW, TableId.MANGLE, TableId.FILTER]) {
      for (const { hook, priority } of TABLE_HOOKS[id]!) {
        const fn = (packet: Packet, at: HookPoint): Verdict => this.run(id, at, packet);
        ops[id]!.push(Object.freeze({ hook, priority, fn, name: `iptables ${TABLE_NAMES[id]} ${HOOK_NAMES[hook]}` }));
      }
    }
    this.ops = ops;
  }

  /**
   * Parses without changing anything; throws RulesError. `firstLine` is the origin's line number
   * of the text's first line (0 for a file of its own, which starts at line 1). `keepCounters`:
   * start from the counters the text gives, as iptables-restore -c (else from zero, as without).
   * With `noflush` (iptables-restore --noflush) the text edits the tables as they are now instead
   * of replacing them.
   */
  parse(text: string, origin: string, firstLine = 0, options: RestoreOptions = {}): ParsedRuleset {
    this.recent.beginParse();
    const current = options.noflush ? (id: TableId) => this.tables[id] ?? null : null;
    return parseRuleset(text, origin, firstLine, this.context, { keepCounters: options.keepCounters ?? false, current });
  }

  /** Installs the parsed tables, counters starting from what parse() kept of their text (or zero). */
  apply(ruleset: ParsedRuleset): void {
    const next = this.tables.slice();
    for (const table of ruleset.tables) {
      table.counters.set(table.initialCounters);
      next[table.id] = table;
    }
    this.tables = next;
    this.recent.retain(this.recentUses());
  }

  /** The `-m recent` list the loaded rules call `name`, or null (for tests and tools that look inside). */
  recentList(name: string): RecentList | null {
    return this.recent.get(name);
  }

  load(text: string, origin: string, firstLine = 0, options: RestoreOptions = {}): void {
    this.apply(this.parse(text, origin, firstLine, options));
  }

  /** One op per built-in chain of raw, mangle and filter; each reads the current table per packet. */
  hookOps(): HookOps[] {
    return this.ops.flat();
  }

  /**
   * The ops of the tables loaded so far. Registering only these is what the kernel does (a table
   * hooks in when it is created) and spares every packet the calls of absent tables.
   */
  loadedHookOps(): HookOps[] {
    return this.ops.filter((_, id) => this.tables[id] !== null).flat();
  }

  /** Table `id` as loaded, or null when no rules text has loaded it (what `iptables -L` lists). */
  table(id: TableId): LoadedTable | null {
    return this.tables[id] ?? null;
  }

  /** As `iptables-save` prints (`iptables-save -c` with counters); only tables that were loaded. */
  save(withCounters: boolean, now = new Date(), only: TableId | null = null): string {
    return saveTables(this.tables, withCounters, now, only);
  }

  /**
   * Whether the loaded rules need connection tracking: a nat table, or a match or target that
   * says so (conntrack, state, helper, connmark; CT but for --notrack; CONNMARK), the users that
   * make the kernel register conntrack in a namespace. Decided from the rules as parsed, never
   * from their text.
   */
  needsConntrack(): boolean {
    if (this.tables[TableId.NAT]) return true;
    return this.tables.some((table) => table?.chains.some((chain) => chain.rules.some((rule) => rule.target?.needsConntrack === true || rule.matches.some((match) => match.needsConntrack === true))));
  }

  private *recentUses(): Generator<RecentUse> {
    for (const table of this.tables) {
      for (const chain of table?.chains ?? []) {
        for (const rule of chain.rules) {
          for (const match of rule.matches) {
            const use = recentUse(match);
            if (use) yield use;
          }
        }
      }
    }
  }

  hasNatTable(): boolean {
    return this.tables[TableId.NAT] !== null;
  }

  /** The nat table's built-in chain for `hook` (PREROUTING, INPUT, OUTPUT, POSTROUTING). */
  runNatChain(hook: HookPoint, packet: Packet): Verdict {
    return this.run(TableId.NAT, hook, packet);
  }

  private run(id: TableId, hook: HookPoint, packet: Packet): Verdict {
    const table = this.tables[id];
    return table === null || table.builtin[hook] === null ? Verdict.ACCEPT : runTable(table, hook, packet, this.trace);
  }
}
