/**
 * The receive side on several cores: strict decode of many peers' messages (workers over
 * messages) and aggregation of a model's tensors (workers over tensors). Each message and each
 * tensor is still handled whole by the one-thread code (wire.ts `decode`, aggregate.ts
 * `aggregate`), so results are bitwise those of the single-threaded path: only which thread runs
 * which item changes, never the float32 order inside an item.
 *
 * Items are claimed from a shared atomic counter, largest first, by the calling thread and by
 * `threads - 1` workers (parallelWorker.ts), so a core that another job slows down takes fewer.
 * Decoded updates live in SharedArrayBuffers (decode's `shared` option): posting them to a worker
 * for aggregation copies nothing. Aggregates come back as transferred buffers.
 */
import { Either } from "effect"
import { aggregate } from "./aggregate.ts"
import type { Aggregated } from "./aggregate.ts"
import { CodecError, WireError } from "./errors.ts"
import type { CodecErrorReason, WireErrorReason } from "./errors.ts"
import type { TensorUpdate } from "./update.ts"
import { decode } from "./wire.ts"
import type { Manifest, UpdateMessage } from "./wire.ts"

export interface ParallelOptions {
  /** Threads in all, the caller's included (default: the machine's cores, at most 8). */
  readonly threads?: number
  /** Whether the calling thread takes items too (default true; false leaves them all to workers, for tests). */
  readonly caller?: boolean
  /**
   * Below this much work (entries + output elements over all items; bytes for decode) everything
   * runs on the caller: a worker's round trip costs more than a small model's whole aggregation.
   * Default 2^20; 0 always uses the workers.
   */
  readonly minWork?: number
}

/** What a worker sends back for one item. */
export type ItemResult<A> = { readonly i: number; readonly ok: A } | { readonly i: number; readonly reason: string; readonly message: string }

/** A job as posted to a worker. */
export type Job =
  | {
      readonly kind: "aggregate"
      readonly id: number
      readonly counter: Int32Array
      readonly order: readonly number[]
      readonly tensors: readonly (readonly TensorUpdate[])[]
      readonly outs?: readonly Float32Array[]
    }
  | { readonly kind: "decode"; readonly id: number; readonly counter: Int32Array; readonly order: readonly number[]; readonly messages: readonly Uint8Array[]; readonly manifest?: Manifest }

/** Claims items (indices into `order`) from the shared counter until none are left. */
export const claimAll = <A>(counter: Int32Array, order: readonly number[], run: (i: number) => ItemResult<A>): ItemResult<A>[] => {
  const out: ItemResult<A>[] = []
  for (;;) {
    const c = Atomics.add(counter, 0, 1)
    if (c >= order.length) return out
    out.push(run(order[c]!))
  }
}

export const aggregateItem = (tensors: readonly (readonly TensorUpdate[])[], outs: readonly Float32Array[] | undefined, i: number): ItemResult<Aggregated> => {
  const out = outs?.[i]
  const r = aggregate(tensors[i]!, out === undefined ? {} : { out })
  return Either.isRight(r) ? { i, ok: r.right } : { i, reason: r.left.reason, message: r.left.message }
}

export const decodeItem = (messages: readonly Uint8Array[], manifest: Manifest | undefined, i: number): ItemResult<UpdateMessage> => {
  const r = decode(messages[i]!, manifest, { shared: true })
  return Either.isRight(r) ? { i, ok: r.right } : { i, reason: r.left.reason, message: r.left.message }
}

// ---------------------------------------------------------------- the pool

interface Pending {
  readonly resolve: (results: ItemResult<unknown>[]) => void
  readonly reject: (e: unknown) => void
}

class Pool {
  private readonly workers: Worker[] = []
  private readonly pending = new Map<number, Pending>()
  private nextId = 1
  private inFlight = 0

  /** Grows the pool to n workers (started once, kept, unreferenced while idle). */
  ensure(n: number): void {
    while (this.workers.length < n) {
      const w = new Worker(new URL("./parallelWorker.ts", import.meta.url).href)
      w.onmessage = (e: MessageEvent) => {
        const { id, results } = e.data as { id: number; results: ItemResult<unknown>[] }
        const p = this.pending.get(id)
        if (p === undefined) return
        this.pending.delete(id)
        this.release()
        p.resolve(results)
      }
      w.onerror = (e: ErrorEvent) => {
        // a worker that fails fails every job it holds; the pool starts a fresh one next time
        const i = this.workers.indexOf(w)
        if (i >= 0) this.workers.splice(i, 1)
        w.terminate()
        for (const [id, p] of this.pending) {
          this.pending.delete(id)
          this.release()
          p.reject(new Error(`codec worker failed: ${e.message}`))
        }
      }
      ;(w as { unref?: () => void }).unref?.()
      this.workers.push(w)
    }
  }

  /** Posts a job to worker k; resolves with its results. Keeps the process alive while in flight. */
  post(k: number, job: (id: number) => Job, transfer: ArrayBuffer[] = []): Promise<ItemResult<unknown>[]> {
    const id = this.nextId++
    const w = this.workers[k]!
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject })
      if (this.inFlight++ === 0) for (const x of this.workers) (x as { ref?: () => void }).ref?.()
      w.postMessage(job(id), transfer)
    })
  }

  private release(): void {
    if (--this.inFlight === 0) for (const x of this.workers) (x as { unref?: () => void }).unref?.()
  }

  close(): void {
    for (const w of this.workers) w.terminate()
    this.workers.length = 0
  }
}

const pool = new Pool()

/** Stops the codec's worker threads (they are unreferenced while idle, so a process can exit without it). */
export const closeCodecWorkers = (): void => pool.close()

const threadsOf = (options: ParallelOptions): number => {
  const cores = typeof navigator !== "undefined" ? navigator.hardwareConcurrency : 1
  return Math.max(1, Math.floor(options.threads ?? Math.min(8, cores)))
}

/**
 * Runs items 0..n-1 (claimed in `order`) on the caller and on workers; results in item order.
 * With one thread, a single item or little work, everything runs on the caller without a worker.
 */
const runItems = async <A>(
  n: number,
  order: readonly number[],
  work: number,
  options: ParallelOptions,
  local: (i: number) => ItemResult<A>,
  job: (id: number, counter: Int32Array) => Job,
): Promise<ItemResult<A>[]> => {
  const small = work < (options.minWork ?? 2 ** 20)
  const threads = small ? 1 : threadsOf(options)
  const caller = options.caller !== false || small
  const workers = caller ? Math.min(threads - 1, n - 1) : Math.min(Math.max(threads, 1), n)
  const counter = new Int32Array(new SharedArrayBuffer(4))
  const results: (ItemResult<A> | undefined)[] = new Array(n)
  if (workers <= 0) {
    for (const r of claimAll(counter, order, local)) results[r.i] = r
    return results as ItemResult<A>[]
  }
  pool.ensure(workers)
  const remote = Array.from({ length: workers }, (_, k) => pool.post(k, (id) => job(id, counter)))
  if (caller) for (const r of claimAll(counter, order, local)) results[r.i] = r
  for (const rs of await Promise.all(remote)) for (const r of rs as ItemResult<A>[]) results[r.i] = r
  return results as ItemResult<A>[]
}

/** Item indices, largest first (ties in index order), so the last items claimed are the small ones. */
const largestFirst = (sizes: readonly number[]): number[] => sizes.map((_, i) => i).sort((a, b) => sizes[b]! - sizes[a]! || a - b)

export interface AggregateAllOptions extends ParallelOptions {
  /**
   * One output per tensor, each in a SharedArrayBuffer (as aggregate's `out`: written in place,
   * returned as the result's `dense`), so workers write the aggregates where the caller reads
   * them instead of allocating and sending new ones.
   */
  readonly outs?: readonly Float32Array[]
}

/**
 * aggregate() of every tensor (one list of peers' updates per tensor), on several threads.
 * Each result is bitwise what `aggregate(tensors[i])` gives on one thread.
 */
export const aggregateAll = async (
  tensors: readonly (readonly TensorUpdate[])[],
  options: AggregateAllOptions = {},
): Promise<Either.Either<Aggregated, CodecError>[]> => {
  const outs = options.outs
  if (outs !== undefined) {
    if (outs.length !== tensors.length) throw new RangeError(`aggregateAll: ${outs.length} outputs for ${tensors.length} tensors`)
    if (outs.some((o) => !(o.buffer instanceof SharedArrayBuffer))) throw new RangeError("aggregateAll: outputs must live in SharedArrayBuffers")
  }
  const sizes = tensors.map((ups) => ups.reduce((a, u) => a + u.indices.length, 0) + (ups[0]?.shape.reduce((a, b) => a * b, 1) ?? 0))
  const results = await runItems<Aggregated>(
    tensors.length,
    largestFirst(sizes),
    sizes.reduce((a, b) => a + b, 0),
    options,
    (i) => aggregateItem(tensors, outs, i),
    (id, counter) => ({ kind: "aggregate", id, counter, order: largestFirst(sizes), tensors, ...(outs === undefined ? {} : { outs }) }),
  )
  // a worker's result views the caller's shared output through a copy of the view: give back the caller's own
  return results.map((r) => ("ok" in r ? Either.right(outs === undefined ? r.ok : { ...r.ok, dense: outs[r.i]! }) : Either.left(new CodecError({ reason: r.reason as CodecErrorReason, message: r.message }))))
}

/**
 * A staging buffer for messages that are not in shared memory, kept between calls: copying into
 * fresh shared memory cost ~54 ms of CPU for 20 peers' 134 M-parameter updates (page faults),
 * more than a third of their decoding. Lent to one call at a time (a concurrent call gets its own).
 */
let staging: SharedArrayBuffer | null = null

/**
 * The messages in shared memory: those not already in a SharedArrayBuffer are copied into the
 * staging buffer (a plain copy is several times cheaper than postMessage's clone of the same
 * bytes, measured). `release` hands the staging buffer back once the workers are done.
 */
const toShared = (messages: readonly Uint8Array[]): { shared: Uint8Array[]; release: () => void } => {
  const plain = messages.reduce((a, m) => a + (m.buffer instanceof SharedArrayBuffer ? 0 : m.length), 0)
  let buf: SharedArrayBuffer
  if (staging !== null && staging.byteLength >= plain) {
    buf = staging
    staging = null
  } else {
    buf = new SharedArrayBuffer(plain)
  }
  let at = 0
  const shared = messages.map((m) => {
    if (m.buffer instanceof SharedArrayBuffer) return m
    const s = new Uint8Array(buf, at, m.length)
    s.set(m)
    at += m.length
    return s
  })
  return { shared, release: () => void (staging === null || staging.byteLength < buf.byteLength ? (staging = buf) : undefined) }
}

/**
 * decode() of every message, on several threads (workers over messages), with decode's `shared`
 * option: the updates can go to aggregateAll without a copy. Each result is what
 * `decode(messages[i], manifest)` gives on one thread.
 */
export const decodeAll = async (
  messages: readonly Uint8Array[],
  manifest?: Manifest,
  options: ParallelOptions = {},
): Promise<Either.Either<UpdateMessage, WireError>[]> => {
  const order = largestFirst(messages.map((m) => m.length))
  let staged: ReturnType<typeof toShared> | undefined // only when workers take part
  const results = await runItems<UpdateMessage>(
    messages.length,
    order,
    messages.reduce((a, m) => a + m.length, 0),
    options,
    (i) => decodeItem(messages, manifest, i),
    (id, counter) => ({ kind: "decode", id, counter, order, messages: (staged ??= toShared(messages)).shared, ...(manifest === undefined ? {} : { manifest }) }),
  ).finally(() => staged?.release())
  return results.map((r) => ("ok" in r ? Either.right(r.ok) : Either.left(new WireError({ reason: r.reason as WireErrorReason, message: r.message }))))
}
