/**
 * A node's own state on its disk, saved after every outer step so a killed node resumes where it
 * was: the shared parameters (HF-named safetensors, loadable by transformers), its AdamW moments
 * and its error feedback. Each save goes to a fresh `w{window}/` folder (files written to a temp
 * name and renamed), then `_LATEST.json` is replaced atomically; a crash leaves the previous
 * state intact.
 */
import { mkdir, readFile, readdir, rename, rm, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { Effect, Either, Schema } from "effect"
import * as External from "../sim/external.ts"
import { decodeCheckpoint, decodeSafetensors, encodeCheckpoint, encodeSafetensors } from "@covenant/gpu-webgpu"
import type { LlamaSpec, OptimizerState } from "@covenant/gpu-webgpu"
import { type RuntimeFailure, StateFailure } from "../errors.ts"
import type { Params } from "../round/params.ts"

export interface NodeState {
  /** The last window whose outer step these parameters include. */
  readonly window: number
  readonly params: Params
  readonly ef: Params | null
  readonly momentum: Params | null
  readonly optimizer: OptimizerState | null
  /** A validator's scoring memory (the Scoring service's snapshot), saved beside the model. */
  readonly scoring?: string | null
}

const Latest = Schema.parseJson(Schema.Struct({ window: Schema.Int.pipe(Schema.nonNegative()), folder: Schema.String }))

const io = <A>(path: string, run: () => Promise<A>) =>
  External.tryPromise({ try: run, catch: (cause) => new StateFailure({ phase: "state", reason: `${path}: ${String(cause)}` }) })

/** Writes bytes under a temp name and renames: readers never see half a file. */
export const writeAtomic = (path: string, bytes: Uint8Array | string) =>
  io(path, async () => {
    const temp = `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`
    await writeFile(temp, bytes)
    await rename(temp, path)
  })

const encodeNamed = (prefix: string, params: ReadonlyMap<string, Float32Array>, metadata: Record<string, string> = {}) =>
  Either.mapLeft(
    encodeSafetensors([...params].map(([name, data]) => [`${prefix}${name}`, { shape: [data.length], data }] as const), metadata),
    (e) => new StateFailure({ phase: "state", reason: e.reason }),
  )

const decodeNamed = (bytes: Uint8Array, prefix: string): Either.Either<{ tensors: Params; metadata: Record<string, string> }, RuntimeFailure> =>
  Either.map(
    Either.mapLeft(decodeSafetensors(bytes), (e) => new StateFailure({ phase: "state", reason: e.reason })),
    (file) => {
      const tensors: Params = new Map()
      for (const [name, t] of file.tensors) {
        if (name.startsWith(prefix) && t.data instanceof Float32Array) tensors.set(name.slice(prefix.length), t.data)
      }
      return { tensors, metadata: { ...file.metadata } }
    },
  )

export const saveNodeState = (dir: string, spec: LlamaSpec, state: NodeState): Effect.Effect<void, RuntimeFailure> =>
  Effect.gen(function* () {
    const folder = `w${state.window}`
    const at = join(dir, folder)
    yield* io(at, () => mkdir(at, { recursive: true }))
    const model = yield* Either.mapLeft(encodeCheckpoint(spec, state.params, { window: String(state.window) }), (e) => new StateFailure({ phase: "state", reason: e.reason }))
    yield* writeAtomic(join(at, "model.safetensors"), model)
    if (state.ef !== null) yield* writeAtomic(join(at, "error_feedback.safetensors"), yield* encodeNamed("", state.ef))
    if (state.momentum !== null) yield* writeAtomic(join(at, "outer_momentum.safetensors"), yield* encodeNamed("", state.momentum))
    if (state.optimizer !== null) {
      const moments: Params = new Map()
      for (const [name, { m, v }] of state.optimizer.moments) {
        moments.set(`m/${name}`, m)
        moments.set(`v/${name}`, v)
      }
      yield* writeAtomic(join(at, "optimizer.safetensors"), yield* encodeNamed("", moments, { step: String(state.optimizer.step) }))
    }
    if (state.scoring != null) yield* writeAtomic(join(at, "scoring.json"), state.scoring)
    yield* writeAtomic(join(dir, "_LATEST.json"), JSON.stringify({ window: state.window, folder }))
    // Older folders are no longer pointed to.
    const entries = yield* io(dir, () => readdir(dir))
    for (const e of entries) if (/^w\d+$/.test(e) && e !== folder) yield* io(e, () => rm(join(dir, e), { recursive: true, force: true }))
  })

const readOptional = (path: string) =>
  io(path, async () => {
    try {
      return new Uint8Array(await readFile(path))
    } catch (e) {
      if (e instanceof Error && "code" in e && e.code === "ENOENT") return undefined
      throw e
    }
  })

/** The state `_LATEST.json` points to, or undefined for a node that never saved one. */
export const loadNodeState = (dir: string, spec: LlamaSpec): Effect.Effect<NodeState | undefined, RuntimeFailure> =>
  Effect.gen(function* () {
    const latestBytes = yield* readOptional(join(dir, "_LATEST.json"))
    if (latestBytes === undefined) return undefined
    const latest = yield* Either.mapLeft(Schema.decodeUnknownEither(Latest)(new TextDecoder().decode(latestBytes)), (e) => new StateFailure({ phase: "state", reason: e.message }))
    const at = join(dir, latest.folder)
    const modelBytes = yield* readOptional(join(at, "model.safetensors"))
    if (modelBytes === undefined) return yield* new StateFailure({ phase: "state", reason: `${at}: model.safetensors missing` })
    const model = yield* Either.mapLeft(decodeCheckpoint(modelBytes, spec), (e) => new StateFailure({ phase: "state", reason: e.reason }))
    const efBytes = yield* readOptional(join(at, "error_feedback.safetensors"))
    const ef = efBytes === undefined ? null : (yield* decodeNamed(efBytes, "")).tensors
    const momentumBytes = yield* readOptional(join(at, "outer_momentum.safetensors"))
    const momentum = momentumBytes === undefined ? null : (yield* decodeNamed(momentumBytes, "")).tensors
    const optBytes = yield* readOptional(join(at, "optimizer.safetensors"))
    let optimizer: OptimizerState | null = null
    if (optBytes !== undefined) {
      const { tensors, metadata } = yield* decodeNamed(optBytes, "")
      const moments = new Map<string, { m: Float32Array; v: Float32Array }>()
      for (const [key, m] of tensors) {
        if (!key.startsWith("m/")) continue
        const name = key.slice(2)
        const v = tensors.get(`v/${name}`)
        if (v !== undefined) moments.set(name, { m, v })
      }
      optimizer = { step: Number(metadata["step"] ?? "0"), moments }
    }
    const scoringBytes = yield* readOptional(join(at, "scoring.json"))
    const scoring = scoringBytes === undefined ? null : new TextDecoder().decode(scoringBytes)
    return { window: latest.window, params: model.parameters, ef, momentum, optimizer, scoring }
  })
