import { expect, test } from "bun:test"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { debug } from "@covenant/dsl"
import { initLlamaParameters } from "@covenant/gpu-webgpu"
import { layerFileSystem, Transport } from "@covenant/transport"
import { loadLatestCheckpoint, paramsDigest, publishCheckpoint } from "../src/index.ts"

test("checkpoints on the filesystem transport: the latest loads back, only `keep` are kept, none is undefined", async () => {
  const dir = mkdtempSync(join(tmpdir(), "covenant-ckpt-"))
  try {
    const spec = debug().model
    const at = { bucket: "covenant-v0" }
    const address = { runId: "debug", version: "1" }
    const program = Effect.gen(function* () {
      const transport = yield* Transport
      yield* Effect.orDie(transport.ensureBucket(at))
      expect(yield* loadLatestCheckpoint(at, address, spec)).toBeUndefined()
      for (const w of [5, 10, 15]) yield* publishCheckpoint(at, address, spec, w, initLlamaParameters(spec, w), 2)
      const latest = (yield* loadLatestCheckpoint(at, address, spec))!
      expect(latest.window).toBe(15)
      expect(paramsDigest(latest.params)).toBe(paramsDigest(initLlamaParameters(spec, 15)))
      const kept = (yield* Effect.orDie(transport.list(at, "checkpoints/1/"))).map((o) => o.key).filter((k) => k.endsWith("model.safetensors"))
      expect(kept).toEqual(["checkpoints/1/10/model.safetensors", "checkpoints/1/15/model.safetensors"])
    })
    await Effect.runPromise(Effect.provide(program, layerFileSystem(dir)))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
