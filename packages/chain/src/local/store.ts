import { randomAsHex } from "@polkadot/util-crypto";
import { Data, Effect, Either, ParseResult, Schema } from "effect";
import * as fs from "node:fs";
import { join } from "node:path";
import { LocalParams, LocalState, LogEntry, StateData } from "./state.ts";

/** The chain directory is unreadable, inconsistent, or owned by another live process. */
export class LocalStoreError extends Data.TaggedError("LocalStoreError")<{
  readonly path: string;
  readonly reason: string;
}> {}

const Genesis = Schema.Struct({ genesisHash: Schema.String, params: LocalParams, genesisTimestampMs: Schema.Number });
const Snapshot = Schema.Struct({ logOffset: Schema.Int, state: StateData });

export const storeFiles = (dir: string) => ({
  genesis: join(dir, "genesis.json"),
  log: join(dir, "log.jsonl"),
  snapshot: join(dir, "snapshot.json"),
  owner: join(dir, "owner.json"),
  lock: join(dir, "owner.lock"),
});

const attempt = <A>(path: string, f: () => A): Effect.Effect<A, LocalStoreError> =>
  Effect.try({ try: f, catch: (cause) => new LocalStoreError({ path, reason: String(cause) }) });

const decodeJson = <A, I>(schema: Schema.Schema<A, I>, path: string, text: string): Effect.Effect<A, LocalStoreError> =>
  Either.match(Schema.decodeUnknownEither(Schema.parseJson(schema))(text), {
    onLeft: (e) => Effect.fail(new LocalStoreError({ path, reason: ParseResult.TreeFormatter.formatErrorSync(e) })),
    onRight: Effect.succeed,
  });

/** Writes a whole file durably: temp file, fsync, rename, so a crash leaves the old or the new one. */
export const writeFileAtomic = (path: string, text: string): void => {
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = fs.openSync(tmp, "w");
  try {
    fs.writeSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, path);
};

const encodeLine = Schema.encodeSync(LogEntry);
const decodeLine = Schema.decodeUnknownEither(Schema.parseJson(LogEntry));

/** Applies the log's complete lines from byte `offset`; returns where the complete lines end. */
const replayFrom = (state: LocalState, path: string, offset: number): Effect.Effect<number, LocalStoreError> =>
  Effect.gen(function* () {
    const bytes = fs.existsSync(path) ? fs.readFileSync(path) : Buffer.alloc(0);
    // A crash can cut the last line short; it was never acknowledged, so it is dropped.
    const end = bytes.lastIndexOf(0x0a) + 1;
    if (end <= offset) return Math.max(offset, end);
    const lines = bytes.subarray(offset, end).toString("utf8").split("\n");
    let position = offset;
    for (const line of lines) {
      if (line.length === 0) continue;
      const entry = decodeLine(line);
      if (Either.isLeft(entry)) return yield* new LocalStoreError({ path, reason: `bad log line at byte ${position}` });
      const applied = state.apply(entry.right);
      if (Either.isLeft(applied)) {
        return yield* new LocalStoreError({ path, reason: `log line at byte ${position} does not replay: ${applied.left._tag}` });
      }
      position += Buffer.byteLength(line) + 1;
    }
    return end;
  });

const loadGenesis = (dir: string, params: LocalParams): Effect.Effect<typeof Genesis.Type, LocalStoreError> => {
  const path = storeFiles(dir).genesis;
  if (fs.existsSync(path)) return Effect.flatMap(attempt(path, () => fs.readFileSync(path, "utf8")), (t) => decodeJson(Genesis, path, t));
  const genesis = { genesisHash: randomAsHex(32), params, genesisTimestampMs: Date.now() };
  return Effect.as(attempt(path, () => writeFileAtomic(path, JSON.stringify(genesis))), genesis);
};

/** Rebuilds the state from genesis and the whole log, ignoring any snapshot. */
export const replayStore = (dir: string): Effect.Effect<LocalState, LocalStoreError> =>
  Effect.gen(function* () {
    const path = storeFiles(dir).genesis;
    const genesis = yield* decodeJson(Genesis, path, yield* attempt(path, () => fs.readFileSync(path, "utf8")));
    const state = new LocalState(genesis.genesisHash, genesis.params, genesis.genesisTimestampMs);
    yield* replayFrom(state, storeFiles(dir).log, 0);
    return state;
  });

/** An open chain directory: the state, and the append-only log that every change goes through. */
export interface Store {
  readonly state: LocalState;
  /** Appends an applied entry; `durable` fsyncs it (and every earlier line) before returning. */
  readonly append: (entry: LogEntry, durable: boolean) => void;
  readonly snapshot: () => void;
  readonly close: () => void;
}

/** Opens (or creates) a chain directory: genesis, then the latest snapshot, then the log after it. */
export const openStore = (dir: string, params: LocalParams): Effect.Effect<Store, LocalStoreError> =>
  Effect.gen(function* () {
    const files = storeFiles(dir);
    yield* attempt(dir, () => fs.mkdirSync(dir, { recursive: true }));
    const genesis = yield* loadGenesis(dir, params);
    let state = new LocalState(genesis.genesisHash, genesis.params, genesis.genesisTimestampMs);
    let offset = 0;
    if (fs.existsSync(files.snapshot)) {
      const snap = yield* decodeJson(Snapshot, files.snapshot, yield* attempt(files.snapshot, () => fs.readFileSync(files.snapshot, "utf8")));
      state = LocalState.fromData(snap.state);
      offset = snap.logOffset;
    }
    let size = yield* replayFrom(state, files.log, offset);
    const fd = yield* attempt(files.log, () => {
      const handle = fs.openSync(files.log, fs.existsSync(files.log) ? "r+" : "w+");
      fs.ftruncateSync(handle, size);
      return handle;
    });
    const store: Store = {
      state,
      append: (entry, durable) => {
        const line = `${JSON.stringify(encodeLine(entry))}\n`;
        size += fs.writeSync(fd, line, size);
        if (durable) fs.fsyncSync(fd);
      },
      snapshot: () => {
        fs.fsyncSync(fd);
        writeFileAtomic(files.snapshot, JSON.stringify({ logOffset: size, state: state.toData() }));
      },
      close: () => {
        fs.fsyncSync(fd);
        fs.closeSync(fd);
      },
    };
    return store;
  });
