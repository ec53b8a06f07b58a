import { describe, expect, test } from "bun:test"
import { Either, FastCheck as fc } from "effect"
import { compress, crc32, decode, decodeRice, decompress, defaultParams, encode, encodeRice, WIRE_VERSION } from "../src/index.ts"
import type { IndexCoding, TensorUpdate, UpdateMessage, WireTensor } from "../src/index.ts"
import { crc32 as zlibCrc32 } from "node:zlib"
import { randn, refDecodeRice } from "./reference.ts"

const meta = {
  runId: "run-1",
  window: 7,
  uid: 3,
  hotkey: "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY",
  sampleDigest: "ab".repeat(32),
  sampleCount: 128,
}

const updateOf = (shape: number[], k: number, seed: number, scale = 1e-3): TensorUpdate => {
  const n = shape.reduce((a, b) => a * b, 1)
  const r = compress(randn(n, seed, scale), randn(n, seed + 1, scale), shape, { ...defaultParams, topk: k }, `t${seed}`)
  return Either.getOrThrow(r).update
}

const messageOf = (updates: TensorUpdate[], coding: IndexCoding, dense?: Float32Array): UpdateMessage => {
  const tensors: WireTensor[] = updates.map((update) => ({ coding, update }))
  if (dense !== undefined) tensors.push({ coding: "f32", dense: { name: "dense", shape: [dense.length], values: dense } })
  return { meta, tensors }
}

/** Recomputes the checksum of a (possibly mutated) encoding, so mutations reach the parser. */
const reseal = (b: Uint8Array): Uint8Array => {
  const out = b.slice()
  const at = out.length - 4
  if (at >= 0) new DataView(out.buffer).setUint32(at, crc32(out, 0, at), true)
  return out
}

/** Re-encodes with an edited header JSON (lengths and checksum fixed up). */
const editHeader = (b: Uint8Array, edit: (h: { tensors: Array<Record<string, unknown>>; meta: Record<string, unknown> }) => void): Uint8Array => {
  const dv = new DataView(b.buffer, b.byteOffset)
  const len = dv.getUint32(8, true)
  const header = JSON.parse(new TextDecoder().decode(b.subarray(12, 12 + len)))
  edit(header)
  const hb = new TextEncoder().encode(JSON.stringify(header))
  const out = new Uint8Array(b.length - len + hb.length)
  out.set(b.subarray(0, 12))
  new DataView(out.buffer).setUint32(8, hb.length, true)
  out.set(hb, 12)
  out.set(b.subarray(12 + len), 12 + hb.length)
  return reseal(out)
}

const reasonOf = (r: Either.Either<unknown, { reason: string }>): string => (Either.isLeft(r) ? r.left.reason : "ok")

describe("wire format", () => {
  test("crc32 agrees with zlib's on any bytes and range", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(), fc.nat(), (b, x, y) => {
        const s = b.length === 0 ? 0 : x % (b.length + 1)
        const e = s + (b.length === 0 ? 0 : y % (b.length - s + 1))
        return crc32(b, s, e) === zlibCrc32(b.subarray(s, e)) >>> 0
      }),
    )
  })

  test("decode(encode(x)) gives the dequantized values bit for bit, with both index codings", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ shape: fc.oneof(fc.constantFrom([64, 64], [96, 80], [200], [75], [67, 64], [7, 7]), fc.tuple(fc.integer({ min: 1, max: 90 }), fc.integer({ min: 1, max: 90 })).map(([a, b]) => [a, b])), k: fc.integer({ min: 1, max: 100 }), seed: fc.integer({ min: 1, max: 1e9 }) }), { minLength: 1, maxLength: 3 }),
        (specs) => {
          const updates = specs.map((s, i) => ({ ...updateOf(s.shape, s.k, s.seed), name: `t${i}` }))
          for (const coding of ["packed12", "rice"] as const) {
            const bytes = Either.getOrThrow(encode(messageOf(updates, coding)))
            const back = Either.getOrThrow(decode(bytes, { tensors: updates.map((u) => ({ name: u.name, shape: u.shape })) }))
            expect(back.meta).toEqual(meta)
            back.tensors.forEach((t, i) => {
              if (t.coding === "f32") throw new Error("unexpected dense tensor")
              expect(t.coding).toBe(coding)
              const a = Either.getOrThrow(decompress(updates[i]!))
              const b = Either.getOrThrow(decompress(t.update))
              expect(new Uint32Array(b.buffer)).toEqual(new Uint32Array(a.buffer))
              expect(t.update.indices).toEqual(updates[i]!.indices)
              expect(t.update.codes).toEqual(updates[i]!.codes)
            })
          }
        },
      ),
      { numRuns: 60 },
    )
  }, 60_000)

  test("decodeRice gives the bit-by-bit reference's verdict and indices on valid, mutated, cut, extended and random sections", () => {
    const sectionArb = fc
      .record({
        totalk: fc.constantFrom(1, 2, 7, 64, 100, 4096),
        nChunks: fc.integer({ min: 0, max: 6 }),
        kFrac: fc.double({ min: 0, max: 1, noNaN: true }),
        seed: fc.integer({ min: 1, max: 1e9 }),
      })
      .chain(({ totalk, nChunks, kFrac, seed }) => {
        const k = Math.max(1, Math.round(kFrac * Math.min(totalk, 200)))
        // k distinct ascending indices per chunk from a seeded shuffle
        const rnd = randn(nChunks * totalk + 1, seed)
        const indices = new Uint16Array(nChunks * k)
        for (let c = 0; c < nChunks; c++) {
          const order = Array.from({ length: totalk }, (_, j) => j).sort((a, b) => rnd[c * totalk + a]! - rnd[c * totalk + b]! || a - b)
          const pick = order.slice(0, k).sort((a, b) => a - b)
          indices.set(pick, c * k)
        }
        const valid = encodeRice(indices, nChunks, k, totalk)
        const mutated = fc.oneof(
          fc.constant(valid),
          fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 7 })), { minLength: 1, maxLength: 4 }).map((flips) => {
            const b = valid.slice()
            for (const [at, bitNo] of flips) if (b.length > 0) b[at % b.length] = b[at % b.length]! ^ (1 << bitNo)
            return b
          }),
          fc.nat().map((cut) => valid.slice(0, cut % (valid.length + 1))),
          fc.uint8Array({ minLength: 1, maxLength: 5 }).map((extra) => Uint8Array.from([...valid, ...extra])),
          fc.integer({ min: 0, max: 15 }).map((r) => Uint8Array.from([r, ...valid.subarray(1)])),
          fc.uint8Array({ maxLength: 80 }),
          fc.integer({ min: 0, max: 12 }).chain((r) => fc.integer({ min: 0, max: 40 }).map((zeros) => Uint8Array.from([r, ...new Uint8Array(zeros)]))),
        )
        return fc.tuple(fc.constant({ totalk, nChunks, k }), mutated, fc.uint8Array({ maxLength: 7 }), fc.uint8Array({ maxLength: 7 }))
      })
    fc.assert(
      fc.property(sectionArb, ([{ totalk, nChunks, k }, section, before, after]) => {
        // garbage around the section: nothing outside [at, end) may be read
        const bytes = Uint8Array.from([...before, ...section, ...after])
        const at = before.length
        const end = at + section.length
        const ours = new Uint16Array(nChunks * k)
        const ref = new Uint16Array(nChunks * k)
        const s = decodeRice(bytes, at, end, nChunks, k, totalk, ours)
        expect(s).toBe(refDecodeRice(bytes, at, end, nChunks, k, totalk, ref))
        if (s === 0) expect(ours).toEqual(ref)
      }),
      { numRuns: 3000 },
    )
  })

  test("dense (DiLoCo) tensors round-trip bit for bit", () => {
    const dense = randn(333, 5, 1e-2)
    const bytes = Either.getOrThrow(encode(messageOf([updateOf([64, 64], 64, 1)], "rice", dense)))
    const back = Either.getOrThrow(decode(bytes))
    const t = back.tensors[1]!
    expect(t.coding).toBe("f32")
    if (t.coding === "f32") expect(t.dense.values).toEqual(dense)
  })

  test("rice indices approach log2 C(4096, 64) bits per chunk; packed12 is 768", () => {
    const u = updateOf([1024, 1024], 64, 11)
    const rice = Either.getOrThrow(encode(messageOf([u], "rice"))).length
    const packed = Either.getOrThrow(encode(messageOf([u], "packed12"))).length
    let log2Binom = 0
    for (let i = 0; i < 64; i++) log2Binom += Math.log2((4096 - i) / (64 - i))
    const chunks = 256
    const riceIndexBits = (rice - (packed - chunks * 96)) * 8 / chunks
    expect(riceIndexBits).toBeLessThan(log2Binom * 1.05)
    expect(riceIndexBits).toBeGreaterThan(log2Binom * 0.98)
  })

  test("strict decoding: each kind of malformed input gets its typed error", () => {
    const u = updateOf([64, 64], 8, 3)
    const packed = Either.getOrThrow(encode(messageOf([u], "packed12")))
    const rice = Either.getOrThrow(encode(messageOf([u], "rice")))
    expect(reasonOf(decode(packed.subarray(0, 40)))).toBe("Truncated")
    expect(reasonOf(decode(packed.subarray(0, packed.length - 1)))).toBe("BadChecksum")
    const magic = packed.slice()
    magic[0] = 0
    expect(reasonOf(decode(magic))).toBe("BadMagic")
    const version = packed.slice()
    version[4] = WIRE_VERSION + 1
    expect(reasonOf(decode(version))).toBe("UnknownVersion")
    const flip = packed.slice()
    flip[200] = flip[200]! ^ 1
    expect(reasonOf(decode(flip))).toBe("BadChecksum")
    expect(reasonOf(decode(packed, { tensors: [{ name: u.name, shape: [64, 65] }] }))).toBe("ShapeMismatch")
    expect(reasonOf(decode(packed, { tensors: [] }))).toBe("ShapeMismatch")
    expect(reasonOf(decode(editHeader(packed, (h) => (h.tensors[0]!.coding = "zstd"))))).toBe("UnknownCoding")
    expect(reasonOf(decode(editHeader(packed, (h) => (h.tensors[0]!.shift = 1e7))))).toBe("BadHeader")
    expect(reasonOf(decode(editHeader(packed, (h) => (h.tensors[0]!.scale = 0))))).toBe("BadHeader")
    expect(reasonOf(decode(editHeader(packed, (h) => (h.tensors[0]!.lookup = [0, 0.1, 0, 0]))))).toBe("BadHeader") // 0.1 is not a float32
    expect(reasonOf(decode(editHeader(packed, (h) => (h.tensors[0]!.kEff = 10))))).toBe("BadLength")
    expect(reasonOf(decode(editHeader(packed, (h) => (h.meta.hotkey = "not an address"))))).toBe("BadHeader")
    expect(reasonOf(decode(editHeader(packed, (h) => (h.meta.extra = 1))))).toBe("BadHeader")
    // three bins: any code 3 is impossible
    expect(reasonOf(decode(editHeader(packed, (h) => (h.tensors[0]!.lookup = (h.tensors[0]!.lookup as number[]).slice(0, 3)))))).toBe("BadCode")
    // duplicate index in a chunk (packed12): copy the first index over the second
    const dup = packed.slice()
    const hl = new DataView(dup.buffer).getUint32(8, true)
    const idxAt = 12 + hl + 4
    const i1 = dup[idxAt]! | ((dup[idxAt + 1]! & 0xf) << 8)
    dup[idxAt + 1] = (dup[idxAt + 1]! & 0x0f) | ((i1 & 0xf) << 4)
    dup[idxAt + 2] = i1 >> 4
    expect(reasonOf(decode(reseal(dup)))).toBe("DuplicateIndex")
    // rice: a huge gap runs past the chunk
    const far = rice.slice()
    const rl = new DataView(far.buffer).getUint32(8, true)
    const riceLen = new DataView(far.buffer).getUint32(12 + rl, true)
    far.fill(0, 12 + rl + 5, 12 + rl + 4 + riceLen)
    expect(reasonOf(decode(reseal(far)))).toBe("BadIndex")
    // trailing garbage before the checksum
    const longer = new Uint8Array(packed.length + 3)
    longer.set(packed.subarray(0, packed.length - 4))
    longer.set(packed.subarray(packed.length - 4), packed.length - 4 + 3)
    expect(reasonOf(decode(reseal(longer)))).toBe("TrailingBytes")
  })

  test("fuzz: 100k mutated encodings end in a typed error or a valid decode", () => {
    const base = [
      Either.getOrThrow(encode(messageOf([updateOf([16, 16], 8, 21), updateOf([10], 4, 22)], "rice", randn(3, 23)))),
      Either.getOrThrow(encode(messageOf([updateOf([16, 16], 8, 24), updateOf([10], 4, 25)], "packed12"))),
    ]
    // mulberry32: a small PRNG whose low bits are usable
    let seed = 12345
    const rnd = (n: number) => {
      seed = (seed + 0x6d2b79f5) | 0
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
      return ((t ^ (t >>> 14)) >>> 0) % n
    }
    const payloadStart = base.map((b) => 12 + new DataView(b.buffer).getUint32(8, true))
    // half the edits land in the payload (index and code sections), the rest anywhere
    const pos = (w: number, len: number) => (rnd(2) === 0 ? rnd(len) : Math.min(len - 1, payloadStart[w]! + rnd(Math.max(1, len - payloadStart[w]!))))
    const outcomes = new Map<string, number>()
    const t0 = performance.now()
    const N = 100_000
    for (let i = 0; i < N; i++) {
      const which = (i >> 1) & 1
      const src = base[which]!
      let m: Uint8Array
      switch (rnd(4)) {
        case 0: {
          m = src.slice()
          for (let f = 1 + rnd(3); f > 0; f--) {
            const at = pos(which, m.length)
            m[at] = m[at]! ^ (1 << rnd(8))
          }
          break
        }
        case 1:
          m = src.slice(0, rnd(src.length))
          break
        case 2: {
          const a = pos(which, src.length)
          const b = rnd(src.length)
          const len = rnd(40)
          m = new Uint8Array(src.length + len)
          m.set(src.subarray(0, a))
          m.set(src.subarray(b, b + len), a)
          m.set(src.subarray(a), a + Math.min(len, src.length - b))
          m = m.subarray(0, src.length + Math.min(len, src.length - b))
          break
        }
        default: {
          m = src.slice()
          const at = pos(which, m.length)
          m[at] = rnd(256)
        }
      }
      // half the mutations get a valid checksum so they reach the header and payload parsers
      if (i % 2 === 0) m = reseal(m)
      const r = decode(m)
      const k = Either.isLeft(r) ? r.left.reason : "valid"
      outcomes.set(k, (outcomes.get(k) ?? 0) + 1)
    }
    const ms = performance.now() - t0
    console.log(`fuzz: ${N} mutations in ${ms.toFixed(0)} ms:`, Object.fromEntries(outcomes))
    expect([...outcomes.values()].reduce((a, b) => a + b, 0)).toBe(N)
    expect(outcomes.size).toBeGreaterThan(5)
  }, 120_000)
})
