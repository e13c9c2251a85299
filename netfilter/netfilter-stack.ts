/**
 * Puts netfilter on a router: defrag (-400), the rule tables (raw -300, mangle -150, nat -100/100,
 * filter 0), conntrack in (-200), helpers (300) and confirm (INT_MAX), each registered as plain
 * hook ops, so any other module can register its own anywhere in between.
 */
import type { Router } from '../router/router.ts';
import type { ControlServer } from '../router/control-server.ts';
import { RateLimitedLog } from '../router/rate-limited-log.ts';
import { buildTcpReset } from '../router/tcp-reset.ts';
import { ConntrackCore, type ConntrackOptions } from './conntrack/conntrack-core.ts';
import { registerConntrackCommands } from './conntrack/conntrack-commands.ts';
import { createTrackers, genericTracker, type TrackerOptions } from './conntrack/trackers/index.ts';
import { seqAdjustHookOps, seqOffset } from './conntrack/seqadj.ts';
import { Defrag } from './defrag.ts';
import { HelperRegistry } from './helpers/helper-registry.ts';
import { RuleTables } from './tables/index.ts';

export interface NetfilterOptions {
  conntrack?: Pick<ConntrackOptions, 'max' | 'buckets' | 'autoHelpers' | 'checksum'>;
  trackers?: TrackerOptions;
  helpers?: HelperRegistry;
  log?: RateLimitedLog;
  /** Where LOG target lines go (default: stdout, like a kernel log reader would show them). */
  logSink?: (line: string) => void;
}

export class NetfilterStack {
  readonly defrag = new Defrag();
  readonly helpers: HelperRegistry;
  readonly conntrack: ConntrackCore;
  readonly rules: RuleTables;

  constructor(
    readonly router: Router,
    options: NetfilterOptions = {},
  ) {
    const log = options.log ?? new RateLimitedLog();
    this.helpers = options.helpers ?? new HelperRegistry();
    const trackerOptions = options.trackers ?? {};
    const trackers = createTrackers({ ...trackerOptions, tcp: { ...trackerOptions.tcp, seqOffset } });
    this.conntrack = new ConntrackCore({ ...options.conntrack, trackers, generic: genericTracker, helpers: this.helpers, log });
    this.rules = new RuleTables({
      reject: {
        sendIcmpError: (packet, type, code) => router.sendIcmpError(packet, type, code),
        sendTcpReset: (packet) => {
          const reset = buildTcpReset(packet.buf);
          if (reset) router.sendLocal(reset);
        },
      },
      log: options.logSink ?? ((line) => process.stdout.write(`${line}\n`)),
      knownHelper: (name) => this.helpers.has(name),
    });
  }

  /** Registers every op on the router and starts the conntrack collector. */
  attach(): void {
    const seqadj = seqAdjustHookOps(() => this.conntrack.counters.dropped++);
    for (const ops of [...this.defrag.hookOps(), ...this.conntrack.hookOps(), ...seqadj, ...this.rules.hookOps()]) this.router.register(ops);
    this.router.onDrop = (packet) => this.conntrack.packetDropped(packet);
    this.conntrack.start();
  }

  registerCommands(control: ControlServer): void {
    registerConntrackCommands(control, this.conntrack);
    control.register('iptables-save', { handler: (args) => this.rules.save(args.counters === true) });
    control.register('iptables-restore', {
      handler: (args) => {
        this.rules.load(String(args.text ?? ''), String(args.origin ?? 'iptables-restore'), 1);
        return 'ok';
      },
    });
  }

  close(): void {
    this.conntrack.stop();
    this.defrag.close();
  }
}
