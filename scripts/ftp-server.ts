/**
 * A real FTP server for tests and the demo: vsftpd in a namespace, anonymous read-only, serving a
 * small text file and a 1 MiB file of known content. Active (PORT/EPRT) and passive (PASV/EPSV)
 * are both enabled, and vsftpd keeps its check that PORT names the client's own address.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { NamespaceRunner } from './netns-topology.ts';

export interface FtpServer {
  root: string;
  /** vsftpd's log of the FTP dialogue as the server saw it. */
  log(): string;
  /** sha256 of pub/big.bin */
  bigSha256: string;
  stop(): void;
}

export async function startFtpServer(topology: NamespaceRunner, role: string): Promise<FtpServer> {
  const root = `/tmp/${topology.tag}-ftp`;
  rmSync(root, { recursive: true, force: true });
  mkdirSync(join(root, 'pub'), { recursive: true });
  writeFileSync(join(root, 'pub/hello.txt'), 'hello through nat\n');
  const big = randomBytes(1024 * 1024);
  writeFileSync(join(root, 'pub/big.bin'), big);
  const config = join(root, '..', `${topology.tag}-vsftpd.conf`);
  writeFileSync(
    config,
    [
      'listen=YES',
      'anonymous_enable=YES',
      `anon_root=${root}`,
      'no_anon_password=YES',
      'pasv_enable=YES',
      'port_enable=YES',
      'connect_from_port_20=NO',
      `secure_chroot_dir=${root}`,
      'seccomp_sandbox=NO',
      // The server's own view of the dialogue: the PORT and 227 lines as NAT rewrote them.
      'log_ftp_protocol=YES',
      'xferlog_enable=YES',
      'xferlog_std_format=NO',
      `vsftpd_log_file=${root}.log`,
      '',
    ].join('\n'),
  );
  const child = topology.spawn(role, 'vsftpd', [config]);
  // vsftpd prints nothing when it is up: wait until the port answers from inside the namespace.
  for (let i = 0; i < 50 && !topology.exec(role, 'ss', ['-ltnH', 'sport = :21']).stdout.includes(':21'); i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    root,
    log: () => (existsSync(`${root}.log`) ? readFileSync(`${root}.log`, 'utf8') : ''),
    bigSha256: createHash('sha256').update(big).digest('hex'),
    stop() {
      child.kill();
      rmSync(root, { recursive: true, force: true });
      rmSync(config, { force: true });
      rmSync(`${root}.log`, { force: true });
    },
  };
}
