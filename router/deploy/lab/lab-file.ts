/**
 * Reads whatever `vrouter run` is given: a lab file, or a one-router config (which becomes a lab
 * with one router and one peer host per interface).
 */
import { ConfigReader, parseRouterConfig, readConfigText, type LoadOptions } from '../config.ts';
import { isLabDocument, parseLab } from './lab-config.ts';
import type { LabSpec } from './lab-spec.ts';
import { labOfRouterConfig } from './one-router-lab.ts';

export function loadLabFile(file: string, options: LoadOptions = {}): LabSpec {
  return parseLabText(file, readConfigText(file), options);
}

export function parseLabText(file: string, text: string, options: LoadOptions = {}): LabSpec {
  const reader = new ConfigReader(file, text);
  return isLabDocument(reader) ? parseLab(reader, options) : labOfRouterConfig(parseRouterConfig(reader, options));
}
