import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { openStore } from '../store/open';
import { baseName, isS3Location, joinLocation } from '../store/store';
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
 * DIR may be s3://bucket/prefix: versions are then key prefixes and LATEST is the pointer (object
 * storage has no symlinks). A version directory is never reused: its name carries the workflow
 * run's own id.
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
export async function publishedVersions(outDir: string): Promise<string[]> {
  const store = openStore(versionsDir(outDir));
  const names = (await store.listDirs('')).filter((v) => VERSION_NAME.test(v));
  const published: string[] = [];
  for (const v of names) if (await store.exists(`${v}/${CHANGES_FILE}`)) published.push(v);
  return published.sort();
}

export async function latestVersion(outDir: string): Promise<string | undefined> {
  const v = (await openStore(outDir).read('LATEST'))?.trim();
  return v || undefined;
}

/**
 * Moves LATEST on to `version` unless a newer one is there, and returns where it points. Versions
 * publishing at the same moment (`--overlap allow_all`) could each read LATEST before the other
 * wrote it and leave it on the older one; so a writer looks at the published versions again after
 * writing and moves LATEST on to a newer one published meanwhile. (Each version is marked published
 * before it moves LATEST, so the last writer always sees the newest.)
 */
async function pointLatestAtNewest(outDir: string, version: string): Promise<string> {
  for (let target = version; ;) {
    const current = await latestVersion(outDir);
    if (current && current >= target) return current;
    await pointLatest(outDir, target);
    const newest = (await publishedVersions(outDir)).pop();
    if (!newest || newest <= target) return target;
    target = newest;
  }
}

/** Points DIR/latest at versions/<version> (atomic symlink swap, local only) and writes DIR/LATEST. */
export async function pointLatest(outDir: string, version: string): Promise<void> {
  if (!isS3Location(outDir)) linkLatest(outDir, version);
  await openStore(outDir).write('LATEST', `${version}\n`);
}

function linkLatest(outDir: string, version: string): void {
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
}

export function createScheduleActivities() {
  return {
    async prepareVersion(input: PrepareVersionInput): Promise<{ versionDir: string }> {
      checkName(input.version);
      const versionDir = joinLocation(versionsDir(input.outDir), input.version);
      if (!isS3Location(versionDir)) fs.mkdirSync(versionDir, { recursive: true });
      const store = openStore(versionDir);
      const owner = '.version.json';
      const existing = await store.readJson<{ workflowId: string }>(owner);
      if (existing && existing.workflowId !== input.workflowId) {
        throw ApplicationFailure.nonRetryable(
          `version dir ${versionDir} belongs to ${existing.workflowId}; refusing to overwrite it`,
          'InputError',
        );
      }
      if (!existing)
        await store.writeJson(owner, {
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
      const versionDir = joinLocation(versionsDir(input.outDir), input.version);
      const store = openStore(versionDir);
      let changes = await store.readJson<VersionChanges>(CHANGES_FILE);
      if (!changes) {
        const previous = (await publishedVersions(input.outDir)).filter((v) => v < input.version).pop();
        const prevContent = previous
          ? await readVersion(joinLocation(versionsDir(input.outDir), previous))
          : null;
        changes = compareVersions(
          input.version,
          await readVersion(versionDir),
          previous ?? null,
          prevContent,
        );
        const report = await store.readJson<Record<string, unknown>>('report.json');
        if (report) await store.writeJson('report.json', { ...report, changes });
        const md = (await store.read('report.md')) ?? `# codeclm version ${baseName(versionDir)}\n`;
        if (!md.includes('## Changes since the previous version'))
          await store.write('report.md', `${md.trimEnd()}\n${renderChangesMarkdown(changes)}`);
        // Written last: its presence marks the version as published (publishedVersions).
        await store.writeJson(CHANGES_FILE, changes);
      }
      const isLatest = (await pointLatestAtNewest(input.outDir, input.version)) === input.version;
      const { previous, seeds, pairs, metadata } = changes;
      return { versionDir, latest: isLatest, changes: { previous, seeds, pairs, metadata } };
    },
  };
}

export type ScheduleActivities = ReturnType<typeof createScheduleActivities>;
