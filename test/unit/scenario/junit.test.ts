import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { junitXml } from '../../../router/deploy/scenario/junit.ts';

/** The shape CI reporters read (Surefire / Jenkins JUnit): written out by hand as the reference. */
const SAMPLE = `<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="vrouter scenarios" tests="4" failures="1" errors="0" skipped="1" time="3.500">
  <testsuite name="ftp-double-nat" tests="4" failures="1" errors="0" skipped="1" time="3.500" timestamp="2026-12-02T08:00:00">
    <testcase classname="ftp-double-nat.service" name="ftpd" time="0.300"/>
    <testcase classname="ftp-double-nat.step" name="active FTP through both NATs" time="1.200">
      <system-out>hello through nat</system-out>
    </testcase>
    <testcase classname="ftp-double-nat.step" name="active fails &lt;now&gt;" time="2.000">
      <failure message="expected an exit other than 0, got 0">curl -s &quot;ftp://x&quot; &amp; more</failure>
      <system-err>warning \\x07</system-err>
    </testcase>
    <testcase classname="ftp-double-nat.step" name="settle" time="0.000">
      <skipped/>
    </testcase>
  </testsuite>
</testsuites>
`;

describe('JUnit XML', () => {
  const xml = junitXml([
    {
      name: 'ftp-double-nat',
      cases: [
      { name: 'ftpd', kind: 'service', outcome: 'passed', duration: 300 },
      { name: 'active FTP through both NATs', kind: 'step', outcome: 'passed', duration: 1200, stdout: 'hello through nat' },
      { name: 'active fails <now>', kind: 'step', outcome: 'failed', duration: 2000, message: 'expected an exit other than 0, got 0', details: 'curl -s "ftp://x" & more', stderr: 'warning \u0007' },
      { name: 'settle', kind: 'step', outcome: 'skipped', duration: 0 },
      ],
      timestamp: new Date('2026-12-02T08:00:00.123Z'),
      duration: 3500,
    },
  ]);

  it('writes the sample exactly: suite, cases with times, failure, skip, output, escaping', () => {
    expect(xml).toBe(SAMPLE);
  });

  it('is well-formed XML (xmllint)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'junit-'));
    try {
      writeFileSync(join(dir, 'report.xml'), xml);
      expect(execFileSync('xmllint', ['--noout', join(dir, 'report.xml')], { encoding: 'utf8' })).toBe('');
      writeFileSync(join(dir, 'bad.xml'), xml.replace('&amp;', '&'));
      expect(() => execFileSync('xmllint', ['--noout', join(dir, 'bad.xml')], { stdio: 'pipe' })).toThrow();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
