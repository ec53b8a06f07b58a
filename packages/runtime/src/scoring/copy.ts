/**
 * Copy detection: two updates whose top-k index sets overlap at or above a threshold (mean over
 * tensors of |I_a ∩ I_b| / min(|I_a|, |I_b|), chunk by chunk) are one update; the later
 * uploader (store time, then uid) is the copy. Honest peers start from the same model with empty
 * error feedback, so the first windows of a run are a grace period.
 */
import type { TensorUpdate, UpdateMessage } from "@covenant/sparseloco"

/** Fraction of shared (chunk, index) entries of two updates of one tensor. */
export const tensorOverlap = (a: TensorUpdate, b: TensorUpdate): number => {
  if (a.indices.length === 0 || b.indices.length === 0) return 0
  const chunks = Math.min(a.indices.length / a.kEff, b.indices.length / b.kEff)
  let shared = 0
  const seen = new Set<number>()
  for (let c = 0; c < chunks; c++) {
    seen.clear()
    for (let j = 0; j < a.kEff; j++) seen.add(a.indices[c * a.kEff + j]!)
    for (let j = 0; j < b.kEff; j++) if (seen.has(b.indices[c * b.kEff + j]!)) shared++
  }
  return shared / (chunks * Math.min(a.kEff, b.kEff))
}

/** Mean tensor overlap of two sparse updates (0 for dense or mismatched updates). */
export const updateOverlap = (a: UpdateMessage, b: UpdateMessage): number => {
  let sum = 0
  let n = 0
  a.tensors.forEach((ta, i) => {
    const tb = b.tensors[i]
    if (tb === undefined || ta.coding === "f32" || tb.coding === "f32") return
    sum += tensorOverlap(ta.update, tb.update)
    n++
  })
  return n === 0 ? 0 : sum / n
}

export interface Upload {
  readonly uid: number
  readonly storeTime: number
  readonly message: UpdateMessage
}

/** The uids judged copies: for each pair at or above `threshold`, the later uploader (ties: higher uid). */
export const detectCopies = (uploads: ReadonlyArray<Upload>, threshold: number): { copies: number[]; maxOverlap: Map<number, number> } => {
  const copies = new Set<number>()
  const maxOverlap = new Map<number, number>()
  const ordered = [...uploads].sort((a, b) => a.storeTime - b.storeTime || a.uid - b.uid)
  for (let i = 0; i < ordered.length; i++) {
    for (let j = i + 1; j < ordered.length; j++) {
      const o = updateOverlap(ordered[i]!.message, ordered[j]!.message)
      for (const u of [ordered[i]!.uid, ordered[j]!.uid]) maxOverlap.set(u, Math.max(maxOverlap.get(u) ?? 0, o))
      if (o >= threshold) copies.add(ordered[j]!.uid)
    }
  }
  return { copies: [...copies].sort((a, b) => a - b), maxOverlap }
}
