/**
 * `npm run demo`: the main job on a fresh machine. A client namespace behind vrouter doing
 * MASQUERADE with the ftp helper attached by rule, a real FTP server (vsftpd) on the other side;
 * an active (PORT) and a passive (PASV) transfer through NAT; the conntrack entries and
 * expectations vrouter saw, in conntrack-tools format; then everything is removed.
 * Needs root (namespaces, TUN); installs the Debian packages it needs if they are missing.
 */
import { controlRequest } from '../router/deploy/control-client.ts';
import { isSubscribed } from '../router/deploy/conntrack-commands.ts';
import { startFtpServer, type FtpServer } from './ftp-server.ts';
import { Topology, uniqueTag } from './netns-topology.ts';
import { VROUTER_BIN, startRouterProcess, type RouterProcess } from './router-process.ts';
import { ensurePrograms } from './system-packages.ts';

function show(title: string, text: string): void {
  console.log(`\n== ${title}\n${text.replace(/^\n+|\s+$/g, '')}`);
}

const RULES = `*raw
-A PREROUTING -p tcp --dport 21 -j CT --helper ftp
COMMIT
*nat
-A POSTROUTING -o wan0 -j MASQUERADE
COMMIT
*filter
:FORWARD DROP [0:0]
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -i lan0 -j ACCEPT
COMMIT
`;

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the demo needs root: it creates network namespaces and TUN devices');
  const installed = ensurePrograms({ ip: 'iproute2', ping: 'iputils-ping', vsftpd: 'vsftpd', curl: 'curl' });
  if (installed.length) console.log(`installed: ${installed.join(' ')}`);
  const topology = new Topology(uniqueTag('demo'), ['client', 'server']);
  let router: RouterProcess | null = null;
  let ftp: FtpServer | null = null;
  try {
    const socket = `/tmp/${topology.tag}.sock`;
    const config = `control: ${socket}
interfaces:
  - { name: lan0, netns: ${topology.ns('client')}, address: 10.0.1.1/24, peer: 10.0.1.2/24 }
  - { name: wan0, netns: ${topology.ns('server')}, address: 203.0.113.1/24, peer: 203.0.113.2/24 }
rules: |
${RULES.split('\n').map((line) => `  ${line}`).join('\n')}
`;
    show('router config', config);
    router = await startRouterProcess(config);
    show('vrouter', router.output());
    ftp = await startFtpServer(topology, 'server');
    show('server: vsftpd on 203.0.113.2:21 (anonymous, pub/hello.txt)', '');

    // Watch what conntrack sees while the transfers run: the same request `vrouter conntrack -E`
    // sends, made from here so that it is listening (the router says so) before the first packet.
    const watch = (args: Record<string, unknown>) => {
      let lines = '';
      let subscribed = (): void => {};
      const ready = new Promise<void>((resolve) => (subscribed = resolve));
      const stream = controlRequest(socket, 'conntrack-events', args, (result) => {
        if (isSubscribed(result)) subscribed();
        else lines += `${String(result)}\n`;
      });
      return { ready, stop: async () => (stream.cancel(), await stream.done, lines) };
    };
    const events = watch({ events: ['NEW'] });
    const expectations = watch({ expect: true });
    await Promise.all([events.ready, expectations.ready]);

    const curl = (mode: string[]): string => {
      const result = topology.exec('client', 'curl', ['-sS', '-v', '--max-time', '8', ...mode, 'ftp://203.0.113.2/pub/hello.txt'], 20_000);
      const dialogue = result.stderr.split('\n').filter((line) => /^[<>] (PORT|EPRT|PASV|EPSV|227|229|200|150|226)/.test(line));
      return `${dialogue.join('\n')}\nreceived: ${result.stdout.trim() || `(nothing; curl exit ${result.status})`}`;
    };
    show('client$ curl --ftp-port - --disable-eprt ftp://203.0.113.2/pub/hello.txt   (active: PORT, rewritten by nf_nat_ftp)', curl(['--ftp-port', '-', '--disable-eprt']));
    show('client$ curl --ftp-pasv --disable-epsv ftp://203.0.113.2/pub/hello.txt   (passive: PASV)', curl(['--ftp-pasv', '--disable-epsv']));

    const seen = ftp.log().split('\n').filter((line) => /"(PORT|PASV|227)/.test(line)).map((line) => line.replace(/^.*?\] /, ''));
    show('what the server saw (vsftpd log): the client behind NAT, as 203.0.113.1', seen.join('\n'));
    await new Promise((resolve) => setTimeout(resolve, 300));
    show('vrouter conntrack -E -e NEW   (what was seen)', await events.stop());
    show('vrouter conntrack -E expect   (the data connections the helper expected)', await expectations.stop());
    const list = topology.exec('client', process.execPath, [VROUTER_BIN, 'conntrack', '-L', '--socket', socket]);
    show('vrouter conntrack -L', `${list.stdout}${list.stderr}`);
    const save = topology.exec('client', process.execPath, [VROUTER_BIN, 'iptables-save', '-c', '--socket', socket]);
    show('vrouter iptables-save -c', save.stdout);
  } finally {
    ftp?.stop();
    if (router) await router.stop();
    topology.destroy();
    console.log('\n== cleaned up: FTP server and router stopped, namespaces removed');
  }
}

main().catch((error: unknown) => {
  console.error(`demo: ${(error as Error).message}`);
  process.exit(1);
});
