import { afterAll, describe, expect, test } from "bun:test"
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Tokenizer } from "@huggingface/tokenizers"
import { Effect, Exit } from "effect"
import { loadHfTokenizer, openShardSet, prepareShards, readManifest } from "../src/data/index.ts"

const CORPUS = join(import.meta.dir, "..", "corpus")
const work = mkdtempSync(join(tmpdir(), "covenant-tok-"))
afterAll(() => rmSync(work, { recursive: true, force: true }))

const special = (id: number, content: string) => ({
  id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
})
const LETTERS = "abcdefghijklmnopqrstuvwxyz"
const PUNCT = ".,;:!?'\"-()"
/** A tiny lower-casing character BPE with a few merges; unknown characters map to <unk>. */
const vocab: Record<string, number> = { "<unk>": 0, "</s>": 1, "<pad>": 2 }
for (const c of LETTERS + PUNCT) vocab[c] = Object.keys(vocab).length
const merges = ["t h", "th e", "a n", "an d", "i n", "in g"]
for (const m of merges) vocab[m.replace(" ", "")] = Object.keys(vocab).length
const tokenizerJson = {
  version: "1.0",
  truncation: null,
  padding: null,
  added_tokens: [special(0, "<unk>"), special(1, "</s>"), special(2, "<pad>")],
  normalizer: { type: "Lowercase" },
  pre_tokenizer: { type: "Whitespace" },
  post_processor: null,
  decoder: null,
  model: { type: "BPE", dropout: null, unk_token: "<unk>", continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, vocab, merges },
}

const writeTokenizer = (dir: string, config?: object) => {
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(tokenizerJson))
  if (config !== undefined) writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify(config))
  return join(dir, "tokenizer.json")
}

describe("Hugging Face tokenizer.json", () => {
  test("encodes by the vocabulary and merges (hand-checked ids)", async () => {
    const tok = await Effect.runPromise(loadHfTokenizer(writeTokenizer(join(work, "a"), { eos_token: "</s>", pad_token: "<pad>" })))
    expect(tok.eosId).toBe(1)
    expect(tok.padId).toBe(2)
    expect(tok.vocabSize).toBe(3 + 26 + PUNCT.length + merges.length)
    // "the" merges to one token; "hand" is h + (an d -> and); "." is punctuation; "€" is unknown.
    const ids = Array.from(await Effect.runPromise(tok.encode("The hand. €")))
    expect(ids).toEqual([vocab["the"], vocab["h"], vocab["and"], vocab["."], 0])
    expect(tok.info.kind).toBe("huggingface")
  })

  test("finds a common EOS name without tokenizer_config.json; fails typed when none exists", async () => {
    const tok = await Effect.runPromise(loadHfTokenizer(writeTokenizer(join(work, "b"))))
    expect(tok.eosId).toBe(1)
    expect(tok.padId).toBe(null)
    const missing = await Effect.runPromiseExit(loadHfTokenizer(join(work, "b", "tokenizer.json"), { eosToken: "<|nope|>" }))
    expect(Exit.isFailure(missing) && missing.cause._tag === "Fail" ? missing.cause.error._tag : "no").toBe("TokenizerError")
  })

  test("an explicit eos id (the run spec's eosTokenId) wins; one outside the vocabulary is a TokenizerError", async () => {
    const path = writeTokenizer(join(work, "e"), { eos_token: "</s>" })
    expect((await Effect.runPromise(loadHfTokenizer(path, { eosId: 2, eosToken: "</s>" }))).eosId).toBe(2)
    const outside = await Effect.runPromiseExit(loadHfTokenizer(path, { eosId: 9999 }))
    expect(Exit.isFailure(outside) && outside.cause._tag === "Fail" ? outside.cause.error._tag : "no").toBe("TokenizerError")
  })

  test("a broken tokenizer.json or a missing file fail with typed errors", async () => {
    const dir = join(work, "c")
    mkdirSync(dir, { recursive: true })
    writeFileSync(join(dir, "tokenizer.json"), "{ not json")
    const tags: string[] = []
    for (const path of [join(dir, "tokenizer.json"), join(dir, "absent.json")]) {
      const exit = await Effect.runPromiseExit(loadHfTokenizer(path))
      tags.push(Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error._tag : "no")
    }
    writeFileSync(join(dir, "tokenizer.json"), JSON.stringify({ model: { type: "Mystery" } }))
    const unknownModel = await Effect.runPromiseExit(loadHfTokenizer(join(dir, "tokenizer.json")))
    tags.push(Exit.isFailure(unknownModel) && unknownModel.cause._tag === "Fail" ? unknownModel.cause.error._tag : "no")
    expect(tags).toEqual(["TokenizerError", "DataIoError", "TokenizerError"])
  })

  test("prepare with tokenizer.json: shards hold each document's library encoding + EOS", async () => {
    const path = writeTokenizer(join(work, "d"), { eos_token: "</s>" })
    const out = join(work, "d-shards")
    const input = join(CORPUS, "aesop-fables.jsonl")
    await Effect.runPromise(prepareShards({ inputs: [input], outDir: out, tokenizer: await Effect.runPromise(loadHfTokenizer(path)), seqLen: 16, shardTokens: 1000 }))

    // Expected stream straight from the library, outside the pipeline.
    const lib = new Tokenizer(tokenizerJson, {})
    const expected: number[] = []
    for (const line of readFileSync(input, "utf-8").split("\n").filter((l) => l !== "")) {
      expected.push(...lib.encode((JSON.parse(line) as { text: string }).text, { add_special_tokens: false }).ids, 1)
    }
    const manifest = await Effect.runPromise(readManifest(out))
    expect(manifest.tokenizer).toEqual({ kind: "huggingface", source: "tokenizer.json", sha256: expect.stringMatching(/^[0-9a-f]{64}$/) })
    expect(manifest.documents).toBe(10)
    const back = await Effect.runPromise(
      Effect.scoped(
        Effect.flatMap(openShardSet(out, { verify: "sha256" }), (set) =>
          Effect.forEach(set.manifest.shards, (_, i) => set.shardTokens(i)).pipe(Effect.map((parts) => parts.flatMap((p) => Array.from(p)))),
        ),
      ),
    )
    expect(back).toEqual(expected)
    expect(back.filter((id) => id === 0).length).toBeLessThan(back.length / 50) // few <unk>: the vocabulary covers the text
  }, 30_000)
})
