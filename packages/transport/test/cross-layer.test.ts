/**
 * Property: the filesystem and S3 layers are observably the same store. The same random
 * sequence of puts, gets, heads, deletes and lists runs on both (and on a plain Map model);
 * every observation (bytes, sizes, listings, error tags) must agree.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { Effect, Exit, FastCheck, ManagedRuntime } from "effect"
import { Transport, layerFileSystem, layerS3 } from "../src/index.ts"
import type { BucketLocation } from "../src/index.ts"
import { LocalS3 } from "../src/testing/index.ts"
import { freshBucket } from "./support/peers.ts"

type Op =
  | { readonly op: "put"; readonly key: string; readonly value: Uint8Array }
  | { readonly op: "get" | "head" | "delete"; readonly key: string }
  | { readonly op: "list"; readonly prefix: string }

// No key is a strict "directory" prefix of another written key ("dir" is only read): a filesystem
// cannot hold both "a" and "a/b", which S3 can (the one documented difference).
const writeKey = FastCheck.constantFrom("a", "ab", "b", "gradient-1-2-v1", "dir/x", "dir/y", "dir/sub/z", "../up", "a//b")
const readKey = FastCheck.oneof(writeKey, FastCheck.constantFrom("dir", "dir/sub", "missing"))
const ops: FastCheck.Arbitrary<ReadonlyArray<Op>> = FastCheck.array(
  FastCheck.oneof(
    FastCheck.record({ op: FastCheck.constant("put" as const), key: writeKey, value: FastCheck.uint8Array({ maxLength: 48 }) }),
    FastCheck.record({ op: FastCheck.constantFrom("get" as const, "head" as const, "delete" as const), key: readKey }),
    FastCheck.record({ op: FastCheck.constant("list" as const), prefix: FastCheck.constantFrom("", "a", "dir", "dir/", "dir/s", "g", "../") }),
  ),
  { maxLength: 30 },
)

const observe = <A>(exit: Exit.Exit<A, { readonly _tag: string }>, show: (a: A) => unknown): unknown =>
  Exit.isSuccess(exit) ? show(exit.value) : exit.cause._tag === "Fail" ? `error:${exit.cause.error._tag}` : "defect"

const runOp = (runtime: ManagedRuntime.ManagedRuntime<Transport, never>, at: BucketLocation, o: Op): Promise<unknown> => {
  const T = <A>(f: (t: Transport["Type"]) => Effect.Effect<A, { readonly _tag: string }>) => runtime.runPromiseExit(Effect.flatMap(Transport, f))
  switch (o.op) {
    case "put": return T((t) => t.put(at, o.key, o.value)).then((e) => observe(e, (i) => i.size))
    case "get": return T((t) => t.get(at, o.key)).then((e) => observe(e, (b) => Buffer.from(b).toString("hex")))
    case "head": return T((t) => t.head(at, o.key)).then((e) => observe(e, (i) => i.size))
    case "delete": return T((t) => t.delete(at, o.key)).then((e) => observe(e, () => "deleted"))
    case "list": return T((t) => t.list(at, o.prefix)).then((e) => observe(e, (os) => os.map((x) => `${x.key}:${x.size}`)))
  }
}

const VALID = /^(?!.*\/\/)(?!\.\.)[A-Za-z0-9._+=/-]+$/
const runModel = (model: Map<string, Uint8Array>, o: Op): unknown => {
  switch (o.op) {
    case "put":
      if (!VALID.test(o.key)) return "error:InvalidKey"
      model.set(o.key, o.value)
      return o.value.length
    case "get":
    case "head": {
      if (!VALID.test(o.key)) return "error:InvalidKey"
      const v = model.get(o.key)
      return v === undefined ? "error:NotFound" : o.op === "get" ? Buffer.from(v).toString("hex") : v.length
    }
    case "delete":
      if (!VALID.test(o.key)) return "error:InvalidKey"
      model.delete(o.key)
      return "deleted"
    case "list":
      if (o.prefix.startsWith("..")) return "error:InvalidKey"
      return [...model.entries()].filter(([k]) => k.startsWith(o.prefix)).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => `${k}:${v.length}`)
  }
}

describe("filesystem and S3 layers agree", () => {
  const s3 = new LocalS3()
  const dir = mkdtempSync(path.join(tmpdir(), "covenant-cross-"))
  let onS3: ManagedRuntime.ManagedRuntime<Transport, never>
  let onFs: ManagedRuntime.ManagedRuntime<Transport, never>
  beforeAll(async () => {
    await s3.start()
    onS3 = ManagedRuntime.make(layerS3(s3.config()))
    onFs = ManagedRuntime.make(layerFileSystem(dir))
  })
  afterAll(async () => {
    await onS3.dispose()
    await onFs.dispose()
    await s3.dispose()
    rmSync(dir, { recursive: true, force: true })
  })

  test("property: the same operations give the same observations on both layers and the model", async () => {
    await FastCheck.assert(
      FastCheck.asyncProperty(ops, async (sequence) => {
        const at = { bucket: freshBucket("cross") }
        await onS3.runPromise(Effect.flatMap(Transport, (t) => t.ensureBucket(at)))
        await onFs.runPromise(Effect.flatMap(Transport, (t) => t.ensureBucket(at)))
        const model = new Map<string, Uint8Array>()
        for (const o of sequence) {
          const fromFs = await runOp(onFs, at, o)
          const fromS3 = await runOp(onS3, at, o)
          const expected = runModel(model, o)
          expect({ op: o.op, fromFs }).toEqual({ op: o.op, fromFs: fromS3 })
          expect(fromFs).toEqual(expected)
        }
      }),
      { numRuns: 30, seed: 5 },
    )
  }, 60_000)
})
