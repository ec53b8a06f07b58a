/**
 * The shared model as host arrays (HF names, `llamaParameters` order) and the small facts nodes
 * compare about it: a digest for bitwise identity and a few values per tensor for sync checks.
 */
import { createHash } from "node:crypto"

export type Params = Map<string, Float32Array>

export const cloneParams = (params: ReadonlyMap<string, Float32Array>): Params =>
  new Map([...params].map(([name, values]) => [name, values.slice()]))

export const zerosLike = (params: ReadonlyMap<string, Float32Array>): Params =>
  new Map([...params].map(([name, values]) => [name, new Float32Array(values.length)]))

/** sha256 over every tensor's name and bytes, in order: equal digests mean bitwise-identical models. */
export const paramsDigest = (params: ReadonlyMap<string, Float32Array>): string => {
  const hash = createHash("sha256")
  for (const [name, values] of params) {
    hash.update(name)
    hash.update(new Uint8Array(values.buffer, values.byteOffset, values.byteLength))
  }
  return hash.digest("hex")
}

/**
 * A parameter slice: `count` values of each tensor at evenly spread positions, which nodes publish
 * as the reference's `debug-{window}-{uid}` objects (protocol.md) to check that they stay in sync.
 */
export const paramSlice = (params: ReadonlyMap<string, Float32Array>, count = 4): Record<string, number[]> => {
  const out: Record<string, number[]> = {}
  for (const [name, values] of params) {
    const step = Math.max(1, Math.floor(values.length / count))
    const picked: number[] = []
    for (let i = 0; i < values.length && picked.length < count; i += step) picked.push(values[i]!)
    out[name] = picked
  }
  return out
}

/** Largest |a - b| over the values both parameter slices hold (Infinity if a tensor is missing). */
export const sliceDistance = (mine: Readonly<Record<string, readonly number[]>>, theirs: Readonly<Record<string, readonly number[]>>): number => {
  let worst = 0
  for (const [name, values] of Object.entries(theirs)) {
    const own = mine[name]
    if (own === undefined || own.length !== values.length) return Number.POSITIVE_INFINITY
    for (let i = 0; i < values.length; i++) worst = Math.max(worst, Math.abs(own[i]! - values[i]!))
  }
  return worst
}
