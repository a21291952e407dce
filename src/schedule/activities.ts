import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { readJson, writeFileAtomic, writeJsonAtomic } from '../store/files';
import {
  compareVersions,
  readVersion,
  renderChangesMarkdown,
  versionsDir,
  type VersionChanges,
} from './changes';

/**
 * Activities of a scheduled refresh (src/workflows/scheduled.ts). Layout of a schedule's out dir:
 *
 *   DIR/versions/<UTC timestamp>-<short id>/   one complete run each (dataset.jsonl, report.*, changes.json)
 *   DIR/latest -> versions/<newest>            symlink, replaced atomically (rename of a temp symlink)
 *   DIR/LATEST                                 the newest version's name, for filesystems without symlinks
 *
 * A version directory is never reused: its name carries the workflow run's own id.
 */
export const CHANGES_FILE = 'changes.json';
const VERSION_NAME = /^[0-9]{8}T[0-9]{6}(\.[0-9]{3})?Z-[A-Za-z0-9]+$/;

export interface PrepareVersionInput {
  outDir: string;
  version: string;
  workflowId: string;
}

export interface PublishVersionInput {
  outDir: string;
  version: string;
  workflowId: string;
}

export interface PublishResult {
  versionDir: string;
  /** Whether `latest` now points at this version (false when a newer version was already published). */
  latest: boolean;
  changes: Pick<VersionChanges, 'previous' | 'seeds' | 'pairs' | 'metadata'>;
}

function checkName(version: string): void {
  if (!VERSION_NAME.test(version))
    throw ApplicationFailure.nonRetryable(`not a version name: ${version}`, 'InputError');
}

/** Published versions (those with changes.json), oldest first. */
export function publishedVersions(outDir: string): string[] {
  const dir = versionsDir(outDir);
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((v) => VERSION_NAME.test(v) && fs.existsSync(path.join(dir, v, CHANGES_FILE)))
    .sort();
}

export function latestVersion(outDir: string): string | undefined {
  try {
    const v = fs.readFileSync(path.join(outDir, 'LATEST'), 'utf8').trim();
    return v || undefined;
  } catch {
    return undefined;
  }
}

/** Points DIR/latest at versions/<version> (atomic symlink swap) and writes DIR/LATEST. */
export function pointLatest(outDir: string, version: string): void {
  const link = path.join(outDir, 'latest');
  const tmp = path.join(outDir, `.latest.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`);
  try {
    fs.symlinkSync(path.join('versions', version), tmp, 'dir');
    fs.renameSync(tmp, link);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    const code = (err as NodeJS.ErrnoException).code;
    // No symlinks here (some network or Windows filesystems): LATEST is the pointer then.
    if (!['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'EINVAL'].includes(code ?? '')) throw err;
  }
  writeFileAtomic(path.join(outDir, 'LATEST'), `${version}\n`);
}

export function createScheduleActivities() {
  return {
    async prepareVersion(input: PrepareVersionInput): Promise<{ versionDir: string }> {
      checkName(input.version);
      const versionDir = path.join(versionsDir(input.outDir), input.version);
      fs.mkdirSync(versionDir, { recursive: true });
      const owner = path.join(versionDir, '.version.json');
      const existing = readJson<{ workflowId: string }>(owner);
      if (existing && existing.workflowId !== input.workflowId) {
        throw ApplicationFailure.nonRetryable(
          `version dir ${versionDir} belongs to ${existing.workflowId}; refusing to overwrite it`,
          'InputError',
        );
      }
      if (!existing)
        writeJsonAtomic(owner, {
          workflowId: input.workflowId,
          version: input.version,
          createdAt: new Date().toISOString(),
        });
      return { versionDir };
    },

    /**
     * After the version's run completed: writes its change report (changes.json, a `changes` section
     * in report.json and report.md) against the newest published version before it, then moves
     * `latest` to it unless a newer version is already there. Safe to retry.
     */
    async publishVersion(input: PublishVersionInput): Promise<PublishResult> {
      checkName(input.version);
      const versionDir = path.join(versionsDir(input.outDir), input.version);
      const changesFile = path.join(versionDir, CHANGES_FILE);
      let changes = readJson<VersionChanges>(changesFile);
      if (!changes) {
        const previous = publishedVersions(input.outDir)
          .filter((v) => v < input.version)
          .pop();
        const prevContent = previous ? readVersion(path.join(versionsDir(input.outDir), previous)) : null;
        changes = compareVersions(input.version, readVersion(versionDir), previous ?? null, prevContent);
        const reportJson = path.join(versionDir, 'report.json');
        const report = readJson<Record<string, unknown>>(reportJson);
        if (report) writeJsonAtomic(reportJson, { ...report, changes });
        const reportMd = path.join(versionDir, 'report.md');
        const md = fs.existsSync(reportMd)
          ? fs.readFileSync(reportMd, 'utf8')
          : `# codeclm version ${input.version}\n`;
        if (!md.includes('## Changes since the previous version'))
          writeFileAtomic(reportMd, `${md.trimEnd()}\n${renderChangesMarkdown(changes)}`);
        // Written last: its presence marks the version as published (publishedVersions).
        writeJsonAtomic(changesFile, changes);
      }
      const current = latestVersion(input.outDir);
      const isLatest = !current || current <= input.version;
      if (isLatest) pointLatest(input.outDir, input.version);
      const { previous, seeds, pairs, metadata } = changes;
      return { versionDir, latest: isLatest, changes: { previous, seeds, pairs, metadata } };
    },
  };
}

export type ScheduleActivities = ReturnType<typeof createScheduleActivities>;
