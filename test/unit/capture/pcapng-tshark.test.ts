/**
 * Our pcapng read back by Wireshark's own reader (`tshark`, installed by .ci/run): from a file,
 * from a pipe (`vrouter capture -w - | tshark -r -`), and a pipe whose reader leaves early
 * (`| head`), which must end the capture quietly.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { FileSink, StreamSink } from '../../../router/deploy/capture/capture-sink.ts';
import { CaptureDirection, CaptureSession } from '../../../router/deploy/capture/capture-session.ts';
import { tcpPacket, udpPacket } from '../../support/packets.ts';
import { ManualClock } from './support.ts';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../../..');
const FIXTURE = join(here, 'fixtures', 'capture-to-stdout.ts');
const dir = mkdtempSync(join(tmpdir(), 'vrouter-tshark-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const { INBOUND, OUTBOUND } = CaptureDirection;
const ACK_PSH = 0x18;
const FIELDS = [
  'frame.interface_name',
  'frame.interface_description',
  'frame.packet_flags_direction',
  'frame.packet_id',
  'frame.drop_count',
  'frame.comment',
  'frame.time_epoch',
  'ip.src',
  'ftp.request.command',
  'ftp.active.cip',
  'ftp.active.port',
];

function tsharkFields(file: string): string[][] {
  const out = execFileSync('tshark', ['-r', file, '-T', 'fields', ...FIELDS.flatMap((field) => ['-e', field])], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return rows(out);
}

const rows = (out: string): string[][] => out.split('\n').filter((line) => line !== '').map((line) => line.split('\t'));

// An FTP client's PORT command inside, and as the router's FTP helper rewrote it outside.
const PORT_INSIDE = tcpPacket(
  { src: '192.168.1.10', dst: '203.0.113.5' },
  { srcPort: 40000, dstPort: 21, seq: 1000, ack: 2000, flags: ACK_PSH, window: 502, payload: Buffer.from('PORT 192,168,1,10,156,65\r\n') },
);
const PORT_OUTSIDE = tcpPacket(
  { src: '198.51.100.1', dst: '203.0.113.5' },
  { srcPort: 61000, dstPort: 21, seq: 1000, ack: 2000, flags: ACK_PSH, window: 502, payload: Buffer.from('PORT 198,51,100,1,234,96\r\n') },
);
const DNS = udpPacket({ src: '203.0.113.53', dst: '198.51.100.1' }, { srcPort: 53, dstPort: 33000, payload: Buffer.from('x') });

/** The capture both round trips write, to a file or a pipe. */
function writeCapture(capture: CaptureSession, clock: ManualClock): void {
  const lan = capture.addInterface('home:lan0', 'home, inside');
  const wan = capture.addInterface('home:wan0', 'home, uplink');
  clock.advance(123_456_789);
  capture.packet(lan, INBOUND, 7, PORT_INSIDE);
  clock.advance(1_500);
  capture.packet(wan, OUTBOUND, 7, PORT_OUTSIDE);
  capture.packet(wan, INBOUND, 8, DNS, 'dropped by filter:INPUT policy DROP');
  // Registered after packets were written: its IDB comes later in the section.
  const pc = capture.addInterface('pc:eth0', 'host pc');
  capture.packet(pc, OUTBOUND, 9, DNS);
}

const EXPECTED = [
  ['home:lan0', 'home, inside', '0x00000001', '7', '', '', '1700000000.123456789', '192.168.1.10', 'PORT', '192.168.1.10', '40001'],
  ['home:wan0', 'home, uplink', '0x00000002', '7', '', '', '1700000000.123458289', '198.51.100.1', 'PORT', '198.51.100.1', '60000'],
  ['home:wan0', 'home, uplink', '0x00000001', '8', '', 'dropped by filter:INPUT policy DROP', '1700000000.123458289', '203.0.113.53', '', '', ''],
  ['pc:eth0', 'host pc', '0x00000002', '9', '', '', '1700000000.123458289', '203.0.113.53', '', '', ''],
];

describe('pcapng read back by tshark', () => {
  it('shows interface names, directions, packet ids, comments, nanosecond times and the FTP PORT on both sides of NAT', async () => {
    const file = join(dir, 'round-trip.pcapng');
    const clock = new ManualClock(1_700_000_000_000_000_000n);
    const capture = new CaptureSession({ sink: FileSink.open(file), clock });
    writeCapture(capture, clock);
    await capture.close();
    expect(tsharkFields(file)).toEqual(EXPECTED);
  });

  it('reports the packets a slow reader lost (epb_dropcount) as tshark drop counts', async () => {
    const file = join(dir, 'drops.pcapng');
    const sink = FileSink.open(file);
    const capture = new CaptureSession({ sink, clock: new ManualClock(1_700_000_000_000_000_000n) });
    const lan = capture.addInterface('home:lan0');
    // A sink that refuses two packets, as a stream sink does while its reader is behind.
    const reserve = sink.reserve.bind(sink);
    let refuse = 0;
    sink.reserve = (length: number) => (refuse-- > 0 ? false : reserve(length));
    capture.packet(lan, INBOUND, 1, DNS);
    refuse = 2;
    for (let id = 2; id <= 4; id++) capture.packet(lan, INBOUND, id, DNS);
    await capture.close();
    expect(tsharkFields(file).map((row) => [row[3], row[4]])).toEqual([
      ['1', ''],
      ['4', '2'],
    ]);
  });

  it('is read from a pipe packet by packet as it is written: `-w - | tshark -r -`', async () => {
    // Node gives a child a socket for stdin; `cat` turns it into the pipe a shell would give tshark.
    const fields = FIELDS.map((field) => `-e ${field}`).join(' ');
    const tshark = spawn('bash', ['-c', `cat | tshark -l -r - -T fields ${fields}`], { stdio: ['pipe', 'pipe', 'ignore'] });
    let out = '';
    tshark.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    const exited = new Promise<number | null>((resolve) => tshark.once('exit', resolve));
    const clock = new ManualClock(1_700_000_000_000_000_000n);
    const capture = new CaptureSession({ sink: new StreamSink(tshark.stdin), clock });
    const lan = capture.addInterface('home:lan0', 'home, inside');
    clock.advance(123_456_789);
    capture.packet(lan, INBOUND, 7, PORT_INSIDE);
    // tshark decodes the first packet while the capture is still running.
    for (let i = 0; i < 200 && !out.includes('\n'); i++) await new Promise((resolve) => setTimeout(resolve, 25));
    expect(rows(out)).toEqual([EXPECTED[0]]);
    const wan = capture.addInterface('home:wan0', 'home, uplink');
    clock.advance(1_500);
    capture.packet(wan, OUTBOUND, 7, PORT_OUTSIDE);
    capture.packet(wan, INBOUND, 8, DNS, 'dropped by filter:INPUT policy DROP');
    await capture.close();
    expect(await exited).toBe(0);
    expect(rows(out)).toEqual(EXPECTED.slice(0, 3));
  });

  it('stops after --count packets, and tshark reads a whole file from the pipe', () => {
    const result = spawnSync(
      'bash',
      ['-c', `set -o pipefail; "${process.execPath}" --import tsx "${FIXTURE}" 5 | tshark -r - -T fields -e frame.packet_id`],
      { cwd: root, encoding: 'utf8', timeout: 30_000 },
    );
    expect(result.status).toBe(0);
    expect(result.stdout.trim().split('\n')).toEqual(['1', '2', '3', '4', '5']);
  });

  it('ends quietly, with status 0 and nothing on stderr, when the reader closes the pipe: `-w - | head -c 1000`', () => {
    const result = spawnSync(
      'bash',
      ['-c', `"${process.execPath}" --import tsx "${FIXTURE}" 0 | head -c 1000 > /dev/null; echo "status \${PIPESTATUS[0]}"`],
      { cwd: root, encoding: 'utf8', timeout: 30_000 },
    );
    expect(result.stderr).toBe('');
    expect(result.stdout.trim()).toBe('status 0');
  });
});
