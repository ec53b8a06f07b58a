import { Chunk, Context, Duration, Effect, Option, Schedule, Stream } from "effect";
import type { ChainShape } from "../Chain.ts";
import { weightsToU16 } from "../Chain.ts";
import { clockOver } from "../clock.ts";
import { decodeCommitment, encodeCommitment } from "../Commitment.ts";
import { InvalidWeights, NotRegistered } from "../errors.ts";
import type { ChainError } from "../errors.ts";
import type { Identity } from "../Identity.ts";
import type { LocalBackend } from "./backend.ts";
import type { LocalCall } from "./calls.ts";
import { signCall } from "./calls.ts";

/** The local chain's extras beyond `Chain`: free stake, for simulations. */
export interface LocalChainShape extends ChainShape {
  readonly addStake: (amount: number) => Effect.Effect<void, ChainError>;
  readonly genesisHash: string;
}
export class LocalChain extends Context.Tag("@covenant/chain/LocalChain")<LocalChain, LocalChainShape>() {}

const blockPollMs = 10_000;

/** The `Chain` service over a local backend (owner or client), signing with the identity's hotkey. */
export const makeLocalChain = (backend: LocalBackend, identity: Identity): Effect.Effect<LocalChainShape> =>
  Effect.gen(function* () {
    const { genesisHash, params } = backend.info;
    // One call in flight per identity: the nonce is read, signed over and spent in order.
    const nonceLock = yield* Effect.makeSemaphore(1);
    const submit = (call: LocalCall) =>
      nonceLock.withPermits(1)(
        Effect.flatMap(backend.nonce(identity.hotkey.address), (nonce) => backend.submit(signCall(identity.hotkey, genesisHash, nonce, call))),
      );

    const view = backend.view;
    const metagraph = Effect.map(view, (v) => v.metagraph);

    // The block stream survives a lost owner: unavailable polls are retried with capped backoff.
    const poll = (after: number) =>
      backend.blocksAfter(after, blockPollMs).pipe(
        Effect.retry({
          schedule: Schedule.exponential(Duration.millis(25)).pipe(Schedule.either(Schedule.spaced(Duration.seconds(1)))),
          while: (e) => e._tag === "ChainUnavailable",
        }),
      );
    const blocks = Stream.unwrap(
      Effect.map(backend.head, (head) =>
        Stream.paginateChunkEffect(head.number, (after) =>
          Effect.map(poll(after), (bs) => {
            const last = bs[bs.length - 1];
            return [Chunk.fromIterable(bs), Option.some(last === undefined ? after : last.number)] as const;
          }),
        ),
      ),
    );

    const uid = backend.uidOf(identity.hotkey.address);
    const shape: LocalChainShape = {
      identity,
      genesisHash,
      ...clockOver({ blocksPerWindow: params.blocksPerWindow, head: backend.head, blocks, timestampOf: backend.timestamp }),
      metagraph,
      refreshMetagraph: metagraph,
      uid,
      register: Effect.zipRight(
        submit({ _tag: "Register", coldkey: identity.coldkey }),
        Effect.flatMap(uid, (u) => (u === undefined ? Effect.fail(new NotRegistered({ hotkey: identity.hotkey.address })) : Effect.succeed(u))),
      ),
      addStake: (amount) => submit({ _tag: "AddStake", amount }),
      commit: (commitment, format) =>
        Effect.flatMap(encodeCommitment(commitment, format), (data) => submit({ _tag: "SetCommitment", data })),
      commitments: Effect.map(view, (v) =>
        v.commitments.map((c) => ({ ...c, raw: c.data, commitment: Effect.runSync(Effect.either(decodeCommitment(c.data))) })),
      ),
      setWeights: (weights) => {
        const u16 = weightsToU16(weights);
        return typeof u16 === "string"
          ? Effect.fail(new InvalidWeights({ reason: u16 }))
          : submit({ _tag: "SetWeights", uids: u16.uids, values: u16.values, versionKey: params.weightsVersionKey });
      },
      weights: Effect.map(view, (v) => v.weights),
    };
    return shape;
  });

