/**
 * A shard folder served over HTTP (the page server's `/data/`), for a reader with no disk: a
 * browser tab. Whole reads, ranged reads (`Range: bytes=a-b`) and sizes (HEAD's Content-Length).
 */
import { Effect } from "effect"
import { InvalidRange, NotFound, Unauthorized, Unavailable } from "@covenant/transport"
import type { StoreError } from "@covenant/transport"
import type { ShardObjects } from "./objects.ts"

const failed = (url: string, status: number): StoreError =>
  status === 404
    ? new NotFound({ bucket: "", key: url })
    : status === 401 || status === 403
      ? new Unauthorized({ bucket: "", key: url, reason: `HTTP ${status}` })
      : new Unavailable({ bucket: "", key: url, transient: status >= 500 || status === 429, reason: `HTTP ${status}` })

const request = (url: string, init: RequestInit) =>
  Effect.tryPromise({
    try: (signal) => fetch(url, { ...init, signal }),
    catch: (cause) => new Unavailable({ bucket: "", key: url, transient: true, reason: cause instanceof Error ? cause.message : String(cause) }),
  })

const bytesOf = (url: string, r: Response) =>
  Effect.tryPromise({
    try: async () => new Uint8Array(await r.arrayBuffer()),
    catch: (cause) => new Unavailable({ bucket: "", key: url, transient: true, reason: String(cause) }),
  })

/** The files under `baseUrl` (a folder URL, with or without the trailing slash). */
export const httpObjects = (baseUrl: string): ShardObjects => {
  const base = baseUrl.endsWith("/") ? baseUrl : `${baseUrl}/`
  const urlOf = (name: string) => `${base}${name.split("/").map(encodeURIComponent).join("/")}`
  return {
    uri: base,
    read: (name) =>
      Effect.flatMap(request(urlOf(name), {}), (r) => (r.ok ? bytesOf(urlOf(name), r) : Effect.fail(failed(urlOf(name), r.status)))),
    readRange: (name, offset, length) =>
      Effect.flatMap(request(urlOf(name), { headers: { range: `bytes=${offset}-${offset + Math.max(1, length) - 1}` } }), (r) => {
        if (r.status === 416) return Effect.fail(new InvalidRange({ bucket: "", key: urlOf(name), offset, length, size: -1 }))
        if (!r.ok) return Effect.fail(failed(urlOf(name), r.status))
        // A server that ignores Range answers 200 with the whole file: cut our slice from it.
        return Effect.map(bytesOf(urlOf(name), r), (b) => (r.status === 206 ? b.subarray(0, length) : b.subarray(offset, offset + length)))
      }),
    size: (name) =>
      Effect.flatMap(request(urlOf(name), { method: "HEAD" }), (r) => {
        const n = Number(r.headers.get("content-length"))
        return r.ok && Number.isFinite(n) ? Effect.succeed(n) : Effect.fail(failed(urlOf(name), r.ok ? 500 : r.status))
      }),
  }
}
