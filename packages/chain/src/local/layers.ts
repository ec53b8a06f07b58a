import { Context, Effect, Layer, Schema } from "effect";
import * as fs from "node:fs";
import { Chain } from "../Chain.ts";
import type { ChainError } from "../errors.ts";
import type { Identity } from "../Identity.ts";
import type { LocalBackend } from "./backend.ts";
import type { LocalClientOptions } from "./client.ts";
import { connectBackend } from "./client.ts";
import { LocalChain, makeLocalChain } from "./LocalChain.ts";
import type { LocalOwnerOptions } from "./owner.ts";
import { isAlive, openLocalOwner, publishOwnerUrl } from "./owner.ts";
import { serveBackend } from "./server.ts";
import { LocalStoreError, storeFiles } from "./store.ts";

export interface LayerLocalOptions extends LocalOwnerOptions {
  readonly identity: Identity;
  /** Serve the chain on loopback for other processes (default true); 0 picks a free port. */
  readonly serve?: boolean;
  readonly port?: number;
}

const provideBoth = <E, R>(make: Effect.Effect<Context.Tag.Service<typeof LocalChain>, E, R>) =>
  Layer.scopedContext(Effect.map(make, (chain) => Context.make(LocalChain, chain).pipe(Context.add(Chain, chain))));

/**
 * The embedded local chain, owned by this process: blocks, registration, stake, signature-checked
 * commitments and weights, persisted in `dir`, and (by default) served on loopback with its URL
 * written to `dir/owner.json` for `layerLocalClient`.
 */
export const layerLocal = (options: LayerLocalOptions): Layer.Layer<Chain | LocalChain, LocalStoreError> =>
  provideBoth(
    Effect.gen(function* () {
      const backend = yield* openLocalOwner(options);
      if (options.serve ?? true) {
        const url = yield* serveBackend(backend, options.port ?? 0);
        yield* publishOwnerUrl(options.dir, url);
      }
      return yield* makeLocalChain(backend, options.identity);
    }),
  );

/**
 * Each node's `Chain` over a backend this process holds (e.g. `openMemoryBackend()`, shared by the
 * nodes of an in-process simulation), signing with the identity's hotkey.
 */
export const layerLocalBackend = (backend: LocalBackend, identity: Identity): Layer.Layer<Chain | LocalChain> =>
  provideBoth(makeLocalChain(backend, identity));

/** A local chain owned by another process, reached on loopback; the same `Chain` as the owner's. */
export const layerLocalClient = (
  url: string,
  identity: Identity,
  options?: LocalClientOptions,
): Layer.Layer<Chain | LocalChain, ChainError> =>
  provideBoth(Effect.flatMap(connectBackend(url, options), (backend) => makeLocalChain(backend, identity)));

const OwnerFile = Schema.parseJson(Schema.Struct({ url: Schema.String, pid: Schema.Int }));

const readOwnerFile = (dir: string): Effect.Effect<{ readonly url: string; readonly pid: number }, LocalStoreError> => {
  const path = storeFiles(dir).owner;
  return Effect.try({
    try: () => fs.readFileSync(path, "utf8"),
    catch: () => new LocalStoreError({ path, reason: "no owner.json: is the chain's owner running?" }),
  }).pipe(
    Effect.flatMap((text) => Schema.decodeUnknown(OwnerFile)(text)),
    Effect.mapError((e) => (e._tag === "LocalStoreError" ? e : new LocalStoreError({ path, reason: e.message }))),
  );
};

/** The URL the owner of a chain directory serves on, from `dir/owner.json`. */
export const readOwnerUrl = (dir: string): Effect.Effect<string, LocalStoreError> => Effect.map(readOwnerFile(dir), (o) => o.url);

/**
 * Joins the local chain in `dir`: as a client when a live process owns it, else as its owner.
 * (Two processes starting at the same instant may both try to own it; the lock lets one win and
 * the other fails with `LocalStoreError`, so start the first participant before the rest.)
 */
export const layerLocalAuto = (options: LayerLocalOptions & LocalClientOptions): Layer.Layer<Chain | LocalChain, LocalStoreError | ChainError> =>
  Layer.unwrapEffect(
    Effect.map(Effect.option(readOwnerFile(options.dir)), (owner): Layer.Layer<Chain | LocalChain, LocalStoreError | ChainError> =>
      owner._tag === "Some" && isAlive(owner.value.pid)
        ? layerLocalClient(owner.value.url, options.identity, options)
        : layerLocal(options),
    ),
  );
