/** Copy detection, sync score and the peer list: the pure parts the validator and every node use. */
import { describe, expect, test } from "bun:test"
import { FastCheck as fc } from "effect"
import type { TensorUpdate, UpdateMessage } from "@covenant/sparseloco"
import { copyBar, detectCopies, tensorOverlap } from "../src/scoring/copy.ts"
import { normOutliers, updateNorm } from "../src/scoring/norm.ts"
import { syncScore, stepsBehind } from "../src/scoring/sync.ts"
import { aggregatedPeers, choosePeerList, gatheredUids } from "../src/scoring/peer-list.ts"

const tensor = (indices: number[], kEff: number): TensorUpdate => ({
  name: "t", shape: [indices.length], chunk: 64, kEff, indices: Uint16Array.from(indices), codes: new Uint8Array(indices.length), shift: 0, scale: 1, lookup: new Float32Array(4),
})
const message = (uid: number, ...ts: TensorUpdate[]): UpdateMessage =>
  ({ meta: { runId: "r", window: 1, uid, hotkey: "h", sampleDigest: "d", sampleCount: 1 }, tensors: ts.map((update) => ({ coding: "packed12" as const, update })) }) as unknown as UpdateMessage

describe("copy detection", () => {
  test("overlap counts shared indices chunk by chunk", () => {
    // two chunks of k = 2: chunk 0 shares {1}, chunk 1 shares {5, 6}
    expect(tensorOverlap(tensor([0, 1, 5, 6], 2), tensor([1, 2, 6, 5], 2))).toBe(3 / 4)
    // the same index in another chunk is not shared
    expect(tensorOverlap(tensor([0, 1, 2, 3], 2), tensor([2, 3, 0, 1], 2))).toBe(0)
  })

  test("the later uploader of an overlapping pair is the copy, whatever the order given", () => {
    const a = { uid: 5, storeTime: 100, message: message(5, tensor([0, 1, 5, 6], 2)) }
    const copy = { uid: 2, storeTime: 140, message: message(2, tensor([0, 1, 5, 6], 2)) }
    const other = { uid: 3, storeTime: 90, message: message(3, tensor([2, 3, 7, 8], 2)) }
    expect(detectCopies([a, copy, other], 0.4).copies).toEqual([2])
    expect(detectCopies([other, copy, a], 0.4).copies).toEqual([2])
    expect(detectCopies([{ ...copy, storeTime: 10 }, a, other], 0.4).copies).toEqual([5])
    expect(detectCopies([a, copy, other], 1.01).copies).toEqual([])
  })

  // Honest peers of a tiny model share much of their top-k: here every honest pair shares 4 of 10
  // (0.4, like the scaled main example's 0.32-0.41), which the reference's fixed 0.4 called copies.
  const honest = (uid: number) => ({ uid, storeTime: uid, message: message(uid, tensor([0, 1, 2, 3, ...[0, 1, 2, 3, 4, 5].map((j) => 10 + 6 * uid + j)], 10)) })

  test("honest peers sharing as much as the threshold are not copies; a re-signed update among them is", () => {
    const peers = [1, 2, 3, 4].map(honest)
    expect(detectCopies(peers, 0.4).copies).toEqual([])
    const copy = { ...peers[1]!, uid: 9, storeTime: 50 }
    const judged = detectCopies([...peers, copy], 0.4)
    expect(judged.copies).toEqual([9])
    expect(judged.bar).toBe(0.7)
  })

  test("the bar: the threshold below 3 pairs, else never below it nor below halfway from the median pair to 1", () => {
    expect(copyBar([0.9], 0.4)).toBe(0.4)
    expect(copyBar([0.1, 0.1, 0.2], 0.8)).toBe(0.8)
    fc.assert(fc.property(fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 3, maxLength: 30 }), fc.double({ min: 0, max: 1, noNaN: true }), (pairs, threshold) => {
      const bar = copyBar(pairs, threshold)
      expect(bar).toBeGreaterThanOrEqual(threshold)
      expect(bar).toBeLessThanOrEqual(1)
      // At least half of the window's pairs lie at or below the median, so under the bar unless identical.
      expect(pairs.filter((o) => o < bar).length + pairs.filter((o) => o === 1).length).toBeGreaterThanOrEqual(Math.ceil(pairs.length / 2))
    }))
  })

  test("an identical copy is caught among honest peers of any distinct top-k sets", () => {
    const index = fc.uniqueArray(fc.integer({ min: 0, max: 63 }), { minLength: 8, maxLength: 8 })
    fc.assert(fc.property(fc.uniqueArray(index, { minLength: 2, maxLength: 6, selector: (xs) => [...xs].sort((a, b) => a - b).join(",") }), (sets) => {
      const peers = sets.map((ix, uid) => ({ uid, storeTime: uid, message: message(uid, tensor(ix, 8)) }))
      const copy = { ...peers[0]!, uid: 99, storeTime: 99 }
      expect(detectCopies([...peers, copy], 0.4).copies).toContain(99)
    }))
  })
})

describe("norm outliers", () => {
  // One tensor, one chunk of k = 2 whose codes pick lookup values: the norm is that of the picked values.
  const valued = (uid: number, values: [number, number]) => ({
    uid,
    message: message(uid, { ...tensor([0, 1], 2), codes: Uint8Array.from([0, 1]), lookup: Float32Array.from([values[0], values[1], 0, 0]) }),
  })

  test("the norm of an update is that of its dequantized values", () => {
    expect(updateNorm(valued(1, [3, 4]).message)).toBeCloseTo(5, 6)
  })

  test("an update far above the median is an outlier; honest spread, zero updates and small windows are not", () => {
    const honest = [valued(1, [3, 4]), valued(2, [6, 8]), valued(3, [1.5, 2])]
    expect(normOutliers(honest, 10)).toEqual([])
    expect(normOutliers([...honest, valued(9, [3000, 4000])], 10)).toEqual([9])
    // Two free-riders (norm 0) among four: the median is half an honest norm, so no honest peer is an outlier.
    expect(normOutliers([valued(1, [3, 4]), valued(2, [3, 4]), valued(3, [0, 0]), valued(4, [0, 0])], 10)).toEqual([])
    expect(normOutliers([valued(1, [3, 4]), valued(9, [3000, 4000])], 10)).toEqual([])
  })

  test("while honest peers are a strict majority within a factor's spread, none of them is an outlier", () => {
    fc.assert(fc.property(
      fc.array(fc.double({ min: 1, max: 9.99, noNaN: true }), { minLength: 2, maxLength: 6 }),
      fc.array(fc.oneof(fc.constant(0), fc.double({ min: 1e3, max: 1e6, noNaN: true })), { maxLength: 5 }),
      (honest, hostile) => {
        fc.pre(honest.length > hostile.length)
        const ups = [...honest.map((n, i) => valued(i, [n, 0])), ...hostile.map((n, i) => valued(100 + i, [n, 0]))]
        for (const uid of normOutliers(ups, 10)) expect(uid).toBeGreaterThanOrEqual(100)
      },
    ))
  })
})

describe("sync score", () => {
  test("0 steps -> 1, max steps or more -> 0, monotone in between", () => {
    expect(syncScore(0, 3, 2.5)).toBe(1)
    expect(syncScore(3, 3, 2.5)).toBe(0)
    expect(syncScore(Number.POSITIVE_INFINITY, 3, 2.5)).toBe(0)
    expect(syncScore(1.5, 3, 2)).toBe(0.25)
    fc.assert(fc.property(fc.double({ min: 0, max: 10, noNaN: true }), fc.double({ min: 0, max: 10, noNaN: true }), (a, b) => {
      const [lo, hi] = a <= b ? [a, b] : [b, a]
      expect(syncScore(lo, 3, 2.5)).toBeGreaterThanOrEqual(syncScore(hi, 3, 2.5))
    }))
  })

  test("steps behind: the mean distance over the typical change; an identical slice is 0 steps", () => {
    const v = { a: [1, 2], b: [3] }
    expect(stepsBehind(v, v, 0)).toBe(0)
    expect(stepsBehind({ a: [1.2, 2], b: [3.1] }, v, 0.1)).toBeCloseTo(1, 12)
    expect(stepsBehind({ a: [1] }, v, 0.1)).toBe(Number.POSITIVE_INFINITY)
  })
})

describe("peer list", () => {
  const cands = [1, 2, 3, 4, 5, 6].map((uid) => ({ uid, hotkey: `hk${uid}` }))
  const score = (uid: number) => [0, 0.5, 0.9, 0, 0.9, 0.1, 0][uid]!

  test("top peers by score (uid on ties), then reserves; penalised and unadmitted peers left out", () => {
    expect(choosePeerList(cands, score, () => false, { kind: "permissionless" }, { peersGathered: 2, reservePeers: 2 })).toEqual({ peers: [2, 4], reserve: [1, 5] })
    expect(choosePeerList(cands, score, (u) => u === 4, { kind: "allowList", hotkeys: ["hk2", "hk4", "hk6", "hk3"] }, { peersGathered: 2, reservePeers: 5 })).toEqual({ peers: [2, 3], reserve: [6] })
  })

  test("reserves fill the slots of listed peers that did not deliver, in list order; never more than the list's size", () => {
    const list = { peers: [4, 2, 9], reserve: [7, 1, 3] }
    expect(gatheredUids(list)).toEqual([1, 2, 3, 4, 7, 9])
    expect(aggregatedPeers(list, [2, 4, 9, 7, 1])).toEqual([2, 4, 9])
    expect(aggregatedPeers(list, [2, 1, 3])).toEqual([1, 2, 3])
    expect(aggregatedPeers(list, new Set([9, 3, 1]))).toEqual([1, 3, 9])
    fc.assert(fc.property(fc.subarray([1, 2, 3, 4, 7, 9]), (got) => {
      const out = aggregatedPeers(list, got)
      expect(out.length).toBeLessThanOrEqual(list.peers.length)
      for (const u of out) expect(got.includes(u)).toBe(true)
      expect(aggregatedPeers(list, [...got].reverse())).toEqual(out)
      for (const u of list.peers) if (got.includes(u)) expect(out).toContain(u)
    }))
  })
})
