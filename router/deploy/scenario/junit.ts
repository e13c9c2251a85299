/**
 * JUnit XML as CI systems read it (the Ant/Surefire schema Jenkins, GitLab and GitHub reporters
 * take): one <testsuite> per scenario, one <testcase> per service and step with its time in
 * seconds, <failure message=...> with the details for a failed one, <skipped/> for one the run
 * never reached, and the command's output in <system-out> / <system-err>.
 */
export interface CaseResult {
  name: string;
  /** 'service' or 'step', shown as the classname next to the scenario. */
  kind: string;
  outcome: 'passed' | 'failed' | 'skipped';
  /** ms */
  duration: number;
  message?: string;
  details?: string;
  stdout?: string;
  stderr?: string;
}

export function escapeXml(text: string): string {
  // XML 1.0 cannot carry most control characters at all, not even escaped.
  return text
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

const seconds = (ms: number): string => (ms / 1000).toFixed(3);

export interface SuiteResult {
  name: string;
  cases: readonly CaseResult[];
  timestamp: Date;
  /** ms */
  duration: number;
}

export function junitXml(suites: readonly SuiteResult[]): string {
  const all = suites.flatMap((suite) => suite.cases);
  const count = (cases: readonly CaseResult[], outcome: CaseResult['outcome']): number => cases.filter((c) => c.outcome === outcome).length;
  const total = suites.reduce((sum, suite) => sum + suite.duration, 0);
  const lines = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="vrouter scenarios" tests="${all.length}" failures="${count(all, 'failed')}" errors="0" skipped="${count(all, 'skipped')}" time="${seconds(total)}">`,
  ];
  for (const suite of suites) {
    const { name, cases } = suite;
    lines.push(
      `  <testsuite name="${escapeXml(name)}" tests="${cases.length}" failures="${count(cases, 'failed')}" errors="0" skipped="${count(cases, 'skipped')}" time="${seconds(suite.duration)}" timestamp="${suite.timestamp.toISOString().replace(/\.\d{3}Z$/, '')}">`,
    );
    for (const c of cases) {
      const open = `    <testcase classname="${escapeXml(`${name}.${c.kind}`)}" name="${escapeXml(c.name)}" time="${seconds(c.duration)}"`;
      const body: string[] = [];
      if (c.outcome === 'failed') body.push(`      <failure message="${escapeXml(c.message ?? 'failed')}">${escapeXml(c.details ?? '')}</failure>`);
      if (c.outcome === 'skipped') body.push(`      <skipped${c.message ? ` message="${escapeXml(c.message)}"` : ''}/>`);
      if (c.stdout) body.push(`      <system-out>${escapeXml(c.stdout)}</system-out>`);
      if (c.stderr) body.push(`      <system-err>${escapeXml(c.stderr)}</system-err>`);
      if (body.length === 0) lines.push(`${open}/>`);
      else lines.push(`${open}>`, ...body, '    </testcase>');
    }
    lines.push('  </testsuite>');
  }
  lines.push('</testsuites>', '');
  return lines.join('\n');
}
