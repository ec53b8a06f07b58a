import { describe, expect, test } from "bun:test"
import { Either, FastCheck as fc } from "effect"
import { decodeRecord, encodeRecord } from "../src/index.ts"

const updates = fc.uniqueArray(fc.record({ uid: fc.integer({ min: 0, max: 65535 }), payload: fc.uint8Array({ maxLength: 64 }) }), { selector: (u) => u.uid, maxLength: 8 })

describe("aggregation record", () => {
  test("round-trips any set of updates, sorted by uid", () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 1e6 }), updates, (window, us) => {
      const decoded = decodeRecord(encodeRecord({ window, updates: us }))
      expect(Either.isRight(decoded)).toBe(true)
      const sorted = [...us].sort((a, b) => a.uid - b.uid)
      expect(Either.getOrThrow(decoded)).toEqual({ window, updates: sorted.map((u) => ({ uid: u.uid, payload: Uint8Array.from(u.payload) })) })
    }))
  })

  test("truncation, trailing bytes and garbage are typed errors, never throws", () => {
    fc.assert(fc.property(updates, fc.uint8Array({ maxLength: 200 }), (us, junk) => {
      const bytes = encodeRecord({ window: 3, updates: us })
      const cut = decodeRecord(bytes.subarray(0, bytes.length - 1))
      if (us.some((u) => u.payload.length > 0)) expect(Either.isLeft(cut)).toBe(true)
      const extra = new Uint8Array(bytes.length + 1)
      extra.set(bytes)
      expect(Either.isLeft(decodeRecord(extra))).toBe(true)
      const garbage = decodeRecord(junk)
      if (Either.isLeft(garbage)) expect(garbage.left._tag).toBe("CodecFailure")
    }))
  })
})
