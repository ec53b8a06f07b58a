/**
 * The largest legal encoding of one update: what a receiver may download before decoding it.
 * Every section of the wire format is bounded by the manifest (shapes, names) and the codec's
 * settings (chunk, topk, coding): an object larger than this cannot decode to a legal update,
 * so a reader caps its download here instead of trusting the sender.
 */
import { codesLength } from "./codes2bit.ts"
import { clampK } from "@covenant/dsl"
import { layoutOf } from "./layout.ts"
import { packed12Length } from "./packed12.ts"
import { MAX_RICE_PARAM } from "./rice.ts"
import type { IndexCoding } from "./params.ts"
import type { Manifest } from "./wire.ts"

/** What the receiver expects the sender to have used: SparseLoCo settings, or dense f32 (`none`). */
export type WireSettings =
  | { readonly kind: "sparseloco"; readonly chunk: number; readonly topk: number; readonly indexCoding: IndexCoding }
  | { readonly kind: "none" }

/** Characters of a JSON number a float32 (|x| <= 1e6) or a small integer can print as, with room to spare. */
const NUMBER_CHARS = 32
/** Prefix (magic, version, flags, header length) + CRC. */
const FRAME = 12 + 4

/**
 * Bits of one chunk's Rice-coded indices at worst over the legal parameters r: k gaps summing to
 * at most totalk - k cost k(1 + r) + floor(sum / 2^r) bits at most.
 */
const riceChunkBits = (k: number, totalk: number): number => {
  let worst = 0
  for (let r = 0; r <= MAX_RICE_PARAM; r++) worst = Math.max(worst, k * (1 + r) + Math.floor((totalk - k) / 2 ** r))
  return worst
}

/** The largest index section a decoder accepts for `nChunks` chunks of `k` indices out of `totalk`, whatever Rice parameter the sender chose. */
export const maxIndexSectionBytes = (coding: IndexCoding, nChunks: number, k: number, totalk: number): number =>
  coding === "packed12" ? packed12Length(nChunks * k) : 1 + Math.ceil((nChunks * riceChunkBits(k, totalk)) / 8)

/** Header JSON of one tensor, generously: keys, coding, chunk and k, three stats, four lookup values. */
const tensorHeaderChars = (name: string, shape: readonly number[]): number =>
  128 + JSON.stringify(name).length + JSON.stringify(shape).length + 8 * NUMBER_CHARS

/**
 * Upper bound on the bytes of a legal update for `manifest` under `settings` whose meta names
 * `runId` (the other meta fields are bounded by the wire schema). Undefined when a tensor cannot
 * be laid out (such a manifest admits no update at all).
 */
export const maxUpdateBytes = (manifest: Manifest, settings: WireSettings, runId: string): number | undefined => {
  // meta: run id (each char escapes to at most 6), hotkey <= 60, digest <= 128, three integers.
  let total = FRAME + 64 + 6 * runId.length + 60 + 128 + 3 * NUMBER_CHARS + 128
  for (const { name, shape } of manifest.tensors) {
    total += 8 + tensorHeaderChars(name, shape)
    const numel = shape.reduce((a, b) => a * b, 1)
    if (settings.kind === "none") {
      total += 4 * numel
      continue
    }
    const l = layoutOf(shape, settings.chunk)
    if (l._tag === "Left") return undefined
    const k = clampK(settings.topk, l.right.totalk)
    total += codesLength(l.right.nChunks * k) + maxIndexSectionBytes(settings.indexCoding, l.right.nChunks, k, l.right.totalk)
  }
  return total
}
