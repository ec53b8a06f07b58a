import { describe, expect, test } from "bun:test"
import { Chunk, Effect, FastCheck, Stream } from "effect"
import { rechunkBytes } from "../src/index.ts"

describe("rechunkBytes (multipart part cutting)", () => {
  test("property: parts are exactly `size` bytes but the last, and concatenate to the input", async () => {
    await FastCheck.assert(
      FastCheck.asyncProperty(FastCheck.array(FastCheck.uint8Array({ maxLength: 40 }), { maxLength: 20 }), FastCheck.integer({ min: 1, max: 17 }), async (chunks, size) => {
        const parts = Chunk.toArray(await Effect.runPromise(Stream.runCollect(rechunkBytes(Stream.fromIterable(chunks), size))))
        const input = Buffer.concat(chunks)
        expect(Buffer.concat(parts).equals(input)).toBe(true)
        parts.forEach((p, i) => (i < parts.length - 1 ? expect(p.length).toBe(size) : expect(p.length).toBeGreaterThan(0)))
        expect(parts.length).toBe(Math.ceil(input.length / size))
      }),
      { numRuns: 100 },
    )
  })
})
