import { describe, expect, test } from "bun:test"
import { Effect } from "effect"
import { covenant72b, decodeRunSpec } from "@covenant/dsl"
import { scaleToMachine } from "../src/index.ts"

describe("scaleToMachine", () => {
  test("gives a valid run spec of the same family and protocol, smaller", async () => {
    const source = covenant72b()
    const scaled = await Effect.runPromise(decodeRunSpec(scaleToMachine(source, { peers: 4, windows: 16 })))
    expect(scaled.model.family).toBe("llama")
    expect(scaled.model.nHeads / scaled.model.nKvHeads).toBe(source.model.nHeads / source.model.nKvHeads)
    expect(scaled.model.dim).toBeLessThan(source.model.dim)
    expect(scaled.compression).toEqual(source.compression)
    expect(scaled.participation.peersGathered).toBe(4)
    expect(scaled.infrastructure.chain.kind).toBe("local")
    expect(scaled.data.sampling.samplesPerWindow).toBe(scaled.innerOptimizer.batchSize * scaled.innerOptimizer.innerSteps)
  })
})
