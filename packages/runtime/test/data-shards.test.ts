import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { mkdtempSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Exit } from "effect"
import {
  BYTE_EOS_ID,
  BYTE_PAD_ID,
  IGNORE_INDEX,
  byteTokenizer,
  grammarCorpusJsonl,
  openShardSet,
  prepareShards,
  readManifest,
  trainingPair,
  windowSamples,
} from "../src/data/index.ts"
import type { ShardSet } from "../src/data/index.ts"

const CORPUS = join(import.meta.dir, "..", "corpus")
const work = mkdtempSync(join(tmpdir(), "covenant-data-"))
afterAll(() => rmSync(work, { recursive: true, force: true }))

const withShards = <A, E>(dir: string, use: (set: ShardSet) => Effect.Effect<A, E>, verify: "size" | "sha256" = "size") =>
  Effect.runPromise(Effect.scoped(Effect.flatMap(openShardSet(dir, { verify }), use)))

const openExit = (dir: string, verify: "size" | "sha256" = "size") =>
  Effect.runPromiseExit(Effect.scoped(openShardSet(dir, { verify })))

const failureTag = (exit: Exit.Exit<unknown, unknown>): string => {
  if (Exit.isSuccess(exit)) return "success"
  const failure = exit.cause
  return failure._tag === "Fail" && typeof failure.error === "object" && failure.error !== null && "_tag" in failure.error
    ? String(failure.error._tag)
    : failure._tag
}

/** The byte-token stream of the corpus computed without the pipeline: sorted files, JSONL lines, UTF-8 + EOS. */
const expectedByteStream = (): { stream: number[]; documents: number } => {
  const stream: number[] = []
  let documents = 0
  for (const name of readdirSync(CORPUS).sort()) {
    const text = readFileSync(join(CORPUS, name), "utf-8")
    const docs = name.endsWith(".jsonl")
      ? text.split("\n").filter((l) => l.trim() !== "").map((l) => (JSON.parse(l) as { text: string }).text)
      : name.endsWith(".txt") ? [text] : []
    for (const doc of docs) {
      stream.push(...Buffer.from(doc, "utf-8"), BYTE_EOS_ID)
      documents++
    }
  }
  return { stream, documents }
}

describe("shipped corpus", () => {
  test("grammar.jsonl is exactly the generator's output", () => {
    expect(readFileSync(join(CORPUS, "grammar.jsonl"), "utf-8")).toBe(grammarCorpusJsonl())
  })

  test("is a few hundred KB at most", () => {
    const total = readdirSync(CORPUS).reduce((n, f) => n + readFileSync(join(CORPUS, f)).length, 0)
    expect(total).toBeLessThan(400_000)
  })
})

describe("prepare + ShardSet with the byte tokenizer", () => {
  const SEQ = 64
  const SHARD_TOKENS = 20_000
  const dir = join(work, "bytes")
  const { stream, documents } = expectedByteStream()

  beforeAll(async () => {
    await Effect.runPromise(prepareShards({ inputs: [CORPUS], outDir: dir, tokenizer: byteTokenizer, seqLen: SEQ, shardTokens: SHARD_TOKENS }))
  }, 60_000)

  test("manifest describes the stream", async () => {
    const m = await Effect.runPromise(readManifest(dir))
    expect(m.totalTokens).toBe(stream.length)
    expect(m.documents).toBe(documents)
    expect(m.eosId).toBe(BYTE_EOS_ID)
    expect(m.padId).toBe(BYTE_PAD_ID)
    expect(m.vocabSize).toBe(258)
    expect(m.shards.length).toBe(Math.ceil(stream.length / SHARD_TOKENS))
    expect(m.shards[0].file).toBe("train_000000.npy")
    expect(m.shards[1].samplesFile).toBe("train_000001.samples.npy")
    let samples = 0
    for (let k = 0; k < m.shards.length; k++) {
      const tokens = Math.min(SHARD_TOKENS, stream.length - k * SHARD_TOKENS)
      samples += Math.floor((tokens - 1) / SEQ)
    }
    expect(m.totalSamples).toBe(samples)
  })

  test("reading the shards back reproduces the token stream", async () => {
    const back = await withShards(dir, (set) =>
      Effect.forEach(set.manifest.shards, (_, i) => set.shardTokens(i)).pipe(
        Effect.map((parts) => parts.flatMap((p) => Array.from(p))),
      ),
    )
    expect(back.length).toBe(stream.length)
    expect(back).toEqual(stream)
  })

  test("sample(id) is seqLen + 1 tokens at the documented offset, across shard boundaries", async () => {
    const perShard = Math.floor((SHARD_TOKENS - 1) / SEQ)
    const expectedSample = (id: number) => {
      const shard = Math.floor(id / perShard)
      const start = shard * SHARD_TOKENS + (id % perShard) * SEQ
      return stream.slice(start, start + SEQ + 1)
    }
    await withShards(dir, (set) =>
      Effect.gen(function* () {
        const ids = [0, 1, perShard - 1, perShard, perShard + 1, set.totalSamples - 1]
        for (const id of ids) expect(Array.from(yield* set.sample(id))).toEqual(expectedSample(id))
        const drawn = yield* windowSamples(5, 17, { totalSamples: set.totalSamples, poolSize: 512, samplesPerWindow: 96 })
        const batch = yield* set.samples(drawn)
        expect(batch.length).toBe(96 * (SEQ + 1))
        drawn.forEach((id, i) => {
          expect(Array.from(batch.subarray(i * (SEQ + 1), (i + 1) * (SEQ + 1)))).toEqual(expectedSample(id))
        })
      }),
    )
  })

  test("out-of-range sample ids fail with SampleOutOfRangeError", async () => {
    for (const id of [-1, 1.5, 1e9]) {
      const exit = await Effect.runPromiseExit(Effect.scoped(Effect.flatMap(openShardSet(dir), (set) => set.sample(id === 1e9 ? set.totalSamples : id))))
      expect(failureTag(exit)).toBe("SampleOutOfRangeError")
    }
  })

  test("sha256 verification passes on intact shards", async () => {
    expect(failureTag(await openExit(dir, "sha256"))).toBe("success")
  })

  test("labels are inputs shifted by one with EOS/pad masked", () => {
    const sample = Uint32Array.from([72, 105, BYTE_EOS_ID, 87, BYTE_PAD_ID, BYTE_PAD_ID])
    const { inputs, labels } = trainingPair(sample, { eosId: BYTE_EOS_ID, padId: BYTE_PAD_ID })
    expect(Array.from(inputs)).toEqual([72, 105, BYTE_EOS_ID, 87, BYTE_PAD_ID])
    expect(Array.from(labels)).toEqual([105, IGNORE_INDEX, 87, IGNORE_INDEX, IGNORE_INDEX])
    const keepEos = trainingPair(sample, { eosId: BYTE_EOS_ID, padId: BYTE_PAD_ID, maskEos: false })
    expect(Array.from(keepEos.labels)).toEqual([105, BYTE_EOS_ID, 87, IGNORE_INDEX, IGNORE_INDEX])
  })
})

describe("corrupt or mismatched shard folders give typed errors", () => {
  const fresh = async (name: string) => {
    const dir = join(work, name)
    await Effect.runPromise(
      prepareShards({ inputs: [join(CORPUS, "aesop-fables.jsonl")], outDir: dir, tokenizer: byteTokenizer, seqLen: 32, shardTokens: 3000 }),
    )
    return dir
  }

  test("a truncated shard -> ShardCorruptError", async () => {
    const dir = await fresh("truncated")
    const path = join(dir, "train_000001.npy")
    truncateSync(path, readFileSync(path).length - 4)
    expect(failureTag(await openExit(dir))).toBe("ShardCorruptError")
  })

  test("a truncated sample index -> ShardCorruptError", async () => {
    const dir = await fresh("truncated-index")
    truncateSync(join(dir, "train_000000.samples.npy"), 100)
    expect(failureTag(await openExit(dir))).toBe("ShardCorruptError")
  })

  test("a flipped byte passes the size check but fails sha256 verification", async () => {
    const dir = await fresh("flipped")
    const path = join(dir, "train_000000.npy")
    const bytes = readFileSync(path)
    bytes[bytes.length - 1] ^= 0xff
    writeFileSync(path, bytes)
    expect(failureTag(await openExit(dir, "size"))).toBe("success")
    expect(failureTag(await openExit(dir, "sha256"))).toBe("ShardCorruptError")
  })

  test("a shard swapped for another of a different length -> ShardCorruptError", async () => {
    const dir = await fresh("swapped")
    const last = readdirSync(dir).filter((f) => /^train_\d+\.npy$/.test(f)).sort().at(-1) ?? ""
    writeFileSync(join(dir, "train_000000.npy"), readFileSync(join(dir, last)))
    expect(failureTag(await openExit(dir))).toBe("ShardCorruptError")
  })

  test("a missing shard file -> ShardCorruptError", async () => {
    const dir = await fresh("missing")
    rmSync(join(dir, "train_000002.npy"))
    expect(failureTag(await openExit(dir))).toBe("ShardCorruptError")
  })

  test("bad manifests -> ManifestError", async () => {
    const dir = await fresh("manifest")
    const manifestPath = join(dir, "manifest.json")
    const good = JSON.parse(readFileSync(manifestPath, "utf-8")) as { totalSamples: number; shards: Array<{ file: string }> }
    const cases: Array<[string, string]> = [
      ["not json", "{"],
      ["wrong total", JSON.stringify({ ...good, totalSamples: good.totalSamples + 1 })],
      ["path escape", JSON.stringify({ ...good, shards: good.shards.map((s, i) => (i === 0 ? { ...s, file: "../x.npy" } : s)) })],
      ["wrong format", JSON.stringify({ ...good, format: "other/1" })],
    ]
    for (const [name, text] of cases) {
      writeFileSync(manifestPath, text)
      const tag = failureTag(await openExit(dir))
      if (tag !== "ManifestError") throw new Error(`${name}: ${tag}`)
    }
    rmSync(manifestPath)
    expect(failureTag(await openExit(dir))).toBe("ManifestError")
  })

  test("prepare rejects bad sizes and missing inputs with DataIoError", async () => {
    const bad = [
      prepareShards({ inputs: [CORPUS], outDir: join(work, "x"), tokenizer: byteTokenizer, seqLen: 0 }),
      prepareShards({ inputs: [CORPUS], outDir: join(work, "x"), tokenizer: byteTokenizer, seqLen: 64, shardTokens: 64 }),
      prepareShards({ inputs: [join(work, "nope")], outDir: join(work, "x"), tokenizer: byteTokenizer, seqLen: 64 }),
    ]
    for (const program of bad) expect(failureTag(await Effect.runPromiseExit(program))).toBe("DataIoError")
  })

  test("a malformed JSONL line -> DataIoError naming the line", async () => {
    const input = join(work, "broken.jsonl")
    writeFileSync(input, '{"text": "ok"}\n{"txt": "no"}\n')
    const exit = await Effect.runPromiseExit(prepareShards({ inputs: [input], outDir: join(work, "broken"), tokenizer: byteTokenizer, seqLen: 8 }))
    expect(failureTag(exit)).toBe("DataIoError")
    if (Exit.isFailure(exit) && exit.cause._tag === "Fail") expect(JSON.stringify(exit.cause.error)).toContain("line 2")
  })
})
