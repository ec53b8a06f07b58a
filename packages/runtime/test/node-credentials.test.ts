/**
 * Write keys never reach the chain: a node commits the read pair (s3rver on loopback, the local
 * chain), the others read its bucket with exactly that pair, and a read pair equal to the write
 * key is refused with a typed error before anything is committed.
 */
import { afterAll, beforeAll, expect, test } from "bun:test"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Either, Layer } from "effect"
import { Chain, identityFromSecret, layerLocal } from "@covenant/chain"
import { layerS3, Transport } from "@covenant/transport"
import { LocalS3 } from "@covenant/transport/testing"
import { joinNetwork, locationOf, readDirectory, s3Commitment } from "../src/index.ts"

const s3 = new LocalS3()
const dir = mkdtempSync(join(tmpdir(), "covenant-credentials-"))
beforeAll(() => s3.start())
afterAll(async () => {
  await s3.dispose()
  rmSync(dir, { recursive: true, force: true })
})

test("a commitment carries the read pair, never the write key; a read pair that is the write key is a typed error", async () => {
  const write = s3.config()
  const read = s3.readKeys()
  expect(read.accessKeyId).not.toBe(write.accessKeyId)
  const same = s3Commitment(write, "covenant-x", { accessKeyId: write.accessKeyId, secretAccessKey: "other" }, write)
  expect(Either.isLeft(same) && same.left._tag).toBe("WriteKeyCommitted")
  const sameSecret = s3Commitment(write, "covenant-x", { accessKeyId: "other", secretAccessKey: write.secretAccessKey }, write)
  expect(Either.isLeft(sameSecret) && sameSecret.left._tag).toBe("WriteKeyCommitted")

  const identity = await Effect.runPromise(identityFromSecret("//credentials-peer"))
  const commitment = Either.getOrThrow(s3Commitment(write, "covenant-cred", read, write))
  const layer = Layer.mergeAll(
    layerLocal({ dir, identity, params: { blockIntervalMs: 50, blocksPerWindow: 5, weightsRateLimit: 0, permitStake: 10 }, serve: false }),
    layerS3(write),
  )
  const program = Effect.gen(function* () {
    const uid = yield* joinNetwork({ bucket: "covenant-cred" }, commitment, "peer")
    const transport = yield* Transport
    yield* transport.put({ bucket: "covenant-cred" }, "hello", new Uint8Array([1, 2, 3]))
    // What every other node sees on chain, and reads the bucket with.
    const chain = yield* Chain
    const onChain = (yield* chain.commitments).flatMap((c) => (Either.isRight(c.commitment) ? [c.commitment.right] : []))
    expect(onChain.length).toBe(1)
    const text = JSON.stringify(onChain)
    expect(text).not.toContain(`"${write.secretAccessKey}"`)
    expect(text).not.toContain(`"${write.accessKeyId}"`)
    const seen = (yield* readDirectory).participants.get(uid)!.location!
    expect(seen).toEqual(locationOf(onChain[0]!))
    expect(seen.accessKeyId).toBe(read.accessKeyId)
    expect([...(yield* transport.get(seen, "hello"))]).toEqual([1, 2, 3])
  })
  await Effect.runPromise(Effect.scoped(Effect.provide(program, layer)))
}, 30_000)
