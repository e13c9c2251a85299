/**
 * FTP through the router as text scenarios (see scenario.ts): control segments in, the segments
 * that leave the router out, with their rewritten commands and adjusted seq / ack / SACK numbers,
 * and the data connections the expectations let through, NATed to follow their master. The router
 * is built by buildRouter with the rules of bench.ts; a segment enters on the side its source is on.
 */
import { describe, expect, it } from 'vitest';
import { ftpBench, type FtpBenchOptions } from './bench.ts';
import { runScenario } from './scenario.ts';

function run(options: FtpBenchOptions, text: string): void {
  const b = ftpBench(options);
  const { expected, actual } = runScenario(text, (buf) => b.forward(buf).out);
  expect(actual).toEqual(expected);
}

/** lan0 10.0.1.1/24, wan0 203.0.113.1/24: the public address is wan0's own. */
const MASQUERADE = { snat: { inside: '10.0.1.0/24', to: '203.0.113.1' } };

describe('FTP scenarios', () => {
  it('active mode behind MASQUERADE: PORT grows by 3, later seq / ack / SACK follow, the data connection reaches the client', () => {
    run(
      MASQUERADE,
      String.raw`
      client = 10.0.1.2:40000
      server = 203.0.113.2:21
      public = 203.0.113.1:40000

      client > server S seq=999
      => public > server S seq=999
      server > public SA seq=4999 ack=1000
      => server > client SA seq=4999 ack=1000
      client > server seq=1000 ack=5000
      => public > server seq=1000 ack=5000
      server > public seq=5000 ack=1000 "220 ready\r\n"
      => server > client seq=5000 ack=1000 "220 ready\r\n"
      client > server seq=1000 ack=5011 "USER ftp\r\n"
      => public > server seq=1000 ack=5011 "USER ftp\r\n"
      server > public seq=5011 ack=1010 "331 ok\r\n"
      => server > client seq=5011 ack=1010 "331 ok\r\n"

      # 21 bytes become 24: the client's later bytes move up by 3, the server's acks down by 3.
      client > server seq=1010 ack=5019 "PORT 10,0,1,2,18,67\r\n"
      => public > server seq=1010 ack=5019 "PORT 203,0,113,1,18,67\r\n"
      # A retransmission is rewritten again, and not counted twice.
      client > server seq=1010 ack=5019 "PORT 10,0,1,2,18,67\r\n"
      => public > server seq=1010 ack=5019 "PORT 203,0,113,1,18,67\r\n"
      server > public seq=5019 ack=1034 "200 PORT command successful\r\n"
      => server > client seq=5019 ack=1031 "200 PORT command successful\r\n"
      client > server seq=1031 ack=5048 "RETR file.txt\r\n"
      => public > server seq=1034 ack=5048 "RETR file.txt\r\n"

      # The server connects from port 20 to the port it was told; it reaches the client's own.
      203.0.113.2:20 > 203.0.113.1:4675 S seq=70000
      => 203.0.113.2:20 > 10.0.1.2:4675 S seq=70000

      client > server seq=1046 ack=5048 "STOR a\r\n"
      => public > server seq=1049 ack=5048 "STOR a\r\n"
      client > server seq=1054 ack=5048 "NOOP\r\n"
      => public > server seq=1057 ack=5048 "NOOP\r\n"
      # STOR was lost past the router: the server acks RETR and SACKs NOOP.
      server > public seq=5048 ack=1049 sack=1057-1063
      => server > client seq=5048 ack=1046 sack=1054-1060
      `,
    );
  });

  it('a rewrite that shrinks (192.168.100.200 -> 10.0.0.1) across the 2^32 wrap', () => {
    run(
      { lan: '192.168.100.1/24', wan: '10.0.0.1/24', upstream: '10.0.0.254', snat: { inside: '192.168.100.0/24', to: '10.0.0.1' } },
      String.raw`
      client = 192.168.100.200:40000
      server = 198.51.100.7:21
      public = 10.0.0.1:40000

      client > server S seq=4294967270
      => public > server S seq=4294967270
      server > public SA seq=9999 ack=4294967271
      => server > client SA seq=9999 ack=4294967271
      client > server seq=4294967271 ack=10000
      => public > server seq=4294967271 ack=10000
      server > public seq=10000 ack=4294967271 "220 ready\r\n"
      => server > client seq=10000 ack=4294967271 "220 ready\r\n"
      client > server seq=4294967271 ack=10011 "USER ftp\r\n"
      => public > server seq=4294967271 ack=10011 "USER ftp\r\n"
      server > public seq=10011 ack=4294967281 "331 ok\r\n"
      => server > client seq=10011 ack=4294967281 "331 ok\r\n"

      # 28 bytes become 21 and the segment ends past 2^32 (at 13; 6 after the rewrite).
      client > server seq=4294967281 ack=10019 "PORT 192,168,100,200,18,67\r\n"
      => public > server seq=4294967281 ack=10019 "PORT 10,0,0,1,18,67\r\n"
      server > public seq=10019 ack=4294967302 "200 ok\r\n"
      => server > client seq=10019 ack=13 "200 ok\r\n"
      client > server seq=13 ack=10027 "RETR x\r\n"
      => public > server seq=6 ack=10027 "RETR x\r\n"
      client > server seq=21 ack=10027 "NOOP\r\n"
      => public > server seq=14 ack=10027 "NOOP\r\n"
      server > public seq=10027 ack=6 sack=14-20
      => server > client seq=10027 ack=13 sack=21-27
      198.51.100.7:20 > 10.0.0.1:4675 S seq=1
      => 198.51.100.7:20 > 192.168.100.200:4675 S seq=1
      `,
    );
  });

  it('passive mode behind MASQUERADE: 227 and 229 keep their text, EPRT grows, data connections are SNATed like the master', () => {
    run(
      MASQUERADE,
      String.raw`
      client = 10.0.1.2:40000
      server = 203.0.113.2:21
      public = 203.0.113.1:40000

      client > server S seq=999
      => public > server S seq=999
      server > public SA seq=4999 ack=1000
      => server > client SA seq=4999 ack=1000
      server > public seq=5000 ack=1000 "220 ready\r\n"
      => server > client seq=5000 ack=1000 "220 ready\r\n"
      client > server seq=1000 ack=5011 "USER ftp\r\n"
      => public > server seq=1000 ack=5011 "USER ftp\r\n"
      client > server seq=1010 ack=5011 "PASV\r\n"
      => public > server seq=1010 ack=5011 "PASV\r\n"

      server > public seq=5011 ack=1016 "227 Entering Passive Mode (203,0,113,2,195,80).\r\n"
      => server > client seq=5011 ack=1016 "227 Entering Passive Mode (203,0,113,2,195,80).\r\n"
      10.0.1.2:41000 > 203.0.113.2:50000 S seq=300
      => 203.0.113.1:41000 > 203.0.113.2:50000 S seq=300

      client > server seq=1016 ack=5058 "EPSV\r\n"
      => public > server seq=1016 ack=5058 "EPSV\r\n"
      server > public seq=5058 ack=1022 "229 Entering Extended Passive Mode (|||50001|)\r\n"
      => server > client seq=5058 ack=1022 "229 Entering Extended Passive Mode (|||50001|)\r\n"
      10.0.1.2:41001 > 203.0.113.2:50001 S seq=400
      => 203.0.113.1:41001 > 203.0.113.2:50001 S seq=400

      client > server seq=1022 ack=5106 "EPRT |1|10.0.1.2|4676|\r\n"
      => public > server seq=1022 ack=5106 "EPRT |1|203.0.113.1|4676|\r\n"
      client > server seq=1046 ack=5106 "LIST\r\n"
      => public > server seq=1049 ack=5106 "LIST\r\n"
      203.0.113.2:20 > 203.0.113.1:4676 S seq=500
      => 203.0.113.2:20 > 10.0.1.2:4676 S seq=500
      `,
    );
  });

  it('a DNATed server: the 227 address grows to the public one, and the data connection reaches the inside server', () => {
    run(
      { lan: '10.0.2.1/24', wan: '198.51.100.1/24', upstream: '198.51.100.254', dnat: { to: '10.0.2.5' } },
      String.raw`
      client = 203.0.113.9:41000
      service = 198.51.100.1:21
      server = 10.0.2.5:21

      client > service S seq=100
      => client > server S seq=100
      server > client SA seq=200 ack=101
      => service > client SA seq=200 ack=101
      server > client seq=201 ack=101 "220 ready\r\n"
      => service > client seq=201 ack=101 "220 ready\r\n"
      client > service seq=101 ack=212 "USER ftp\r\n"
      => client > server seq=101 ack=212 "USER ftp\r\n"
      server > client seq=212 ack=111 "331 ok\r\n"
      => service > client seq=212 ack=111 "331 ok\r\n"
      client > service seq=111 ack=220 "PASV\r\n"
      => client > server seq=111 ack=220 "PASV\r\n"

      # 46 bytes become 50: the server's later bytes move up by 4, the client's acks down by 4.
      server > client seq=220 ack=117 "227 Entering Passive Mode (10,0,2,5,195,80).\r\n"
      => service > client seq=220 ack=117 "227 Entering Passive Mode (198,51,100,1,195,80).\r\n"
      client > service seq=117 ack=270 "LIST\r\n"
      => client > server seq=117 ack=266 "LIST\r\n"
      server > client seq=266 ack=123 "150 ok\r\n"
      => service > client seq=270 ack=123 "150 ok\r\n"
      203.0.113.9:41001 > 198.51.100.1:50000 S seq=3000
      => 203.0.113.9:41001 > 10.0.2.5:50000 S seq=3000
      `,
    );
  });

  it('drops a partial command, passes a third-party one untouched, then rewrites the next', () => {
    run(
      MASQUERADE,
      String.raw`
      client = 10.0.1.2:40000
      server = 203.0.113.2:21
      public = 203.0.113.1:40000

      client > server S seq=999
      => public > server S seq=999
      server > public SA seq=4999 ack=1000
      => server > client SA seq=4999 ack=1000
      server > public seq=5000 ack=1000 "220 ready\r\n"
      => server > client seq=5000 ack=1000 "220 ready\r\n"
      client > server seq=1000 ack=5011 "USER ftp\r\n"
      => public > server seq=1000 ack=5011 "USER ftp\r\n"

      client > server seq=1010 ack=5011 "PORT 10,0,1,2,18"
      => DROP
      client > server seq=1010 ack=5011 "port 10,0,1,99,18,67\r\n"
      => public > server seq=1010 ack=5011 "port 10,0,1,99,18,67\r\n"
      # No expectation: the SYN is for the router's own address, which serves nothing and resets it.
      203.0.113.2:20 > 203.0.113.1:4675 S seq=1
      => 203.0.113.1:4675 > 203.0.113.2:20 RA seq=0 ack=2
      client > server seq=1032 ack=5011 "PORT 10,0,1,2,18,68\r\n"
      => public > server seq=1032 ack=5011 "PORT 203,0,113,1,18,68\r\n"
      203.0.113.2:20 > 203.0.113.1:4676 S seq=1
      => 203.0.113.2:20 > 10.0.1.2:4676 S seq=1
      `,
    );
  });
});
