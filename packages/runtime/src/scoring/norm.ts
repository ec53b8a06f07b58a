/**
 * Norm outliers: an update whose L2 norm is many times the window's median is flagged like a copy.
 * The aggregate already clips every peer to the median norm, tensor by tensor (sparseloco's
 * aggregate.ts), so a scaled update moves the model no more than an honest one; but its evaluation
 * is of the clipped update too, so without this check a peer that sends x1000 its update is rated,
 * and paid, like an honest one.
 */
import { peerNorm } from "@covenant/sparseloco"
import type { UpdateMessage, WireTensor } from "@covenant/sparseloco"
import { median } from "./median.ts"

/**
 * How many times the median norm an update may be. Honest updates of one window measured within
 * 1 % of its median (the 2-bit codec's per-tensor scale evens them out: scaled main example and
 * debug swarm, 9-16 windows); a scaled update that is to dominate the mean exceeds this by far.
 */
export const NORM_OUTLIER_FACTOR = 10

/** The L2 norm of one tensor of an update (a sparse one by its dequantized values). */
export const tensorNorm = (t: WireTensor): number => {
  if (t.coding !== "f32") return peerNorm(t.update)
  let ss = 0
  for (const v of t.dense.values) ss += v * v
  return Math.sqrt(ss)
}

/** The L2 norm of a whole update. */
export const updateNorm = (m: UpdateMessage): number => Math.sqrt(m.tensors.reduce((ss, t) => ss + tensorNorm(t) ** 2, 0))

/**
 * The uids whose update norm exceeds `factor` x the window's median. While honest peers are more
 * than half, the median lies within their norms, so no minority (zero updates or huge ones) can
 * make an honest peer an outlier. Fewer than 3 uploads: no majority to compare with, none.
 */
export const normOutliers = (uploads: ReadonlyArray<{ readonly uid: number; readonly message: UpdateMessage }>, factor: number): number[] => {
  if (uploads.length < 3) return []
  const norms = uploads.map((u) => updateNorm(u.message))
  const mid = median(norms)
  return uploads.filter((_, i) => !(norms[i]! <= factor * mid)).map((u) => u.uid).sort((a, b) => a - b)
}
