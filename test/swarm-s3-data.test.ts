/**
 * A swarm whose corpus lives only in object storage: the shards are tokenized straight into a
 * bucket of a real S3 server on loopback (no local copy exists), the spec names
 * `s3://bucket/prefix` and a rotating shard schedule, and 3 peers + the validator train from
 * ranged reads of it. Every node stays bitwise identical, the samples came through the store (the
 * bounded sample cache filled, within its bound), and each peer's window reports its data wait.
 */
import { afterAll, beforeAll, expect, test } from "bun:test"
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import type { RunSpec } from "@covenant/dsl"
import { byteTokenizer, prepareShards, repositoryRoot, runSwarm, transportSink } from "@covenant/runtime"
import { makeS3Transport } from "@covenant/transport"
import { LocalS3 } from "@covenant/transport/testing"
import { logEvent, roundsOf, swarmTestSpec, validatorRounds } from "./swarm-support.ts"

const s3 = new LocalS3()
beforeAll(() => s3.start())
afterAll(() => s3.dispose())

const CACHE_BYTES = 256 * 1024

test("swarm training from shards in S3 only: identical models, shard schedule, data wait reported", async () => {
  const base = await swarmTestSpec()
  const seqLen = base.model.seqLen
  // Tokenize the shipped corpus straight into the bucket, in ~10 shards so the schedule rotates over them.
  const manifest = await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
    const transport = yield* makeS3Transport(s3.config())
    yield* transport.ensureBucket({ bucket: "covenant-data" })
    return yield* prepareShards({
      inputs: [join(repositoryRoot, "packages/runtime/corpus")],
      outDir: "s3://covenant-data/debug-corpus",
      tokenizer: byteTokenizer,
      seqLen,
      shardTokens: 20_000,
      sink: transportSink(transport, { bucket: "covenant-data" }, "debug-corpus/"),
    })
  })))
  expect(manifest.shards.length).toBeGreaterThan(6)
  const spec: RunSpec = {
    ...base,
    data: {
      ...base.data,
      source: { kind: "shards", uri: "s3://covenant-data/debug-corpus", cacheBytes: CACHE_BYTES },
      schedule: { kind: "rotate", liveShards: 2, everyOuterSteps: 2 },
    },
  }
  const workDir = mkdtempSync(join(tmpdir(), "covenant-swarm-s3-data-"))
  try {
    const { startWindow: s, events } = await Effect.runPromise(runSwarm({
      spec,
      peers: 3,
      rounds: 5,
      workDir,
      transport: { kind: "s3", config: s3.config(), read: s3.readKeys() },
      onEvent: logEvent(Date.now()),
    }))
    const byWindow = validatorRounds(events)
    const peerRounds = roundsOf(events).filter((e) => e.role === "peer")
    expect(peerRounds.length).toBe(3 * 5)
    for (let w = s; w < s + 5; w++) {
      expect(byWindow.get(w)?.stepped).toBe(true)
      expect(byWindow.get(w)?.gathered.length).toBe(3)
    }
    for (const e of peerRounds) {
      expect({ name: e.name, window: e.window, digest: e.digest }).toEqual({ name: e.name, window: e.window, digest: byWindow.get(e.window)!.digest })
      expect(e.phaseMs["data"]).toBeGreaterThanOrEqual(0)
    }
    expect(byWindow.get(s + 4)!.loss!).toBeLessThan(byWindow.get(s)!.loss!)
    // Window w + 1's samples were prefetched while w trained: later windows wait less for data than
    // the first (which also loads the shards' headers and indices), judged by each peer's median.
    for (const name of ["peer-0", "peer-1", "peer-2"]) {
      const mine = peerRounds.filter((e) => e.name === name).sort((a, b) => a.window - b.window).map((e) => e.phaseMs["data"]!)
      const later = mine.slice(1).sort((a, b) => a - b)
      expect(later[Math.floor(later.length / 2)]!).toBeLessThan(mine[0]!)
    }
    if (process.env["SWARM_LOG"] !== undefined) {
      for (const e of peerRounds) console.log(e.name, "w", e.window, "data wait", e.phaseMs["data"]!.toFixed(1), "ms")
    }
    // No shard was copied locally: the samples the nodes read went through the bounded cache.
    const data = join(workDir, "data")
    expect(readdirSync(data)).toEqual(["cache"])
    const [corpus] = readdirSync(join(data, "cache"))
    const cached = readdirSync(join(data, "cache", corpus!))
    const row = (seqLen + 1) * 4
    expect(cached.length).toBeGreaterThan(0)
    expect(cached.length * row).toBeLessThanOrEqual(CACHE_BYTES)
    for (const f of cached) expect(statSync(join(data, "cache", corpus!, f)).size).toBe(row)
    expect(existsSync(join(data, "manifest.json"))).toBe(false)
  } finally {
    rmSync(workDir, { recursive: true, force: true })
  }
}, 120_000)
