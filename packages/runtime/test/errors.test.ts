import { describe, expect, test } from "bun:test"
import { Effect, Either } from "effect"
import { ChainUnavailable } from "@covenant/chain"
import { NotFound } from "@covenant/transport"
import { EngineFailure, FlagError, ShardCorruptError, inPhase, isRuntimeFailure, tryEngine } from "../src/index.ts"

describe("runtime failures keep the typed errors of the packages below", () => {
  test("inPhase wraps a transport, chain or data error as the failure that carries it", () => {
    const missing = new NotFound({ bucket: "b", key: "gradient-3-1-v1" })
    const store = inPhase("gather")(missing)
    expect(store._tag).toBe("StoreFailure")
    expect(store.cause).toBe(missing)
    expect(store.message).toBe("gather: NotFound: ")

    const down = new ChainUnavailable({ endpoint: "ws://x", reason: "refused" })
    const chain = inPhase("register")(down)
    expect(chain._tag).toBe("ChainFailure")
    expect(chain.cause).toBe(down)
    expect(chain.message).toBe("register: ChainUnavailable: refused")

    const corrupt = new ShardCorruptError({ file: "shard-0.bin", reason: "short read", offset: 64 })
    const data = inPhase("data")(corrupt)
    expect(data._tag).toBe("DataFailure")
    expect(data.cause).toBe(corrupt)
    expect(data.message).toBe("data: ShardCorruptError: short read (shard-0.bin at byte 64)")

    const other = inPhase("credentials")({ _tag: "WriteKeyCommitted", reason: "same key" })
    expect(other._tag).toBe("RuntimeError")
    expect(other.message).toBe("credentials: WriteKeyCommitted: same key")
    expect([store, chain, data, other].every(isRuntimeFailure)).toBe(true)
  })

  test("a throwing engine call is an EngineFailure with what it threw", async () => {
    const thrown = new Error("device lost")
    const r = await Effect.runPromise(Effect.either(tryEngine("inner", () => { throw thrown })))
    expect(Either.isLeft(r) && r.left instanceof EngineFailure && r.left.cause === thrown).toBe(true)
    expect(Either.isLeft(r) && r.left.message).toBe("inner: Error: device lost")
  })

  test("flag errors are phase flags, printed as phase: reason", () => {
    const f = new FlagError({ reason: "pass one" })
    expect([f.phase, f.message, isRuntimeFailure(f), isRuntimeFailure(new Error("x"))]).toEqual(["flags", "flags: pass one", true, false])
  })
})
