/**
 * The logical-buffer table both backends keep: ids mapped to chunk lists laid out as
 * `backend.ts` describes. Backends supply how a chunk is made and given back.
 */
import { BackendError, chunkCount, type BufferId } from "./backend.ts"

export interface ChunkedBuffer<Chunk> {
  readonly bytes: number
  readonly chunkBytes: number
  readonly chunks: ReadonlyArray<Chunk>
}

export class ChunkedBufferTable<Chunk> {
  private readonly buffers = new Map<number, ChunkedBuffer<Chunk>>()
  private nextId = 1

  constructor(
    private readonly maxBindingBytes: number,
    private readonly makeChunk: (bytes: number) => Chunk,
    private readonly disposeChunk: (chunk: Chunk) => void
  ) {}

  /** `size` is already rounded as the backend needs; `chunkBytes` defaults to one chunk. */
  alloc(size: number, chunkBytes?: number): BufferId {
    const cb = chunkBytes ?? size
    if (cb > this.maxBindingBytes && size > this.maxBindingBytes) {
      throw new BackendError({ message: `chunk of ${cb} bytes exceeds the binding limit ${this.maxBindingBytes}` })
    }
    const n = chunkCount(size, cb)
    const chunks: Chunk[] = []
    for (let i = 0; i < n; i++) chunks.push(this.makeChunk(Math.min(cb, size - i * cb)))
    const id = this.nextId++
    this.buffers.set(id, { bytes: size, chunkBytes: cb, chunks })
    return id as BufferId
  }

  get(buf: BufferId): ChunkedBuffer<Chunk> {
    const b = this.buffers.get(buf)
    if (b === undefined) throw new BackendError({ message: `buffer ${buf} is not allocated (freed already?)` })
    return b
  }

  /** Freeing an unknown id does nothing, so a double free is harmless. */
  free(buf: BufferId): void {
    const b = this.buffers.get(buf)
    if (b === undefined) return
    this.buffers.delete(buf)
    for (const c of b.chunks) this.disposeChunk(c)
  }

  /** Frees every live buffer. */
  clear(): void {
    for (const b of this.buffers.values()) for (const c of b.chunks) this.disposeChunk(c)
    this.buffers.clear()
  }

  get size(): number {
    return this.buffers.size
  }
}
