// Starts the real glm-gateway binary for the OpenAI Node SDK tests, as tests/python/conftest.py
// does: the GLM emulator as the upstream, the gateway on a fresh PostgreSQL database, both on
// ephemeral ports, and one downstream key made through the admin API.

import { spawn, execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = process.env.GLM_GATEWAY_BIN || join(ROOT, 'target', 'debug', 'glm-gateway');
export const PG = process.env.TEST_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432';
export const UPSTREAM_KEY = 'nodetest-upstream.nodetest-upstream-secret-0123456789';
export const ADMIN_TOKEN = 'nodetest-admin-token';

const STDERR_KEEP = 64 * 1024;

/** A child process whose first stdout line containing `marker` names its URL. */
export class Process {
  static async start(args, { marker = 'listening on', env = {} } = {}) {
    const proc = new Process(args, env);
    await proc.waitFor(marker);
    return proc;
  }

  constructor(args, env) {
    this.args = args;
    this.lines = [];
    this.stderr = '';
    this.child = spawn(BIN, args, {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    // Both pipes are read to the end, so a chatty process never blocks on a full pipe.
    this.child.stderr.setEncoding('utf8');
    this.child.stderr.on('data', (text) => {
      this.stderr = (this.stderr + text).slice(-STDERR_KEEP);
    });
    this.exited = new Promise((done) => this.child.on('exit', (code, signal) => done({ code, signal })));
    this.reader = createInterface({ input: this.child.stdout });
    this.reader.on('line', (line) => this.lines.push(line));
  }

  waitFor(marker, timeoutMs = 30_000) {
    return new Promise((done, fail) => {
      const finish = (error, line) => {
        clearTimeout(timer);
        this.reader.off('line', check);
        this.child.off('exit', exited);
        if (error) fail(error);
        else done(line);
      };
      const check = () => {
        const line = this.lines.find((l) => l.includes(marker));
        if (line === undefined) return;
        const rest = line.split('http://')[1];
        if (rest !== undefined) this.url = 'http://' + rest.trim().split(/\s+/)[0].replace(/\/+$/, '');
        finish(null, line);
      };
      const exited = (code, signal) =>
        finish(new Error(`${this.args[0]} exited early (${code ?? signal}): ${this.stderr}`));
      const timer = setTimeout(
        () => finish(new Error(`${this.args[0]} printed no "${marker}" in ${timeoutMs} ms: ${this.stderr}`)),
        timeoutMs,
      );
      this.reader.on('line', check);
      this.child.on('exit', exited);
      check();
    });
  }

  async stop() {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.exited;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 15_000);
    const result = await this.exited;
    clearTimeout(timer);
    return result;
  }
}

export function freshDatabase() {
  const name = `glm_test_${randomUUID().replaceAll('-', '')}`;
  execFileSync('psql', [`${PG}/postgres`, '-qc', `CREATE DATABASE ${name}`], { stdio: 'pipe' });
  return { name, url: `${PG}/${name}` };
}

function dropDatabase(name) {
  try {
    execFileSync('psql', [`${PG}/postgres`, '-qc', `DROP DATABASE IF EXISTS ${name}`], { stdio: 'pipe' });
  } catch {
    // scripts/test.sh drops leftover glm_test_ databases anyway
  }
}

/** Calls the gateway's admin API and returns the parsed JSON body. */
export async function admin(gateway, method, path, body) {
  const response = await fetch(gateway + path, {
    method,
    headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return JSON.parse(text);
}

/** The emulator's own embeddings for `input`, asked for directly with the upstream key. */
export async function upstreamEmbeddings(emulator, input, model = 'embedding-3') {
  const response = await fetch(`${emulator}/embeddings`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${UPSTREAM_KEY}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ model, input }),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`emulator embeddings: ${response.status} ${text}`);
  const body = JSON.parse(text);
  return [...body.data].sort((a, b) => a.index - b.index).map((item) => item.embedding);
}

/**
 * Emulator, database, gateway and a key. `stop()` ends both processes (and drops the database).
 */
export async function startStack() {
  const started = [];
  const journal = mkdtempSync(join(tmpdir(), 'glm-node-journal-'));
  let database;
  const stop = async () => {
    for (const proc of started.reverse()) await proc.stop();
    if (database) dropDatabase(database.name);
    rmSync(journal, { recursive: true, force: true });
  };
  try {
    const emulator = await Process.start(['emulator', '--api-key', UPSTREAM_KEY, '--chunk-delay-ms', '5']);
    started.push(emulator);
    database = freshDatabase();
    const gateway = await Process.start(['serve'], {
      env: {
        GLM_GATEWAY_JOURNAL_DIR: journal,
        DATABASE_URL: database.url,
        ZHIPUAI_API_KEY: UPSTREAM_KEY,
        ZHIPUAI_BASE_URL: emulator.url,
        GLM_GATEWAY_LISTEN: '127.0.0.1:0',
        GLM_GATEWAY_ADMIN_TOKEN: ADMIN_TOKEN,
      },
    });
    started.push(gateway);
    const { key } = await admin(gateway.url, 'POST', '/admin/keys', { name: 'node', team: 'node-sdk' });
    return { emulator: emulator.url, gateway: gateway.url, key, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Exact float32 equality: what the gateway sent as float32 is what the emulator said, rounded once. */
export function asFloat32(vector) {
  return vector.map((x) => Math.fround(x));
}
