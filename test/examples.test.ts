/**
 * The runnable examples (examples/*.ts), each executed as a user would (`bun run examples/<file>`,
 * which hands the run to `runMain`) for two windows of its swarm: each exits 0 with every node
 * identical after every outer step, and does what it declares (no compression for the DiLoCo
 * baseline, the tokenizer.json's vocabulary, only allow-listed peers aggregated over S3).
 */
import { afterAll, expect, test } from "bun:test"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Schema } from "effect"
import { SwarmSummary } from "@covenant/runtime"

const root = join(import.meta.dir, "..")
const work = mkdtempSync(join(tmpdir(), "covenant-examples-"))
afterAll(() => rmSync(work, { recursive: true, force: true }))

/** Two windows of the example's swarm on the CPU; its output and its summary file. */
const runExample = async (file: string, extra: string[] = []) => {
  const dir = join(work, file)
  const summaryFile = join(work, `${file}.json`)
  const p = Bun.spawn([process.execPath, "run", `examples/${file}.ts`, "--windows", "2", "--backend", "cpu", "--dir", dir, "--summary", summaryFile, ...extra], { cwd: root, stdout: "pipe", stderr: "pipe", env: { ...process.env, ALLOWED_HOTKEYS: "" } })
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited])
  expect({ code, err: code === 0 ? "" : err }).toEqual({ code: 0, err: "" })
  expect(out).toContain("every node bitwise identical after every outer step: yes")
  return { out, summary: Schema.decodeUnknownSync(SwarmSummary)(JSON.parse(readFileSync(summaryFile, "utf-8"))) }
}

test("diloco-baseline.ts: Covenant-72B without compression, scaled; its updates are dense", async () => {
  const { out } = await runExample("diloco-baseline", ["--peers", "2"])
  expect(out).toContain("covenant-72b-diloco scaled to this machine")
  expect(out).toContain(`SparseLoCo unchanged ({"kind":"none"})`)
  // Dense fp32 pseudo-gradients: what is sent is what fp32 would be (1.0x, not tens of times smaller).
  expect(out).toMatch(/as fp32 pseudo-gradients: 1\.\dx smaller/)
}, 120_000)

test("custom-model.ts: its own size, tokenized by examples/tokenizer/tokenizer.json, as declared", async () => {
  const { out } = await runExample("custom-model", ["--peers", "2"])
  expect(out).toContain("custom-model as declared: dim 96, 3 layers, vocab 64, seq 64")
  expect(out).toMatch(/window \d+ \(round 2\/2\) \| loss peers [\d.]+/)
}, 120_000)

test("s3-allowlist.ts over a local S3 server: the peer off the allow-list trains but is never aggregated", async () => {
  const { out, summary } = await runExample("s3-allowlist", ["--peers", "3", "--transport", "s3"])
  expect(out).toContain("store    s3rver at http://")
  const uidOf = new Map(summary.peers.map((p) => [p.name, p.uid]))
  const outsider = uidOf.get("peer-2")!
  const aggregated = summary.windows.flatMap((w) => w.aggregated)
  expect(aggregated.length).toBeGreaterThan(0)
  expect(aggregated).not.toContain(outsider)
  expect(aggregated.every((u) => u === uidOf.get("peer-0") || u === uidOf.get("peer-1"))).toBe(true)
}, 120_000)
