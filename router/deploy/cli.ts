/**
 * `vrouter` command line. `run` starts a router from a config file; the other commands talk to a
 * running router over its control socket.
 *
 * Exit codes: 0 success, 1 runtime failure (socket, setup), 2 bad usage or bad config.
 */
import { ConfigError, DEFAULT_CONTROL_SOCKET } from './config.ts';
import { controlCall, setRequestDefaults } from './control-client.ts';
import { startLab, describeLab, type RunningLab } from './lab/lab-runtime.ts';
import { ConfigErrors } from './lab/lab-config.ts';
import { loadLabFile } from './lab/lab-file.ts';
import { runExec, runLink } from './cli-lab.ts';
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
  vrouter stats [--socket PATH]    packet counters and drops by reason
  vrouter interfaces|routes [--socket PATH]
  vrouter conntrack -L|-E|-D|-F|-C [expect] [filters] [-o json]   as conntrack-tools
  vrouter iptables-save [-c]       the live rules, as iptables-save prints them
  vrouter iptables-restore [FILE] [--noflush] [--test]   replace the rules atomically (a bad file changes nothing)
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
  if (config) return loadLabFile(config, { namespaceExists: () => true }).control;
  return DEFAULT_CONTROL_SOCKET;
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
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.stdout.write(`vrouter ready: ${describeLab(lab)} control ${lab.control}\n`);
}

async function main(argv: string[]): Promise<void> {
  const command = argv.shift();
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
    case 'stats':
    case 'interfaces':
    case 'routes': {
      const path = socketPath(argv);
      process.stdout.write(`${JSON.stringify(await controlCall(path, command), null, 2)}\n`);
      return;
    }
    case undefined:
    case '-h':
    case '--help':
      process.stdout.write(`${USAGE}\n`);
      return;
    default:
      throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof KernelRefusal) {
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
