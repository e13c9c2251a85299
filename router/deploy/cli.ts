/**
 * `vrouter` command line. `run` starts a router from a config file; the other commands talk to a
 * running router over its control socket.
 *
 * Exit codes: 0 success, 1 runtime failure (socket, setup), 2 bad usage, bad config or refused rules.
 */
import { ConfigError, ConfigErrors, DEFAULT_CONTROL_SOCKET } from './config.ts';
import { ControlError, controlCall, setRequestDefaults } from './control-client.ts';
import { startLab, describeLab, type RunningLab } from './lab/lab-runtime.ts';
import { loadLabFile } from './lab/lab-file.ts';
import { runExec, runLink } from './cli-lab.ts';
import { runCapture } from './cli-capture.ts';
import { runTrace } from './cli-trace.ts';
import { formatStatsTable, type StatsReply } from './stats-table.ts';
import { KernelRefusal, runScenarioCommand } from './cli-scenario.ts';
import { runConntrack } from './cli-conntrack.ts';
import { UsageError } from './cli-errors.ts';
import { RulesError } from '../../netfilter/tables/index.ts';
import { runIptables, runIptablesRestore, runIptablesSave } from './cli-iptables.ts';

const USAGE = `usage:
  vrouter run CONFIG.yaml          start the router or the lab described by CONFIG.yaml
  vrouter exec --config LAB.yaml HOST -- CMD [ARGS...]   run CMD in a lab host's namespace
  vrouter scenario run FILE.yaml [--kernel | --compare] [--junit FILE] [--keep]
  vrouter scenario check FILE.yaml [--kernel]
  vrouter link SEGMENT [down|up] [delay 50ms] [loss 5%] ...   change a lab segment
  vrouter capture [-i IFACE]... -w FILE|- [-c N] [FILTER-EXPR]   live pcapng of the interfaces
  vrouter trace [FILTER-EXPR]      every hook op, rule and fate of the packets the filter picks
  vrouter stats [-o json]          packet counters, drops by reason and by rule, per interface
  vrouter interfaces|routes [--socket PATH]
  vrouter conntrack -L|-G|-E|-D|-F|-C|-S [expect] [filters] [-o extended,id,timestamp|json]   as conntrack-tools
  vrouter conntrack -E [--ready-file PATH]   PATH is created once subscribed; exit 1 if the router goes away
  vrouter iptables-save [-c]       the live rules, as iptables-save prints them
  vrouter iptables-restore [FILE] [-c] [--noflush] [--test]   replace the rules atomically (a bad file changes nothing); -c keeps the file's counters
  vrouter iptables [-t TABLE] -L|-S|-A|-I|-D|-R|-F|-Z|-N|-X|-P|-E ...   list or edit the live rules, as iptables

Tools that talk to a running router take --socket PATH (default ${DEFAULT_CONTROL_SOCKET}),
or --config CONFIG.yaml to use that config's control socket, and --router NAME for a router of a
lab (not needed when the lab has one router).`;


/** Pulls `--name VALUE` options out of argv; what is left are positional words. */
export function takeOption(argv: string[], name: string): string | undefined {
  const at = argv.indexOf(name);
  if (at < 0) return undefined;
  const value = argv[at + 1];
  if (value === undefined) throw new UsageError(`${name} needs a value`);
  argv.splice(at, 2);
  return value;
}

export function socketPath(argv: string[]): string {
  const socket = takeOption(argv, '--socket');
  const config = takeOption(argv, '--config');
  if (socket) return socket;
  if (config) return loadLabFile(config, { namespaceExists: () => true }).control.path;
  return DEFAULT_CONTROL_SOCKET;
}

/** `-o json` (the only output option of stats); anything else left over is a usage error. */
function takeOutputJson(argv: string[], command: string): boolean {
  const output = takeOption(argv, '-o');
  if (output !== undefined && output !== 'json') throw new UsageError(`${command} -o ${output}: the only output format is json`);
  if (argv.length) throw new UsageError(`${command}: unknown argument ${argv[0]}`);
  return output === 'json';
}

async function run(argv: string[]): Promise<void> {
  const file = argv[0];
  if (!file || argv.length > 1) throw new UsageError('run takes exactly one config file');
  const lab = loadLabFile(file);
  let running: RunningLab;
  try {
    running = await startLab(lab);
  } catch (error) {
    // A refused rule is a bad config: it names its own file and line.
    if (error instanceof RulesError) {
      process.stderr.write(`vrouter: ${error.message}\n`);
      process.exit(2);
    }
    process.stderr.write(`vrouter: ${file}: ${(error as Error).message}\n`);
    process.exit(1);
  }
  const stop = (signal: string): void => {
    running.close();
    process.stdout.write(`vrouter: ${signal}: interfaces removed, stopped\n`);
    process.exit(0);
  };
  // A hangup (the terminal or the ssh session went away) stops it as cleanly as an interrupt.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(signal, () => stop(signal));
  process.stdout.write(`vrouter ready: ${describeLab(lab)} control ${lab.control.path}\n`);
}

/** `vrouter COMMAND --help`: that command's lines of the usage, exit 0. */
function helpFor(command: string, argv: string[]): boolean {
  const dash = argv.indexOf('--');
  const options = dash < 0 ? argv : argv.slice(0, dash);
  if (!options.includes('--help') && !options.includes('-h')) return false;
  const lines = USAGE.split('\n').filter((line) => line.trimStart().startsWith(`vrouter ${command}`));
  process.stdout.write(`${lines.length ? lines.join('\n') : USAGE}\n`);
  return true;
}

/**
 * A reader that went away (`vrouter iptables-save | head -1`) ends a tool quietly, exit 0, with no
 * stack trace; a running router (`run`) keeps routing, its output being status lines only.
 */
function endQuietlyOnClosedPipe(keepRunning: boolean): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE') throw error;
      if (!keepRunning) process.exit(0);
    });
  }
}

async function main(argv: string[]): Promise<void> {
  const command = argv.shift();
  endQuietlyOnClosedPipe(command === 'run');
  if (command !== undefined && !command.startsWith('-') && helpFor(command, argv)) return;
  const router = command === 'exec' ? undefined : takeOption(argv, '--router');
  if (router !== undefined) setRequestDefaults({ router });
  switch (command) {
    case 'run':
      return run(argv);
    case 'conntrack':
      return runConntrack(socketPath(argv), argv);
    case 'iptables-save':
      return runIptablesSave(socketPath(argv), argv);
    case 'iptables-restore':
      return runIptablesRestore(socketPath(argv), argv);
    case 'iptables':
      return runIptables(socketPath(argv), argv);
    case 'scenario':
      process.exitCode = await runScenarioCommand(argv);
      return;
    case 'exec':
      return runExec(takeOption(argv, '--config'), argv);
    case 'link':
      return runLink(socketPath(argv), argv);
    case 'capture':
      return runCapture(socketPath(argv), argv);
    case 'trace':
      return runTrace(socketPath(argv), argv);
    case 'stats': {
      const path = socketPath(argv);
      const json = takeOutputJson(argv, 'stats');
      const stats = (await controlCall(path, 'stats')) as StatsReply;
      process.stdout.write(json ? `${JSON.stringify(stats, null, 2)}\n` : formatStatsTable(stats));
      return;
    }
    case 'interfaces':
    case 'routes': {
      const path = socketPath(argv);
      if (argv.length) throw new UsageError(`${command} takes no arguments (got ${argv.join(' ')})`);
      process.stdout.write(`${JSON.stringify(await controlCall(path, command), null, 2)}\n`);
      return;
    }
    case undefined:
      throw new UsageError('say which command');
    case '-h':
    case '--help':
      process.stdout.write(`${USAGE}\n`);
      return;
    default:
      throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  // Refused rules name their file and line: bad input, as `vrouter run` with bad rules.
  if (error instanceof KernelRefusal || (error instanceof ControlError && error.routerCode === 'EVROUTERRULES')) {
    process.stderr.write(`vrouter: ${error.message}\n`);
    process.exit(2);
  }
  if (error instanceof ConfigErrors) {
    for (const problem of error.errors) process.stderr.write(`vrouter: ${problem.message}\n`);
    process.exit(2);
  }
  if (error instanceof ConfigError || error instanceof UsageError) {
    process.stderr.write(`vrouter: ${error.message}\n`);
    if (error instanceof UsageError) process.stderr.write(`${USAGE}\n`);
    process.exit(2);
  }
  process.stderr.write(`vrouter: ${(error as Error).message}\n`);
  process.exit(1);
});
