/**
 * A worker thread of the codec's receive side (parallel.ts): claims items from the job's shared
 * counter, runs the one-thread decode or aggregate on each, and posts the results back (aggregates'
 * dense buffers transferred, decoded updates already in shared memory).
 */
import { aggregateItem, claimAll, decodeItem } from "./parallel.ts"
import type { ItemResult, Job } from "./parallel.ts"
import type { Aggregated } from "./aggregate.ts"

declare const self: { onmessage: ((e: MessageEvent) => void) | null; postMessage: (m: unknown, transfer?: ArrayBuffer[]) => void }

self.onmessage = (e: MessageEvent) => {
  const job = e.data as Job
  if (job.kind === "aggregate") {
    const results = claimAll(job.counter, job.order, (i) => aggregateItem(job.tensors, job.outs, i))
    const transfer = results.flatMap((r: ItemResult<Aggregated>) => ("ok" in r && !(r.ok.dense.buffer instanceof SharedArrayBuffer) ? [r.ok.dense.buffer as ArrayBuffer] : []))
    self.postMessage({ id: job.id, results }, transfer)
  } else {
    self.postMessage({ id: job.id, results: claimAll(job.counter, job.order, (i) => decodeItem(job.messages, job.manifest, i)) })
  }
}
