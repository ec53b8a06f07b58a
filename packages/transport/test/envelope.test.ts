import { beforeAll, describe, expect, test } from "bun:test"
import { Effect, Either, FastCheck } from "effect"
import type { KeyringPair } from "@polkadot/keyring/types"
import { SIGNATURE_LENGTH, cryptoReady, openEnvelope, parseEnvelope, sealEnvelope } from "../src/index.ts"
import type { EnvelopeContext } from "../src/index.ts"
import { makeHotkeys } from "./support/peers.ts"

describe("signed envelopes", () => {
  let alice: KeyringPair
  let bob: KeyringPair
  const context: EnvelopeContext = { runId: "run-α", window: 4_000_000_001, uid: 17, kind: "gradient" }
  beforeAll(async () => {
    await Effect.runPromise(cryptoReady)
    const keys = await makeHotkeys(2, "envelope")
    alice = keys[0]!
    bob = keys[1]!
  })

  test("round-trip: the payload comes back for the right context and hotkey", () => {
    const payload = new Uint8Array([1, 2, 3, 250])
    const sealed = sealEnvelope(context, payload, alice)
    expect(sealed.length).toBe(4 + 1 + 1 + 8 + 2 + new TextEncoder().encode("run-α").length + 8 + 4 + 8 + payload.length + SIGNATURE_LENGTH)
    const opened = openEnvelope(sealed, context, alice.address)
    expect(Either.isRight(opened) && [...opened.right]).toEqual([1, 2, 3, 250])
    const parsed = parseEnvelope(sealed)
    expect(Either.isRight(parsed) && parsed.right.context).toEqual(context)
  })

  test("any other context or hotkey is refused", () => {
    const sealed = sealEnvelope(context, new Uint8Array(100), alice)
    for (const other of [{ ...context, runId: "run-b" }, { ...context, window: 4_000_000_002 }, { ...context, uid: 18 }, { ...context, kind: "debug" }]) {
      expect(Either.isLeft(openEnvelope(sealed, other, alice.address))).toBe(true)
    }
    expect(Either.isLeft(openEnvelope(sealed, context, bob.address))).toBe(true)
    const notAnAddress = openEnvelope(sealed, context, "not-an-address")
    expect(Either.isLeft(notAnAddress) && notAnAddress.left._tag).toBe("BadSignature")
  })

  test("property: flipping any bit or cutting any length makes it fail", () => {
    const sealed = sealEnvelope(context, new Uint8Array(300).map((_, i) => i), alice)
    FastCheck.assert(FastCheck.property(FastCheck.integer({ min: 0, max: sealed.length * 8 - 1 }), (bit) => {
      const tampered = sealed.slice()
      tampered[bit >> 3] = tampered[bit >> 3]! ^ (1 << (bit & 7))
      expect(Either.isLeft(openEnvelope(tampered, context, alice.address))).toBe(true)
    }), { numRuns: 60 })
    FastCheck.assert(FastCheck.property(FastCheck.integer({ min: 0, max: sealed.length - 1 }), (cut) => {
      expect(Either.isLeft(openEnvelope(sealed.subarray(0, cut), context, alice.address))).toBe(true)
    }), { numRuns: 60 })
    const padded = new Uint8Array(sealed.length + 1)
    padded.set(sealed)
    expect(Either.isLeft(openEnvelope(padded, context, alice.address))).toBe(true)
  })

  test("arbitrary bytes never crash the parser", () => {
    FastCheck.assert(FastCheck.property(FastCheck.uint8Array({ maxLength: 200 }), (bytes) => {
      const opened = openEnvelope(bytes, context, alice.address)
      expect(Either.isLeft(opened)).toBe(true)
    }), { numRuns: 200 })
  })
})
