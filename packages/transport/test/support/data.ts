/** Deterministic test bytes (xorshift32), generated in chunks so 100 MB never sits in one buffer. */
import { createHash } from "node:crypto"
import { Stream } from "effect"

export const deterministicChunk = (seed: number, index: number, length: number): Uint8Array => {
  const words = new Uint32Array(Math.ceil(length / 4))
  let x = (seed * 0x9e3779b1 + index * 0x85ebca6b + 1) >>> 0 || 1
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13; x >>>= 0
    x ^= x >>> 17
    x ^= x << 5; x >>>= 0
    words[i] = x
  }
  return new Uint8Array(words.buffer, 0, length)
}

/** `total` bytes in chunks of `chunk` bytes: the same bytes for the same arguments. */
export const deterministicStream = (seed: number, total: number, chunk: number): Stream.Stream<Uint8Array> =>
  Stream.range(0, Math.ceil(total / chunk) - 1).pipe(
    Stream.map((i) => deterministicChunk(seed, i, Math.min(chunk, total - i * chunk))),
  )

/** Byte `offset`..`offset+length` of deterministicStream(seed, total, chunk), computed directly. */
export const deterministicSlice = (seed: number, total: number, chunk: number, offset: number, length: number): Uint8Array => {
  const out = new Uint8Array(length)
  let written = 0
  while (written < length) {
    const at = offset + written
    const index = Math.floor(at / chunk)
    const piece = deterministicChunk(seed, index, Math.min(chunk, total - index * chunk))
    const from = at - index * chunk
    const take = Math.min(piece.length - from, length - written)
    out.set(piece.subarray(from, from + take), written)
    written += take
  }
  return out
}

export const sha256 = (chunks: Iterable<Uint8Array>): string => {
  const hash = createHash("sha256")
  for (const c of chunks) hash.update(c)
  return hash.digest("hex")
}
