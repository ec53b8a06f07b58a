/**
 * Reading a window's samples from shards in object storage (a real s3rver on loopback, ranged
 * GETs) against reading the same samples from the same shards in local files, in one run: samples/s,
 * bytes and requests per window, the S3/local ratio, and the data wait of a peer that prefetches
 * window w + 1 while it "trains" w.
 *
 *   bun bench/data-s3.ts [--samples 4096] [--seq 2048] [--per-shard 1024] [--pool 2048] [--per-window 384] [--windows 5] [--train-ms 1000] [--concurrency 16] [--server child|inproc]
 *
 * `--server child` (default) runs s3rver in its own process, `--server inproc` in this one (server and
 * reader then share one event loop).
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Either, Scope, Exit } from "effect"
import {
  fileObjects,
  openObjectShardSet,
  openShardSet,
  prepareSyntheticShards,
  transportObjects,
  transportSink,
  uploadShardFolder,
  windowSamples,
} from "@covenant/runtime"
import type { ShardSet } from "@covenant/runtime"
import { makeS3Transport } from "@covenant/transport"
import { LocalS3 } from "@covenant/transport/testing"
import { intArg, stringArg } from "./support.ts"

const samples = intArg("samples", 4096)
const seqLen = intArg("seq", 2048)
const perShard = intArg("per-shard", 1024)
const pool = intArg("pool", 2048)
const perWindow = intArg("per-window", 384)
const windows = intArg("windows", 5)
const trainMs = intArg("train-ms", 1000)
/** Ranged GETs in flight at once. */
const concurrency = intArg("concurrency", 16)
const server = stringArg("server", "child")
if (server !== "child" && server !== "inproc") throw new RangeError("--server must be child or inproc")
const UID = 3

const work = mkdtempSync(join(tmpdir(), "covenant-bench-data-s3-"))
const s3 = new LocalS3()
let child: ReturnType<typeof Bun.spawn> | undefined

/** The store's config: LocalS3 in this process, or the same s3rver in a child process. */
const startServer = async () => {
  await s3.start()
  if (server === "inproc") return s3.config()
  const dataDir = join(work, "s3rver")
  const proc = Bun.spawn([process.execPath, "-e", `
    const S3rver = require("s3rver");
    new S3rver({ address: "127.0.0.1", port: 0, silent: true, directory: process.argv[1] }).run().then((a) => console.log(a.port));
  `, dataDir], { stdout: "pipe", stderr: "inherit" })
  child = proc
  const reader = proc.stdout.getReader()
  const first = await reader.read()
  reader.releaseLock()
  return { ...s3.config(), endpoint: `http://127.0.0.1:${Number(new TextDecoder().decode(first.value).trim())}` }
}
const MB = 1e6

const idsOf = (set: ShardSet, window: number) =>
  Either.getOrThrow(windowSamples(UID, window, { totalSamples: set.totalSamples, poolSize: Math.min(pool, set.totalSamples), samplesPerWindow: perWindow }))

interface Row {
  readonly ms: number
  readonly bytes: number
  readonly requests: number
}

/** Reads each window's samples once (no cache, no prefetch) and returns one row per window. */
const readWindows = (set: ShardSet) =>
  Effect.gen(function* () {
    const rows: Row[] = []
    yield* set.samples(idsOf(set, 0)) // warm-up, not measured
    for (let w = 1; w <= windows; w++) {
      const ids = idsOf(set, w)
      const before = set.stats()
      const t0 = performance.now()
      const tokens = yield* set.samples(ids)
      const ms = performance.now() - t0
      if (tokens.length !== ids.length * (seqLen + 1)) throw new Error("short batch")
      const after = set.stats()
      rows.push({ ms, bytes: after.bytesRead - before.bytesRead, requests: after.requests - before.requests })
    }
    return rows
  })

const summary = (name: string, rows: ReadonlyArray<Row>) => {
  const ms = rows.reduce((a, r) => a + r.ms, 0)
  const rate = (rows.length * perWindow) / (ms / 1000)
  const bytes = rows.reduce((a, r) => a + r.bytes, 0) / rows.length
  const requests = rows.reduce((a, r) => a + r.requests, 0) / rows.length
  console.log(`${name.padEnd(34)} ${rate.toFixed(0).padStart(8)} samples/s   ${(ms / rows.length).toFixed(1).padStart(8)} ms/window   ${(bytes / MB).toFixed(2).padStart(7)} MB/window   ${requests.toFixed(0).padStart(5)} reads/window`)
  return rate
}

try {
  const dir = join(work, "shards")
  const manifest = await Effect.runPromise(prepareSyntheticShards({ outDir: dir, vocabSize: 32_000, seqLen, samples, seed: 11, shardTokens: perShard * seqLen + 1 }))
  console.log(`s3rver ${server === "child" ? "in a child process" : "in this process"}; corpus: ${manifest.totalSamples} samples of ${seqLen} tokens in ${manifest.shards.length} shards (${(manifest.totalTokens * 4 / MB).toFixed(0)} MB); ${windows} windows of ${perWindow} samples from a pool of ${pool}; one sample is ${((seqLen + 1) * 4 / 1024).toFixed(1)} KiB`)
  const config = await startServer()
  const scope = await Effect.runPromise(Scope.make())
  const transport = await Effect.runPromise(Scope.extend(makeS3Transport(config), scope))
  await Effect.runPromise(transport.ensureBucket({ bucket: "bench-corpus" }))
  const t0 = performance.now()
  await Effect.runPromise(uploadShardFolder(dir, transportSink(transport, { bucket: "bench-corpus" }, "c/")))
  console.log(`upload to s3rver: ${((performance.now() - t0) / 1000).toFixed(2)} s`)
  const s3Objects = transportObjects(transport, { bucket: "bench-corpus" }, "c/")

  const run = <A>(e: Effect.Effect<A, unknown, Scope.Scope>) => Effect.runPromise(Effect.scoped(e) as Effect.Effect<A>)
  /** Touches every shard once so header/index loads are not counted in the windows. */
  const warm = (set: ShardSet) => Effect.forEach(set.manifest.shards, (s) => (s.samples > 0 ? set.sample(s.firstSample) : Effect.void), { discard: true })

  const local = await run(Effect.flatMap(openShardSet(dir), readWindows))
  const folder = await run(Effect.flatMap(openObjectShardSet(fileObjects(dir), { memoryBytes: 0, concurrency }), (set) => Effect.zipRight(warm(set), readWindows(set))))
  const remote = await run(Effect.flatMap(openObjectShardSet(s3Objects, { memoryBytes: 0, concurrency }), (set) => Effect.zipRight(warm(set), readWindows(set))))
  const uncoalesced = await run(Effect.flatMap(openObjectShardSet(s3Objects, { memoryBytes: 0, maxRangeBytes: 1, concurrency }), (set) => Effect.zipRight(warm(set), readWindows(set))))
  const localRate = summary("local files (openShardSet)", local)
  summary("objects in a folder (ranged reads)", folder)
  const s3Rate = summary("S3 loopback (ranged GETs)", remote)
  summary("S3 loopback, no coalescing", uncoalesced)
  console.log(`exact bytes a window needs: ${(perWindow * (seqLen + 1) * 4 / MB).toFixed(2)} MB; S3/local samples/s ratio ${(s3Rate / localRate).toFixed(3)} (local is ${(localRate / s3Rate).toFixed(1)}x faster)`)

  // A peer: trains window w for train-ms while window w + 1 is prefetched; the wait is what reading w costs it.
  const waits = await run(Effect.gen(function* () {
    const set = yield* openObjectShardSet(s3Objects, { concurrency })
    const out: number[] = []
    for (let w = 1; w <= windows; w++) {
      const t = performance.now()
      yield* set.samples(idsOf(set, w))
      out.push(performance.now() - t)
      yield* set.prefetch(idsOf(set, w + 1))
      yield* Effect.sleep(`${trainMs} millis`)
    }
    return out
  }))
  console.log(`S3 with prefetch of w + 1 during ${trainMs} ms of training: data wait per window ${waits.map((m) => m.toFixed(1)).join(", ")} ms (the first window has nothing prefetched)`)
  await Effect.runPromise(Scope.close(scope, Exit.void))
} finally {
  child?.kill()
  await child?.exited
  await s3.dispose()
  rmSync(work, { recursive: true, force: true })
}
