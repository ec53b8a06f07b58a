/**
 * Data pipeline and report speed: prepare (byte tokenizer) throughput, random sample reads from
 * shards, the reference-sized per-window pool draw and digest, and writing a long run's report.
 * Prints numbers; run with `bun bench/runtime-data.ts` (MB=<text size> to change the corpus size).
 */
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Duration, Effect, Either } from "effect"
import {
  REFERENCE_POOL_SIZE,
  REFERENCE_SAMPLES_PER_WINDOW,
  byteTokenizer,
  generateGrammarCorpus,
  openShardSet,
  prepareShards,
  sampleDigest,
  windowPool,
  windowSamples,
  writeReport,
} from "@covenant/runtime"

const megabytes = Number(process.env.MB ?? "16")
const work = mkdtempSync(join(tmpdir(), "covenant-bench-data-"))
const time = async <A>(run: () => Promise<A>): Promise<[A, number]> => {
  const t0 = performance.now()
  const a = await run()
  return [a, (performance.now() - t0) / 1000]
}

try {
  // ~16 MB of grammar stories as one JSONL file.
  const docs: string[] = []
  let size = 0
  for (let seed = 1; size < megabytes * 1e6; seed++) {
    for (const text of generateGrammarCorpus(seed, 500)) {
      docs.push(JSON.stringify({ text }))
      size += text.length
    }
  }
  const input = join(work, "text.jsonl")
  writeFileSync(input, docs.join("\n") + "\n")
  const out = join(work, "shards")
  const [manifest, prepSeconds] = await time(() =>
    Effect.runPromise(prepareShards({ inputs: [input], outDir: out, tokenizer: byteTokenizer, seqLen: 2048, shardTokens: 4 * 1024 * 1024 + 1 })),
  )
  console.log(
    `prepare (bytes, seq 2048): ${(statSync(input).size / 1e6).toFixed(1)} MB text, ${manifest.documents} docs -> ` +
      `${manifest.totalTokens} tokens in ${manifest.shards.length} shards, ${manifest.totalSamples} samples: ` +
      `${prepSeconds.toFixed(2)} s, ${(manifest.totalTokens / prepSeconds / 1e6).toFixed(2)} M tokens/s`,
  )

  await Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const [openTime, verified] = yield* Effect.timed(openShardSet(out, { verify: "sha256" }))
        console.log(`open with sha256 verify: ${Duration.toMillis(openTime).toFixed(0)} ms (${verified.manifest.shards.length} shards)`)
        const live = yield* openShardSet(out)
        const ids = yield* windowSamples(7, 1234, { totalSamples: live.totalSamples, poolSize: live.totalSamples, samplesPerWindow: Math.min(2048, live.totalSamples) })
        const t0 = performance.now()
        const batch = yield* live.samples(ids)
        const seconds = (performance.now() - t0) / 1000
        console.log(
          `random sample reads: ${ids.length} samples of 2049 tokens in ${seconds.toFixed(3)} s = ` +
            `${(ids.length / seconds).toFixed(0)} samples/s, ${((batch.byteLength / seconds) / 1e6).toFixed(1)} MB/s`,
        )
      }),
    ),
  )

  const t1 = performance.now()
  const pool = Either.getOrThrow(windowPool(65535, 2 ** 31 - 1, { totalSamples: 537_000_000, poolSize: REFERENCE_POOL_SIZE }))
  const drawMs = performance.now() - t1
  const t2 = performance.now()
  const digest = sampleDigest(pool.subarray(0, REFERENCE_SAMPLES_PER_WINDOW))
  const digestMs = performance.now() - t2
  console.log(`pool of ${REFERENCE_POOL_SIZE} from 537M samples: ${drawMs.toFixed(1)} ms; digest of ${REFERENCE_SAMPLES_PER_WINDOW} ids: ${digestMs.toFixed(2)} ms (${digest.slice(0, 12)}...)`)

  const windows = Array.from({ length: 1000 }, (_, i) => ({
    window: i,
    peerLoss: Object.fromEntries(Array.from({ length: 20 }, (_, p) => [String(p), 2 + 8 * Math.exp(-i / 200) + 0.05 * p])),
    validatorLoss: 2 + 8 * Math.exp(-i / 200),
    bytesUp: 3e6, bytesDown: 6e7, peersGathered: 20, peersExpected: 20, roundMs: 1.38e6,
    phaseMs: { compute: 1.31e6, gather: 5e4, upload: 2e4 },
  }))
  const reportPath = join(work, "report.html")
  const [, reportSeconds] = await time(() => Effect.runPromise(writeReport(reportPath, { title: "bench", windows })))
  console.log(`report of 1000 windows x 20 peers: ${reportSeconds.toFixed(3)} s, ${(statSync(reportPath).size / 1e6).toFixed(2)} MB`)
} finally {
  rmSync(work, { recursive: true, force: true })
}
